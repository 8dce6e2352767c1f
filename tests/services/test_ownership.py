"""Ownership is checked in `core`, not only by the pages: a conversation is continued only by
its owner, read only by its owner or an admin, and feedback is recorded and read back in the
name of whoever is acting, never a name the caller chose."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.auth import OPERATOR, Actor
from core.config import Settings
from core.db.models import Answer, Feedback
from core.ingest.pipeline import IngestItem
from core.service import Loupe

UMA, URSULA, ADA = Actor("uma", "user"), Actor("ursula", "user"), Actor("ada", "admin")
LEAVE = IngestItem(
    "leave.txt",
    b"New employees receive 25 days of paid annual leave. Unused leave can be carried over "
    b"until the end of March.",
)
QUESTION = "How many days of paid annual leave do new employees receive?"


@pytest.fixture
def loupe(tmp_path: Path) -> Iterator[Loupe]:
    engine = Loupe(
        Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/loupe.db", llm="extractive")
    )
    engine.ingest([LEAVE])
    yield engine
    engine.close()


def answers(loupe: Loupe) -> list[Answer]:
    with loupe.db.session() as s:
        return list(s.scalars(select(Answer).order_by(Answer.created_at, Answer.id)))


def test_only_the_owner_continues_a_conversation(loupe: Loupe) -> None:
    conversation = loupe.new_conversation("leave", actor=UMA)
    loupe.ask(QUESTION, conversation_id=conversation, actor=UMA)

    for intruder in (URSULA, ADA, OPERATOR):
        with pytest.raises(PermissionError, match="belongs to someone else"):
            loupe.ask_stream("And how long?", conversation_id=conversation, actor=intruder)
        with pytest.raises(PermissionError):  # history given outright is no way round it
            loupe.ask("And how long?", conversation_id=conversation, history=[], actor=intruder)
    assert [(a.user, a.conversation_id) for a in answers(loupe)] == [("uma", conversation)]

    follow_up = loupe.ask("And can it be carried over?", conversation_id=conversation, actor=UMA)
    assert follow_up.standalone_question.startswith(QUESTION), "condensed with her own turn"
    assert [a.user for a in answers(loupe)] == ["uma", "uma"]


def test_an_unknown_conversation_is_refused(loupe: Loupe) -> None:
    with pytest.raises(LookupError):
        loupe.ask_stream(QUESTION, conversation_id="no-such-conversation", actor=UMA)
    assert answers(loupe) == []


def test_a_conversation_is_read_by_its_owner_and_admins_only(loupe: Loupe) -> None:
    conversation = loupe.new_conversation(actor=UMA)
    loupe.ask(QUESTION, conversation_id=conversation, actor=UMA)

    for reader in (UMA, ADA, OPERATOR):
        [(role, text), _] = loupe.conversation_history(conversation, actor=reader)
        assert (role, text) == ("user", QUESTION)
    with pytest.raises(PermissionError):
        loupe.conversation_history(conversation, actor=URSULA)


def test_feedback_is_recorded_in_the_actors_name(loupe: Loupe) -> None:
    answer_id = loupe.ask(QUESTION, actor=UMA).answer_id or ""
    loupe.feedback(answer_id, rating="down", comment="mine", actor=UMA)
    loupe.feedback(answer_id, rating="up", comment="hers", actor=URSULA)
    with pytest.raises(TypeError):
        loupe.feedback(answer_id, rating="up", user="someone-else", actor=UMA)  # type: ignore[call-arg]

    with loupe.db.session() as s:
        rows = s.execute(select(Feedback.user, Feedback.comment).order_by(Feedback.id)).all()
        assert s.scalar(select(func.count()).select_from(Feedback)) == 2
    assert [tuple(row) for row in rows] == [("uma", "mine"), ("ursula", "hers")]


def test_feedback_state_is_the_actors_own(loupe: Loupe) -> None:
    answer_id = loupe.ask(QUESTION, actor=UMA).answer_id or ""
    loupe.feedback(answer_id, rating="down", comment="mine", actor=UMA)
    loupe.feedback(answer_id, rating="up", comment="hers", actor=URSULA)

    assert loupe.feedback_state([answer_id], actor=UMA)[answer_id].comment == "mine"
    assert loupe.feedback_state([answer_id], actor=URSULA)[answer_id].comment == "hers"
    assert loupe.feedback_state([answer_id], actor=ADA)[answer_id].comment is None
