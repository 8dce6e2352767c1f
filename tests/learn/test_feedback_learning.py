"""Expert feedback changes what Loupe does: a verified answer is served as the answer to the
same question, passages judged unsupportive are demoted, and the feedback exports as datasets.
Real SQL, store and model."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.auth import Actor
from core.config import Settings
from core.ingest.pipeline import IngestItem
from core.learn.boosts import BOOST_HALF_LIFE_DAYS, UNSUPPORT_PENALTY, Boosts, PassageVerdict
from core.learn.state import LearnedState
from core.learn.verified import CANDIDATE_SIMILARITY
from core.service import Loupe
from core.vocab import Verdict

POLICY = IngestItem(
    "policy.txt",
    b"New employees receive 25 days of paid annual leave.\n\n"
    b"Unused leave can be carried over until the end of March of the following year.",
)
OLD_POLICY = IngestItem(
    "old-policy.txt", b"Under the 2019 rules, new employees received 20 days of paid annual leave."
)
DANA = Actor("dana", "expert")
QUESTION = "How many days of paid annual leave do new employees get?"


@pytest.fixture
def loupe(tmp_path: Path, db_url: str) -> Iterator[Loupe]:
    engine = Loupe(Settings(data_dir=tmp_path / "data", database_url=db_url, llm="extractive"))
    engine.ingest([POLICY, OLD_POLICY])
    yield engine
    engine.close()


def test_expert_edit_is_served_for_the_same_question(loupe: Loupe) -> None:
    first = loupe.ask(QUESTION)
    assert first.verified is None and first.generator == "extractive"
    cited = first.sources[0]
    loupe.feedback(
        first.answer_id or "",
        edited_answer="New hires get 25 days [1].",
        role="expert",
        actor=DANA,
    )
    again = loupe.ask("How many days of paid annual leave do new employees receive?")
    # The verified answer is the answer: not generated, cited to the passage it was verified on.
    assert again.generator == "verified" and again.answer == "New hires get 25 days [1]."
    assert [(s.n, s.chunk_id, s.cited) for s in again.sources] == [(1, cited.chunk_id, True)]
    assert again.verified is not None
    assert again.verified.expert == "dana" and again.verified.question == QUESTION
    assert again.verified.similarity >= CANDIDATE_SIMILARITY
    assert again.answer_id and again.answer_id != first.answer_id  # recorded like any answer
    other = loupe.ask("Can unused leave be carried over?")
    assert other.verified is None and other.generator == "extractive"


def test_user_feedback_does_not_verify_and_expert_thumbs_down_withdraws(loupe: Loupe) -> None:
    answer = loupe.ask(QUESTION)
    loupe.feedback(answer.answer_id or "", rating="up", role="user")
    assert loupe.ask(QUESTION).verified is None
    loupe.feedback(answer.answer_id or "", rating="up", role="expert")
    assert loupe.ask(QUESTION).verified is not None
    loupe.feedback(answer.answer_id or "", rating="down", role="expert")
    assert loupe.ask(QUESTION).verified is None


def test_unsupportive_passage_is_demoted(loupe: Loupe) -> None:
    before = loupe.ask(QUESTION)
    old = next(s for s in before.sources if s.document == "old-policy.txt")
    new = next(s for s in before.sources if s.document == "policy.txt" and "25 days" in s.quote)
    verdicts = {str(old.n): "does_not_support", str(new.n): "supports"}
    loupe.feedback(before.answer_id or "", citation_verdicts=verdicts, role="expert")

    boosts = loupe.chain.retriever.boosts
    assert boosts[old.chunk_id] < 0 < boosts[new.chunk_id]
    after = loupe.ask(QUESTION)
    rank = {s.chunk_id: s.n for s in after.sources}
    assert rank[new.chunk_id] < rank[old.chunk_id]
    assert rank[old.chunk_id] >= old.n
    # Demoted, never removed: a search only it answers still finds it.
    found = loupe.chain.retriever.search("Under the 2019 rules")
    assert old.chunk_id in [hit.chunk.id for hit in found]


def test_boosts_decay_with_age(loupe: Loupe) -> None:
    answer = loupe.ask(QUESTION)
    loupe.feedback(answer.answer_id or "", citation_verdicts={"1": "does_not_support"}, role="user")
    chunk = answer.sources[0].chunk_id
    state = LearnedState(loupe.db, "default", loupe.embeddings)
    state.refresh()
    fresh = state.boosts[chunk]
    state.refresh(now=datetime.now(UTC) + timedelta(days=BOOST_HALF_LIFE_DAYS))
    later = state.boosts[chunk]
    assert fresh == pytest.approx(UNSUPPORT_PENALTY, rel=1e-3)
    assert later == pytest.approx(UNSUPPORT_PENALTY / 2, rel=1e-2)


def test_exports(loupe: Loupe) -> None:
    answer = loupe.ask(QUESTION)
    edit = "New employees receive 25 days [1]."
    loupe.feedback(answer.answer_id or "", rating="down", edited_answer=edit, role="expert")
    approved = loupe.ask("Can unused leave be carried over?")
    loupe.feedback(approved.answer_id or "", rating="up", role="expert")

    finetune = loupe.export("finetune")
    assert len(finetune) == 2
    roles = [m["role"] for m in finetune[0]["messages"]]  # type: ignore[index]
    assert roles == ["system", "user", "assistant"]
    assistant_texts = {r["messages"][2]["content"] for r in finetune}  # type: ignore[index]
    assert assistant_texts == {edit, approved.answer}
    assert any("<passage" in r["messages"][1]["content"] for r in finetune)  # type: ignore[index]

    pairs = loupe.export("preferences")
    assert len(pairs) == 1
    assert pairs[0]["chosen"] == [{"role": "assistant", "content": edit}]
    assert pairs[0]["rejected"] == [{"role": "assistant", "content": answer.answer}]

    evaluation = {row["question"]: row for row in loupe.export("eval")}
    assert evaluation[QUESTION]["answer"] == edit
    cited_docs = {c.document_id for c in answer.citations}
    assert set(evaluation[QUESTION]["document_ids"]) == cited_docs  # type: ignore[arg-type]
    assert evaluation[QUESTION]["decision"] == "corrected"
    assert all(d["content_hash"] for d in evaluation[QUESTION]["documents"])  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        loupe.export("nonsense")

    # The feedback export says what each row decided, where it was given, and on what versions.
    rows = [json.loads(line) for line in loupe.export_feedback("jsonl").splitlines()]
    assert [(r["decision"], r["source"]) for r in rows] == [
        ("corrected", "api"),
        ("approved", "api"),
    ]
    assert rows[0]["reviewer"] is None or isinstance(rows[0]["reviewer"], str)
    assert rows[0]["prompt_version"] == answer.prompt_version
    assert rows[0]["standalone_question"] == QUESTION
    assert rows[0]["documents"] and all(d["content_hash"] for d in rows[0]["documents"])


def test_chat_reactions_from_an_admin_are_not_reviews(loupe: Loupe) -> None:
    # Single-user mode makes the chat user an admin: a thumb in chat must not close the review.
    answer = loupe.ask(QUESTION)
    loupe.feedback(
        answer.answer_id or "",
        rating="up",
        edited_answer="25 days [1].",
        role="admin",
        source="chat",
    )
    assert loupe.ask(QUESTION).verified is None
    # Both answers to the question are one group in the queue, and neither is reviewed.
    [group] = loupe.review_queue(reviewed=False)
    assert {group.answer.answer_id, *group.repeats} >= {answer.answer_id}
    assert group.decision is None and not group.reviewed
    assert loupe.review_progress()[0] == 0
    loupe.feedback(answer.answer_id or "", rating="up", role="expert", source="review")
    assert loupe.ask(QUESTION).verified is not None
    assert loupe.review_progress()[0] == 1


def test_a_verdict_carries_to_a_rewording_not_to_another_question_on_the_topic() -> None:
    # ArguAna: arguments of one debate score 0.7-0.85 with each other; from 0.7 one query's
    # verdicts demoted another query's gold passage (17 untouched hits broken).
    def at(cosine: float) -> list[float]:
        return [cosine, math.sqrt(1 - cosine**2)]

    now = datetime.now(UTC)
    boosts = Boosts([PassageVerdict("c", Verdict.does_not_support, now, at(1.0))], now)
    assert boosts.offsets(at(0.97), ["c"])["c"] == pytest.approx(-0.15)  # a rewording
    assert boosts.offsets(at(0.80), ["c"])["c"] == 0.0  # same debate, another argument


def test_a_verdict_for_this_very_question_is_not_outvoted_by_a_near_twin() -> None:
    # ArguAna has near-twin queries (cosine >= 0.95) with different gold passages. Query A's
    # expert said its first passage g supports it; twin B's expert said g does not support B
    # and h does. Counting both in full cancelled A's own verdict and put B's gold first for A.
    def at(cosine: float) -> list[float]:
        return [cosine, math.sqrt(1 - cosine**2)]

    now = datetime.now(UTC)
    boosts = Boosts(
        [
            PassageVerdict("g", Verdict.supports, now, at(1.0)),
            PassageVerdict("g", Verdict.does_not_support, now, at(0.96)),
            PassageVerdict("h", Verdict.supports, now, at(0.96)),
        ],
        now,
    )
    assert boosts.offsets(at(1.0), ["g", "h"]) == pytest.approx({"g": 0.15, "h": 0.0})
    # B itself is judged by B's verdicts, and a question between the two by both.
    assert boosts.offsets(at(0.96), ["g", "h"]) == pytest.approx({"g": -0.15, "h": 0.15})
    assert boosts.offsets(at(0.99), ["g", "h"]) == pytest.approx({"g": 0.0, "h": 0.15})
