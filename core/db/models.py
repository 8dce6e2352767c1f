"""SQL is Loupe's system of record: documents, conversations, answers, feedback, prompts.

Answers keep everything needed to reproduce and learn from them; feedback is append-only (an
edit is a new row, never an update), so the history of what experts said is never lost.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.vocab import DocumentStatus, Rating


def _uuid() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is timezone-aware (UTC) on every backend.

    Postgres keeps the offset, SQLite does not: without this, SQLite hands back naive datetimes
    that cannot be compared with aware ones. Naive input is refused rather than guessed at,
    because Postgres would read it in the session's time zone and SQLite as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    # Named constraints, so later migrations can drop or alter them (SQLite's batch mode needs
    # names, and Postgres's generated names are not predictable across versions).
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime()}


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uuid)
    workspace: Mapped[str] = mapped_column(String(64), default="default", index=True)
    name: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    stored_path: Mapped[str | None] = mapped_column(String(1024))
    status: Mapped[DocumentStatus] = mapped_column(
        Enum(DocumentStatus, native_enum=False, length=16), default=DocumentStatus.pending
    )
    error: Mapped[str | None] = mapped_column(Text)
    pages: Mapped[int | None] = mapped_column(Integer)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    uploaded_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    indexed_at: Mapped[datetime | None] = mapped_column()
    # The ingest that is writing this document's next version (None when nobody is), and until
    # when its claim holds; the owner's heartbeat keeps moving the deadline forward. Search serves
    # only chunks of `content_hash` while the status is ready, so a version being written (or
    # left behind by a crash) is never served next to the ready one.
    lease_owner: Mapped[str | None] = mapped_column(String(128), index=True)
    lease_heartbeat_at: Mapped[datetime | None] = mapped_column()
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    # The original to delete (unless a document uses it) when the lease ends, also after a
    # crash: the new version's until it is published, the replaced version's after.
    lease_cleanup_path: Mapped[str | None] = mapped_column(String(1024))


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uuid)
    workspace: Mapped[str] = mapped_column(String(64), default="default", index=True)
    user: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Deleting a conversation hides it from its owner; the row and its answers stay for audit
    # (and keep feeding review and insights).
    deleted_at: Mapped[datetime | None] = mapped_column()
    deleted_by: Mapped[str | None] = mapped_column(String(128))

    answers: Mapped[list[Answer]] = relationship(
        back_populates="conversation", order_by="Answer.created_at"
    )


class SignIn(Base):
    """A local sign-in that outlasts the browser tab: the cookie holds a random token, this row
    only its SHA-256, so a leaked database does not sign anyone in. Signing out revokes the
    row; a changed password no longer matches the fingerprint, which ends it too."""

    __tablename__ = "sign_ins"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(String(128), index=True)
    # SHA-256 of the user's bcrypt hash when they signed in.
    password_fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class PromptVersion(Base):
    __tablename__ = "prompt_versions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Answer(Base):
    __tablename__ = "answers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uuid)
    workspace: Mapped[str] = mapped_column(String(64), default="default", index=True)
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    user: Mapped[str | None] = mapped_column(String(128))
    question: Mapped[str] = mapped_column(Text)
    standalone_question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    # Every retrieved passage: n, chunk_id, document_id, document, page, heading, quote,
    # score, keyword_score, vector_score, cited.
    sources: Mapped[list[Any]] = mapped_column(default=list)
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prompt_version: Mapped[str | None] = mapped_column(ForeignKey("prompt_versions.id"))
    model: Mapped[str] = mapped_column(String(128))
    generator: Mapped[str] = mapped_column(String(32))  # llm | extractive | fallback | none
    notice: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Float)
    confidence_label: Mapped[str] = mapped_column(String(16))
    confidence_features: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)  # seconds per stage
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    conversation: Mapped[Conversation | None] = relationship(back_populates="answers")
    # The database deletes feedback with its answer (ON DELETE CASCADE); without this the ORM
    # would first try to set feedback.answer_id to NULL, which the NOT NULL column refuses.
    feedback: Mapped[list[Feedback]] = relationship(
        back_populates="answer",
        order_by="[Feedback.created_at, Feedback.id]",  # id breaks ties on coarse clocks
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    answer_id: Mapped[str] = mapped_column(ForeignKey("answers.id", ondelete="CASCADE"), index=True)
    rating: Mapped[Rating | None] = mapped_column(Enum(Rating, native_enum=False, length=8))
    comment: Mapped[str | None] = mapped_column(Text)
    edited_answer: Mapped[str | None] = mapped_column(Text)
    # {"1": "supports", "2": "does_not_support"}: keyed by citation number.
    citation_verdicts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    role: Mapped[str] = mapped_column(String(16), default="user")
    # Where it was given: "chat" (a reaction while asking), "review" (the expert queue) or
    # "api" (CLI and integrations). Only expert feedback outside chat counts as a review.
    source: Mapped[str] = mapped_column(String(16), default="api", server_default="api")
    user: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    answer: Mapped[Answer] = relationship(back_populates="feedback")
