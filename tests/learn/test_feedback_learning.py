"""Expert feedback changes what Loupe does: verified answers are offered again, passages judged
unsupportive are demoted, and the feedback exports as datasets. Real SQL, store and model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.auth import Actor
from core.config import Settings
from core.feedback import BOOST_HALF_LIFE_DAYS, UNSUPPORT_PENALTY, retrieval_boosts
from core.ingest.pipeline import IngestItem
from core.service import Loupe

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


def test_expert_edit_is_offered_for_the_same_question(loupe: Loupe) -> None:
    first = loupe.ask(QUESTION)
    assert first.verified is None
    loupe.feedback(
        first.answer_id or "",
        edited_answer="New hires get 25 days [1].",
        role="expert",
        actor=DANA,
    )
    again = loupe.ask("How many days of paid annual leave do new employees receive?")
    assert again.verified is not None
    assert again.verified.answer == "New hires get 25 days [1]."
    assert again.verified.expert == "dana" and again.verified.question == QUESTION
    assert again.verified.similarity >= 0.92
    assert loupe.ask("Can unused leave be carried over?").verified is None


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


def test_boosts_decay_with_age(loupe: Loupe) -> None:
    answer = loupe.ask(QUESTION)
    loupe.feedback(answer.answer_id or "", citation_verdicts={"1": "does_not_support"}, role="user")
    chunk = answer.sources[0].chunk_id
    with loupe.db.session() as s:
        fresh = retrieval_boosts(s, "default")[chunk]
        later = retrieval_boosts(
            s, "default", now=datetime.now(UTC) + timedelta(days=BOOST_HALF_LIFE_DAYS)
        )[chunk]
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
    assert pairs[0]["chosen"] == edit and pairs[0]["rejected"] == answer.answer

    evaluation = {row["question"]: row for row in loupe.export("eval")}
    assert evaluation[QUESTION]["answer"] == edit
    cited_docs = {c.document_id for c in answer.citations}
    assert set(evaluation[QUESTION]["document_ids"]) == cited_docs  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        loupe.export("nonsense")


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
    queue = {item.answer.answer_id: item for item in loupe.review_queue()}
    assert not queue[answer.answer_id].reviewed
    assert loupe.review_progress()[0] == 0
    loupe.feedback(answer.answer_id or "", rating="up", role="expert", source="review")
    assert loupe.ask(QUESTION).verified is not None
    assert loupe.review_progress()[0] == 1
