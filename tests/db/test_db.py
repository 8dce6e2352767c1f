"""The SQL layer on both backends: tests taking `db` or `db_url` run on SQLite and Postgres."""

from __future__ import annotations

import threading
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import delete, func, inspect, select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from core.config import Settings
from core.db import queries as q
from core.db.models import (
    Answer,
    Base,
    Document,
    DocumentStatus,
    Feedback,
    PromptVersion,
    Rating,
)
from core.db.session import Database, alembic_config, make_engine, migrate, normalize_url

TABLES = {"documents", "conversations", "prompt_versions", "answers", "feedback", "sign_ins"}
DOC_A, DOC_B, DOC_C = "a" * 32, "b" * 32, "c" * 32
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
KST = timezone(timedelta(hours=9))


def source(n: int, document_id: str, *, cited: bool) -> dict[str, Any]:
    return {
        "n": n,
        "chunk_id": f"{document_id[:4]}-{n}",
        "document_id": document_id,
        "document": f"{document_id[:4]}.pdf",
        "page": n,
        "heading": "Refunds",
        "quote": "Refunds are accepted within 30 days — 환불은 30일 이내.",
        "score": 0.8,
        "keyword_score": 0.7,
        "vector_score": 0.9,
        "cited": cited,
    }


SOURCES = [
    source(1, DOC_A, cited=True),
    source(2, DOC_B, cited=False),
    source(3, DOC_A, cited=True),
]


def add_answer(s: Session, **fields: Any) -> Answer:
    defaults: dict[str, Any] = {
        "question": "How long do refunds take?",
        "standalone_question": "How long do refunds take?",
        "answer": "Within 30 days [1][3].",
        "model": "extractive",
        "generator": "extractive",
        "confidence": 0.5,
        "confidence_label": "medium",
        "sources": SOURCES,
    }
    answer = Answer(**defaults | fields)
    s.add(answer)
    s.flush()
    return answer


def add_document(s: Session, name: str = "policy.pdf", **fields: Any) -> Document:
    fields.setdefault("content_hash", f"hash-{name}")
    document = Document(name=name, kind="pdf", **fields)
    s.add(document)
    s.flush()
    return document


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


# Engines and migrations


def test_migrate_creates_the_tables_and_is_idempotent(db_url: str) -> None:
    migrate(db_url)
    migrate(db_url)

    engine = make_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    finally:
        engine.dispose()
    assert current_revision(db_url) == head_revision()


def test_several_processes_can_migrate_at_once(db_url: str) -> None:
    spawn = get_context("spawn")  # fork would copy the parent's pooled connections
    workers = 4
    barrier = spawn.Barrier(workers)  # all start migrating together, or there is no race
    with ProcessPoolExecutor(
        workers, mp_context=spawn, initializer=barrier.wait, initargs=(60,)
    ) as pool:
        list(pool.map(migrate, [db_url] * workers))

    assert current_revision(db_url) == head_revision()


def test_models_and_migrations_agree(db: Database) -> None:
    """A model change without a migration fails here (what `alembic check` reports)."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_empty_and_upgrade_again(db: Database) -> None:
    with db.engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        assert set(inspect(connection).get_table_names()) == {"alembic_version"}
        command.upgrade(config, "head")
        assert TABLES <= set(inspect(connection).get_table_names())


def test_from_settings_migrates(db_url: str) -> None:
    database = Database.from_settings(Settings(database_url=db_url))
    try:
        with database.session() as s:
            assert q.list_documents(s, "default") == []
    finally:
        database.dispose()


def test_sqlite_connections_are_configured(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/new/dir/loupe.db")
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == 10_000

        # The pool hands the same connection to another thread, as Streamlit's threads do.
        results: list[Any] = []

        def query() -> None:
            with engine.connect() as connection:
                results.append(connection.exec_driver_sql("SELECT 1").scalar())

        thread = threading.Thread(target=query)
        thread.start()
        thread.join()
        assert results == [1]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgres://u:p@db:5432/loupe", "postgresql+psycopg"),
        ("postgresql://u:p@db:5432/loupe", "postgresql+psycopg"),
        ("postgresql+psycopg://u:p@db:5432/loupe", "postgresql+psycopg"),
        ("postgresql+psycopg2://u:p@db:5432/loupe", "postgresql+psycopg2"),
        ("sqlite:///data/loupe.db", "sqlite"),
    ],
)
def test_postgres_urls_use_psycopg_3(url: str, driver: str) -> None:
    assert normalize_url(url).drivername == driver


# Round trips


def test_documents_round_trip(db: Database) -> None:
    indexed_at = datetime(2025, 3, 1, 18, 30, tzinfo=KST)
    with db.session() as s:
        doc_id = add_document(s, tags=["policy", "환불"], pages=12, indexed_at=indexed_at).id

    with db.session() as s:
        doc = q.get_document(s, doc_id)
        assert doc is not None
        assert doc.tags == ["policy", "환불"]
        assert doc.status is DocumentStatus.pending
        assert doc.indexed_at == indexed_at
        assert doc.indexed_at.utcoffset() == timedelta(0)
        assert doc.created_at.tzinfo is not None
        assert q.find_document_by_hash(s, "default", "hash-policy.pdf") is doc
        assert q.find_document_by_hash(s, "other", "hash-policy.pdf") is None


def test_naive_datetimes_are_refused(db: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"), db.session() as s:
        add_document(s, indexed_at=datetime(2025, 3, 1))


def test_list_find_and_delete_documents(db: Database) -> None:
    with db.session() as s:
        old = add_document(s, "a.pdf", created_at=T0, status=DocumentStatus.ready)
        new = add_document(s, "b.pdf", created_at=T0 + timedelta(hours=1))
        newer_a = add_document(s, "a.pdf", content_hash="hash-a2", created_at=T0 + timedelta(2))
        add_document(s, "c.pdf", workspace="other")

        assert q.list_documents(s, "default") == [newer_a, new, old]
        assert q.list_documents(s, "default", status="ready") == [old]
        assert q.list_documents(s, "default", status=DocumentStatus.failed) == []
        assert q.find_document_by_name(s, "default", "a.pdf") is newer_a

        assert q.delete_document_row(s, old.id) is True
        assert q.delete_document_row(s, old.id) is False
        assert q.get_document(s, old.id) is None


def test_answers_round_trip(db: Database) -> None:
    with db.session() as s:
        q.ensure_prompt_version(s, "answer-v1", "answer", "Answer from {context}")
        conversation = q.create_conversation(s, "default", "kim", "Refunds")
        second = add_answer(s, conversation_id=conversation.id, created_at=T0 + timedelta(1))
        first = add_answer(
            s,
            conversation_id=conversation.id,
            created_at=T0,
            prompt_version="answer-v1",
            filters={"tags": ["policy"], "document_ids": [DOC_A]},
            confidence_features={"margin": 0.12, "grounded": [1.0, 0.5]},
            timings={"retrieve": 0.031, "generate": 1.2},
            prompt_tokens=812,
        )
        ids = (conversation.id, first.id, second.id)

    with db.session() as s:
        conversation_id, first_id, second_id = ids
        assert [a.id for a in q.conversation_answers(s, conversation_id)] == [first_id, second_id]
        answer = q.get_answer(s, first_id)
        assert answer is not None
        assert answer.sources == SOURCES
        assert answer.filters == {"tags": ["policy"], "document_ids": [DOC_A]}
        assert answer.confidence_features == {"margin": 0.12, "grounded": [1.0, 0.5]}
        assert answer.timings == {"retrieve": 0.031, "generate": 1.2}
        assert answer.created_at == T0
        assert answer.conversation is not None and answer.conversation.title == "Refunds"
        assert q.get_answer(s, "missing") is None


# Feedback


def test_feedback_is_append_only(db: Database) -> None:
    with db.session() as s:
        answer_id = add_answer(s).id
        assert q.latest_edit(s, answer_id) is None
        q.add_feedback(s, answer_id, rating="down", comment="Too vague", user="kim")
        q.add_feedback(s, answer_id, edited_answer="Within 30 days of delivery [1].", role="expert")
        q.add_feedback(
            s,
            answer_id,
            edited_answer="Within 30 days of delivery, with receipt [1].",
            citation_verdicts={1: "supports", "3": "does_not_support"},
            role="expert",
        )

    with db.session() as s:
        rows = q.feedback_for(s, answer_id)
        assert [f.rating for f in rows] == [Rating.down, None, None]
        assert [f.role for f in rows] == ["user", "expert", "expert"]
        assert rows[0].comment == "Too vague" and rows[0].user == "kim"
        assert rows[0].created_at.tzinfo is not None
        assert rows[2].citation_verdicts == {"1": "supports", "3": "does_not_support"}
        assert q.latest_edit(s, answer_id) == "Within 30 days of delivery, with receipt [1]."


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "needs a rating, comment"),
        ({"comment": "  ", "edited_answer": ""}, "needs a rating, comment"),
        ({"rating": "meh"}, "rating must be one of"),
        ({"rating": "up", "role": "owner"}, "role must be one of"),
        ({"citation_verdicts": {"1": "maybe"}}, "must be one of"),
        ({"citation_verdicts": {9: "supports"}}, r"passage \[9\] was not given"),
        ({"citation_verdicts": {"4": "supports"}}, r"passage \[4\] was not given"),
    ],
)
def test_feedback_validation(db: Database, fields: dict[str, Any], message: str) -> None:
    with db.session() as s:
        answer_id = add_answer(s).id
        with pytest.raises(ValueError, match=message):
            q.add_feedback(s, answer_id, **fields)
        with pytest.raises(LookupError, match="no answer"):
            q.add_feedback(s, "missing", rating="up")
        assert q.feedback_for(s, answer_id) == []


@pytest.mark.parametrize("how", ["orm", "sql"])
def test_deleting_an_answer_deletes_its_feedback(db: Database, how: str) -> None:
    with db.session() as s:
        answer = add_answer(s)
        kept = add_answer(s)
        q.add_feedback(s, answer.id, rating="up")
        q.add_feedback(s, answer.id, comment="Good")
        q.add_feedback(s, kept.id, rating="down")
        ids = (answer.id, kept.id)

    with db.session() as s:
        if how == "orm":
            s.delete(s.get_one(Answer, ids[0]))
        else:  # relies on ON DELETE CASCADE, so on SQLite's foreign_keys pragma
            s.execute(delete(Answer).where(Answer.id == ids[0]))

    with db.session() as s:
        assert s.scalars(select(Feedback.answer_id)).all() == [ids[1]]


# Review queue


def test_review_queue_order(db: Database) -> None:
    with db.session() as s:
        confident_but_down = add_answer(s, confidence=0.9, created_at=T0)
        low_old = add_answer(s, confidence=0.2, created_at=T0)
        low_new = add_answer(s, confidence=0.2, created_at=T0 + timedelta(hours=1))
        medium = add_answer(s, confidence=0.5, created_at=T0)
        up_and_down = add_answer(s, confidence=0.95, created_at=T0)
        add_answer(s, confidence=0.0, workspace="other")
        q.add_feedback(s, confident_but_down.id, rating="down")
        q.add_feedback(s, up_and_down.id, rating="up")
        q.add_feedback(s, up_and_down.id, rating="down")
        q.add_feedback(s, medium.id, rating="up")

        expected = [confident_but_down, up_and_down, low_new, low_old, medium]
        assert q.review_queue(s, "default") == expected
        assert q.review_queue(s, "default", limit=2) == expected[:2]


def test_review_queue_filters(db: Database) -> None:
    with db.session() as s:
        early = add_answer(s, created_at=T0, sources=[source(1, DOC_B, cited=True)])
        middle = add_answer(s, created_at=T0 + timedelta(1), confidence=0.1)
        late = add_answer(s, created_at=T0 + timedelta(2), sources=[source(1, DOC_C, cited=False)])
        q.add_feedback(s, early.id, rating="up")
        q.add_feedback(s, middle.id, rating="down", role="expert")
        q.add_feedback(s, late.id, comment="checked", role="admin")

        def queue(**filters: Any) -> list[Answer]:
            return q.review_queue(s, "default", **filters)

        assert queue(since=T0 + timedelta(1)) == [middle, late]
        assert queue(until=T0 + timedelta(1)) == [early]
        assert queue(since=T0, until=T0 + timedelta(2)) == [middle, early]
        assert queue(rating="up") == [early]
        assert queue(rating=Rating.down) == [middle]
        assert queue(reviewed=True) == [middle, late]
        assert queue(reviewed=False) == [early]
        assert queue(document_id=DOC_A) == [middle]  # SOURCES: passages from DOC_A and DOC_B
        assert queue(document_id=DOC_B) == [middle, early]
        assert queue(document_id=DOC_C) == [late]  # retrieved but not cited still counts
        assert queue(document_id=DOC_B, limit=1) == [middle]
        assert queue(document_id="a%") == []
        assert q.review_progress(s, "default") == (2, 1)
        assert q.review_progress(s, "other") == (0, 0)


# Prompt versions


def test_prompt_versions_are_immutable(db: Database) -> None:
    with db.session() as s:
        created = q.ensure_prompt_version(s, "answer-v1", "answer", "Use {context}.")
        assert q.ensure_prompt_version(s, "answer-v1", "answer", "Use {context}.") is created
        with pytest.raises(ValueError, match="immutable"):
            q.ensure_prompt_version(s, "answer-v1", "answer", "Use {context}, cite [n].")

    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(PromptVersion)) == 1
        assert s.get_one(PromptVersion, "answer-v1").template == "Use {context}."


# Sessions


def test_session_commits_or_rolls_back(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as s:
        add_document(s, "lost.pdf")
        raise RuntimeError("boom")
    with db.session() as s:
        add_document(s, "kept.pdf")

    with db.session() as s:
        assert [d.name for d in q.list_documents(s, "default")] == ["kept.pdf"]


def test_a_verdict_may_judge_an_uncited_passage(db: Database) -> None:
    # An expert who sees the answer in a passage the answer did not cite can say so.
    with db.session() as s:
        answer_id = add_answer(s).id
        row = q.add_feedback(s, answer_id, citation_verdicts={"2": "supports"}, role="expert")
        assert row.citation_verdicts == {"2": "supports"}
