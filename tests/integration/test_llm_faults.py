"""Loupe against an OpenAI-compatible server on loopback that misbehaves on purpose
(bench/faulty_llm.py): keep-alive pings with no content, a slow drip, a hang, `Retry-After: 120`,
a stream cut cleanly before the model finished, and an answer stopped at the length limit.

The budget here is 2 s and the read timeout 60 s, so a fallback whose notice names the budget
was cut by the deadline, not by a timeout. Every fault ends on its own after 30 s (the server
gives up), so without the deadline these tests fail, late, instead of hanging.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.faulty_llm import FaultyLLM, faulty_llm
from core.answer.extractive import MODEL_NAME as EXTRACTIVE_MODEL
from core.answer.types import AnswerResult, AskEvent
from core.config import Settings
from core.ingest.pipeline import IngestItem
from core.service import Loupe

BUDGET = 2.0
DOCUMENTS = [
    IngestItem(
        "leave-policy.txt",
        b"New employees receive 25 days of paid annual leave.\n\n"
        b"Unused leave can be carried over until the end of March of the following year.",
    ),
    IngestItem(
        "lab-rules.txt",
        b"The laboratory opens at 8 am on weekdays. "
        b"Visitors must sign in at the front desk and wear safety goggles.",
    ),
]
QUESTION = "How many days of paid annual leave do new employees get?"


@pytest.fixture(scope="module")
def server() -> Iterator[FaultyLLM]:
    with faulty_llm(interval=0.2, duration=30) as running:
        yield running


def settings_for(data_dir: Path, server: FaultyLLM, **overrides: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'loupe.db'}",
        llm="openai",
        llm_model="faulty",
        openai_base_url=server.base_url,
        llm_timeout=60,
        llm_max_retries=1,
        llm_budget=BUDGET,
        # Each test here is about one fault: the breaker has a test of its own.
        llm_breaker_failures=1000,
        **overrides,
    )


@pytest.fixture(scope="module")
def loupe(tmp_path_factory: pytest.TempPathFactory, server: FaultyLLM) -> Iterator[Loupe]:
    engine = Loupe(settings_for(tmp_path_factory.mktemp("loupe"), server))
    results = engine.ingest(DOCUMENTS)
    assert [r.outcome for r in results] == ["indexed"] * len(DOCUMENTS), results
    yield engine
    engine.close()


@pytest.fixture
def fault(server: FaultyLLM) -> Iterator[FaultyLLM]:
    """The server, with its request log cleared; set `.fault` in the test."""
    server.requests.clear()
    yield server
    server.fault = "ok"


def asked(loupe: Loupe, question: str = QUESTION, **kwargs: Any) -> tuple[list[str], AnswerResult]:
    events: list[AskEvent] = list(loupe.ask_stream(question, **kwargs))
    result = events[-1].result
    assert events[-1].kind == "done" and result is not None
    return [event.kind for event in events], result


def assert_fell_back(result: AnswerResult, reason: str) -> None:
    assert result.generator == "fallback"
    assert result.model == EXTRACTIVE_MODEL
    assert result.notice is not None and result.notice.startswith("The language model failed")
    assert reason in result.notice, result.notice
    assert result.citations, "the extractive answer always cites"


def test_a_proper_stream_is_an_llm_answer(loupe: Loupe, fault: FaultyLLM) -> None:
    """The fault server speaks the protocol: without a fault, the answer is the model's."""
    _, result = asked(loupe)
    assert (result.generator, result.notice, result.model) == ("llm", None, "faulty")
    assert result.answer == "New employees receive 25 days of paid annual leave [1]."
    assert len(fault.requests) == 1


@pytest.mark.parametrize("kind", ["keepalive", "drip", "hang"])
def test_the_budget_cuts_a_server_that_never_finishes(
    loupe: Loupe, fault: FaultyLLM, kind: str
) -> None:
    """Keep-alive comments and a drip reset the read timeout; a hang waits it out. The budget
    is wall-clock, whatever arrives."""
    fault.fault = kind
    kinds, result = asked(loupe)
    assert_fell_back(result, f"{BUDGET:g} s time budget")
    assert len(fault.requests) == 1, "the budget leaves no time for a retry"
    assert ("reset" in kinds) == (kind == "drip"), "dripped words are taken back"


def test_retry_after_beyond_the_budget_is_not_waited_for(loupe: Loupe, fault: FaultyLLM) -> None:
    fault.fault = "retry_after"
    _, result = asked(loupe)
    assert_fell_back(result, "asked to retry in 120 s")
    assert len(fault.requests) == 1, "no retry once the wait cannot fit the budget"


def test_retry_after_within_the_budget_is_honoured(loupe: Loupe, fault: FaultyLLM) -> None:
    fault.fault = "retry_after_short"
    _, result = asked(loupe)
    assert result.generator == "llm" and result.notice is None
    assert len(fault.requests) == 2


def test_a_stream_cut_before_the_finish_falls_back(loupe: Loupe, fault: FaultyLLM) -> None:
    """The body ends cleanly after "New employees receive": no finish reason, no [DONE]."""
    fault.fault = "truncated"
    kinds, result = asked(loupe)
    assert_fell_back(result, "ended before the model finished")
    assert "reset" in kinds, "the partial answer that was shown is taken back"
    assert result.answer != "New employees receive"


def test_an_answer_stopped_at_the_length_limit_is_flagged(loupe: Loupe, fault: FaultyLLM) -> None:
    fault.fault = "length"
    _, result = asked(loupe)
    assert result.generator == "llm"
    assert result.notice and "cut off at the model's length limit" in result.notice
    assert result.confidence.features["truncated"] == 1.0
    assert result.confidence.label == "low"


def test_a_follow_up_spends_one_budget_on_condense_and_answer(
    loupe: Loupe, fault: FaultyLLM
) -> None:
    conversation = loupe.new_conversation()
    _, first = asked(loupe, conversation_id=conversation)
    assert first.generator == "llm"
    fault.requests.clear()
    fault.fault = "hang"
    # "Until when" rather than "how long": the calibrated extractive fallback withholds a
    # "how long" answer without a number (P 33%), which is right but not what this tests.
    _, result = asked(loupe, "And until when can it be carried over?", conversation_id=conversation)
    assert_fell_back(result, "while rewriting the follow-up")
    assert len(fault.requests) == 1, "a model that failed to condense is not asked to answer"


def test_the_breaker_stops_asking_a_failing_server(
    tmp_path: Path, server: FaultyLLM, fault: FaultyLLM
) -> None:
    settings = settings_for(tmp_path, server).model_copy(
        update={"llm_breaker_failures": 2, "llm_breaker_cooldown": 600, "llm_max_retries": 0}
    )
    engine = Loupe(settings)
    try:
        engine.ingest(DOCUMENTS)
        fault.fault = "error"
        for _ in range(2):
            _, result = asked(engine)
            assert_fell_back(result, "500")
        assert len(fault.requests) == 2
        fault.fault = "ok"  # recovered, but the breaker is open for the cool-down
        _, result = asked(engine)
        assert_fell_back(result, "failed on the last 2 questions")
        assert len(fault.requests) == 2, "an open breaker answers at once, without a request"
    finally:
        engine.close()
