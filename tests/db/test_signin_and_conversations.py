"""Lasting local sign-ins and the conversation list, on SQLite and Postgres (`db`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import bcrypt
import pytest
from sqlalchemy import select

from core.auth import Actor, AuthConfig
from core.db import queries as q
from core.db.models import Answer, Conversation, SignIn
from core.db.session import Database
from core.services.conversations import ConversationService, title_from
from core.services.signin import SignInService

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
UMA, ADA, URSULA = Actor("uma", "user"), Actor("ada", "admin"), Actor("ursula", "user")


def config(password: str = "uma-secret", *, role: str = "user") -> AuthConfig:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
    return AuthConfig.from_secrets(
        {"users": {"uma": {"password_hash": hashed, "role": role, "name": "Uma"}}}
    )


def test_a_sign_in_lasts_until_it_expires(db: Database) -> None:
    auth = config()
    sign_ins = SignInService(db, timedelta(hours=2))
    issued = sign_ins.issue(auth.users["uma"], now=T0)
    assert issued.max_age_seconds == 7200 and issued.expires_at == T0 + timedelta(hours=2)

    assert sign_ins.resolve(issued.token, auth, now=T0 + timedelta(minutes=119)) == Actor(
        "uma", "user", "Uma", "local"
    )
    assert sign_ins.resolve(issued.token, auth, now=T0 + timedelta(hours=2)) is None
    assert sign_ins.resolve("a-guessed-token", auth, now=T0) is None
    assert sign_ins.resolve(None, auth, now=T0) is None
    # SQL holds a hash of the token, never the token itself.
    with db.session() as s:
        [row] = s.scalars(select(SignIn))
        assert issued.token not in (row.token_hash, row.password_fingerprint)


def test_signing_out_and_a_changed_password_end_a_sign_in(db: Database) -> None:
    auth = config()
    sign_ins = SignInService(db, timedelta(days=7))
    first = sign_ins.issue(auth.users["uma"], now=T0)
    second = sign_ins.issue(auth.users["uma"], now=T0)
    assert sign_ins.revoke(first.token, now=T0) and not sign_ins.revoke(first.token, now=T0)
    assert sign_ins.resolve(first.token, auth, now=T0) is None
    assert sign_ins.resolve(second.token, auth, now=T0) is not None  # another browser's

    # The secrets now hold a new password hash for uma: her old sign-ins no longer count.
    assert sign_ins.resolve(second.token, config("new-password"), now=T0) is None
    # A role changed in the secrets applies to a live sign-in at once; a removed user is out.
    assert sign_ins.resolve(second.token, auth, now=T0) is not None
    same_hash = AuthConfig(
        {"uma": auth.users["uma"].__class__("uma", auth.users["uma"].password_hash, "admin")}
    )
    assert sign_ins.resolve(second.token, same_hash, now=T0).role == "admin"  # type: ignore[union-attr]
    assert sign_ins.resolve(second.token, AuthConfig(), now=T0) is None


def test_expired_and_revoked_sign_ins_are_cleared_out(db: Database) -> None:
    auth = config()
    sign_ins = SignInService(db, timedelta(hours=1))
    old = sign_ins.issue(auth.users["uma"], now=T0)
    sign_ins.revoke(sign_ins.issue(auth.users["uma"], now=T0).token, now=T0)
    sign_ins.issue(auth.users["uma"], now=T0 + timedelta(hours=3))
    with db.session() as s:
        assert len(list(s.scalars(select(SignIn)))) == 1
    assert sign_ins.resolve(old.token, auth, now=T0) is None


def add_turn(db: Database, conversation_id: str, question: str, answer: str, at: datetime) -> None:
    with db.session() as s:
        s.add(
            Answer(
                workspace="default",
                conversation_id=conversation_id,
                user="uma",
                question=question,
                standalone_question=question,
                answer=answer,
                model="extractive",
                generator="extractive",
                confidence=0.8,
                confidence_label="high",
                created_at=at,
            )
        )


def new_conversation(db: Database, user: str, title: str, at: datetime) -> str:
    with db.session() as s:
        conversation = q.create_conversation(s, "default", user, title)
        conversation.created_at = at
        return conversation.id


def test_conversations_newest_first_searchable_renamable(db: Database) -> None:
    conversations = ConversationService(db, "default")
    leave = new_conversation(db, "uma", "Annual leave", T0)
    hotels = new_conversation(db, "uma", "Hotels", T0 + timedelta(hours=1))
    empty = new_conversation(db, "uma", "Nothing asked", T0 + timedelta(minutes=30))
    theirs = new_conversation(db, "ursula", "Ursula's", T0 + timedelta(hours=5))
    add_turn(db, leave, "Annual leave?", "25 days [1].", T0)
    add_turn(db, hotels, "Hotel limit in Oslo?", "190 euros [1].", T0 + timedelta(hours=1))
    # A later question in the first conversation makes it the most recent.
    add_turn(db, leave, "And carry-over?", "Five days to March [1].", T0 + timedelta(hours=2))

    listed = conversations.list(UMA)
    assert [c.id for c in listed] == [leave, hotels, empty]
    assert (listed[0].title, listed[0].questions, listed[0].last_active) == (
        "Annual leave",
        2,
        T0 + timedelta(hours=2),
    )
    assert listed[2].questions == 0 and listed[2].last_active == T0 + timedelta(minutes=30)
    # Search reads titles, questions and answers, ignoring case.
    assert [c.id for c in conversations.list(UMA, search="OSLO")] == [hotels]
    assert [c.id for c in conversations.list(UMA, search="march")] == [leave]
    assert [c.id for c in conversations.list(UMA, search="nothing")] == [empty]
    assert conversations.list(UMA, search="parental") == []

    assert conversations.rename(hotels, "  Travel   limits ", actor=UMA) == "Travel limits"
    assert conversations.list(UMA, search="travel")[0].title == "Travel limits"
    with pytest.raises(ValueError, match="needs a title"):
        conversations.rename(hotels, "   ", actor=UMA)
    with pytest.raises(PermissionError):
        conversations.rename(hotels, "Mine now", actor=URSULA)

    # Admins may list everyone's; nobody else may.
    assert {c.id for c in conversations.list(ADA, everyone=True)} == {leave, hotels, empty, theirs}
    assert conversations.list(ADA) == []
    with pytest.raises(PermissionError):
        conversations.list(UMA, everyone=True)


def test_deleting_a_conversation_hides_it_but_keeps_it_for_audit(db: Database) -> None:
    conversations = ConversationService(db, "default")
    kept = new_conversation(db, "uma", "Kept", T0)
    gone = new_conversation(db, "uma", "Gone", T0 + timedelta(hours=1))
    add_turn(db, gone, "Parental leave?", "Sixteen weeks [1].", T0 + timedelta(hours=1))
    with pytest.raises(PermissionError):
        conversations.delete(gone, actor=URSULA)

    conversations.delete(gone, actor=UMA)
    assert [c.id for c in conversations.list(UMA)] == [kept]
    assert [c.id for c in conversations.list(ADA, everyone=True)] == [kept]
    assert conversations.list(UMA, search="parental") == []
    with pytest.raises(LookupError):
        conversations.rename(gone, "Back", actor=UMA)
    with pytest.raises(LookupError):
        conversations.delete(gone, actor=UMA)
    with db.session() as s:
        row = s.get_one(Conversation, gone)
        assert row.deleted_by == "uma" and row.deleted_at is not None
        assert [a.question for a in q.conversation_answers(s, gone)] == ["Parental leave?"]
        assert q.open_conversation(s, "default", gone) is None


def test_titles_come_from_the_first_question() -> None:
    assert title_from("  How many   days of leave?\nSecond line") == "How many days of leave?"
    long = "word " * 40
    title = title_from(long)
    assert len(title) <= 80 and title.endswith("…") and not title.endswith(" …")
    assert title_from("   ") == "Untitled conversation"
