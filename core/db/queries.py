"""The queries the service layer runs, as typed functions taking a Session first.

They flush but never commit: the caller's `Database.session()` block is the unit of work.
Everything here runs unchanged on SQLite and Postgres; where JSON querying differs between the
two (sources of an answer), a portable SQL prefilter narrows the rows and Python decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, case, cast, delete, exists, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.db.models import (
    Answer,
    Conversation,
    Document,
    DocumentStatus,
    Feedback,
    PromptVersion,
    Rating,
    SignIn,
    utcnow,
)
from core.vocab import REVIEWER_ROLES, FeedbackSource, Role, Verdict

# Documents


def get_document(s: Session, doc_id: str) -> Document | None:
    return s.get(Document, doc_id)


def find_document_by_hash(s: Session, workspace: str, content_hash: str) -> Document | None:
    """The first upload of these exact bytes in the workspace: ingestion is idempotent by hash."""
    return s.scalars(
        select(Document)
        .where(Document.workspace == workspace, Document.content_hash == content_hash)
        .order_by(Document.created_at)
        .limit(1)
    ).first()


def find_document_by_name(s: Session, workspace: str, name: str) -> Document | None:
    """The newest document with this file name: a re-uploaded file replaces what users meant."""
    return s.scalars(
        select(Document)
        .where(Document.workspace == workspace, Document.name == name)
        .order_by(Document.created_at.desc())
        .limit(1)
    ).first()


def list_documents(
    s: Session, workspace: str, *, status: DocumentStatus | str | None = None
) -> list[Document]:
    """The workspace's documents, newest first, optionally only those in one status."""
    query = select(Document).where(Document.workspace == workspace)
    if status is not None:
        query = query.where(Document.status == DocumentStatus(status))
    return list(s.scalars(query.order_by(Document.created_at.desc(), Document.id)))


def delete_document_row(s: Session, doc_id: str) -> bool:
    """Delete the row only (the caller removes chunks and the stored file); True if it existed.

    Answers keep their sources as they were: they record what was cited at the time.
    """
    document = s.get(Document, doc_id)
    if document is None:
        return False
    s.delete(document)
    s.flush()
    return True


# Prompts


def ensure_prompt_version(s: Session, id: str, name: str, template: str) -> PromptVersion:
    """Register a prompt version, or check that the registered one is the same template.

    Versions are immutable, because answers point at them to say how they were produced: a
    changed template needs a new id. Insert-or-ignore keeps two processes starting at once
    from failing on the primary key.
    """
    postgres = s.get_bind().dialect.name == "postgresql"
    insert = postgresql_insert if postgres else sqlite_insert
    s.execute(
        insert(PromptVersion)
        .values(id=id, name=name, template=template)
        .on_conflict_do_nothing(index_elements=[PromptVersion.id])
    )
    version = s.get_one(PromptVersion, id)
    if version.template != template:
        raise ValueError(
            f"prompt version {id!r} is already registered with a different template; "
            "versions are immutable, give the changed template a new id"
        )
    return version


# Conversations and answers


def create_conversation(
    s: Session, workspace: str, user: str | None, title: str | None
) -> Conversation:
    conversation = Conversation(workspace=workspace, user=user, title=title)
    s.add(conversation)
    s.flush()  # assigns the id, which the caller needs for the answers that follow
    return conversation


def get_conversation(s: Session, conversation_id: str) -> Conversation | None:
    return s.get(Conversation, conversation_id)


def get_answer(s: Session, answer_id: str) -> Answer | None:
    return s.get(Answer, answer_id)


def conversation_answers(s: Session, conversation_id: str) -> list[Answer]:
    """The conversation's turns, oldest first (the order they are shown and condensed in)."""
    return list(
        s.scalars(
            select(Answer)
            .where(Answer.conversation_id == conversation_id)
            .order_by(Answer.created_at, Answer.id)
        )
    )


# Feedback (append-only: every call adds a row, nothing is updated)


def add_feedback(
    s: Session,
    answer_id: str,
    *,
    rating: Rating | str | None = None,
    comment: str | None = None,
    edited_answer: str | None = None,
    citation_verdicts: Mapping[str | int, str] | None = None,
    role: str = "user",
    user: str | None = None,
    source: str = "api",
) -> Feedback:
    """Record one piece of feedback on an answer, after checking it makes sense for that answer.

    Raises LookupError for an unknown answer and ValueError for feedback that says nothing or
    says something impossible (an unknown rating, role or verdict, a verdict on a passage the
    answer did not cite): bad rows would poison the review queue and the exported datasets.
    """
    answer = s.get(Answer, answer_id)
    if answer is None:
        raise LookupError(f"no answer with id {answer_id!r}")
    comment = _text_or_none(comment)
    edited_answer = _text_or_none(edited_answer)
    verdicts = {str(n): verdict for n, verdict in (citation_verdicts or {}).items()}
    if rating is None and comment is None and edited_answer is None and not verdicts:
        raise ValueError("feedback needs a rating, comment, edited answer or citation verdict")
    if rating is not None and rating not in set(Rating):
        raise ValueError(f"rating must be one of {[r.value for r in Rating]}, not {rating!r}")
    if role not in set(Role):
        raise ValueError(f"role must be one of {[r.value for r in Role]}, not {role!r}")
    if source not in set(FeedbackSource):
        raise ValueError(
            f"source must be one of {[s.value for s in FeedbackSource]}, not {source!r}"
        )
    _check_verdicts(answer, verdicts)

    feedback = Feedback(
        answer=answer,
        rating=None if rating is None else Rating(rating),
        comment=comment,
        edited_answer=edited_answer,
        citation_verdicts=verdicts,
        role=role,
        user=user,
        source=source,
    )
    s.add(feedback)
    s.flush()
    return feedback


def _text_or_none(value: str | None) -> str | None:
    """Blank text from a form field is no feedback at all."""
    return value if value and value.strip() else None


def _check_verdicts(answer: Answer, verdicts: dict[str, Any]) -> None:
    """A verdict may judge any passage the answer was given, cited or not: an expert who sees
    that an uncited passage holds the answer says so, and retrieval learns to rank it first."""
    given = {str(source.get("n")) for source in answer.sources}
    for n, verdict in verdicts.items():
        if verdict not in set(Verdict):
            raise ValueError(
                f"verdict for passage [{n}] must be one of {[v.value for v in Verdict]}"
            )
        if n not in given:
            raise ValueError(
                f"passage [{n}] was not given to this answer (given: {sorted(given) or 'none'})"
            )


def feedback_for(s: Session, answer_id: str) -> list[Feedback]:
    """All feedback on an answer, oldest first."""
    return list(
        s.scalars(
            select(Feedback)
            .where(Feedback.answer_id == answer_id)
            .order_by(Feedback.created_at, Feedback.id)
        )
    )


def feedback_by_user(s: Session, answer_ids: Sequence[str], user: str | None) -> list[Feedback]:
    """`user`'s feedback on these answers, oldest first."""
    return list(
        s.scalars(
            select(Feedback)
            .where(Feedback.answer_id.in_(list(answer_ids)), Feedback.user == user)
            .order_by(Feedback.created_at, Feedback.id)
        )
    )


def latest_edit(s: Session, answer_id: str) -> str | None:
    """The most recent edited answer: earlier edits stay as history, the newest one counts."""
    return s.scalars(
        select(Feedback.edited_answer)
        .where(Feedback.answer_id == answer_id, Feedback.edited_answer.is_not(None))
        .order_by(Feedback.created_at.desc(), Feedback.id.desc())
        .limit(1)
    ).first()


# Review queue


def _has_feedback(*conditions: Any) -> Any:
    return exists().where(Feedback.answer_id == Answer.id, *conditions)


_thumbs_down = _has_feedback(Feedback.rating == Rating.down)


# The SQL form of `core.vocab.is_review`.
_reviewed = _has_feedback(Feedback.role.in_(REVIEWER_ROLES), Feedback.source != FeedbackSource.chat)


def review_queue(
    s: Session,
    workspace: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    rating: Rating | str | None = None,
    document_id: str | None = None,
    reviewed: bool | None = None,
    limit: int = 100,
) -> list[Answer]:
    """Answers for experts to review, most in need first.

    Order: answers with any thumbs-down, then the least confident, then the newest. Filters:
    created in [since, until); `rating` keeps answers that got at least one such rating;
    `document_id` keeps answers with a retrieved passage from that document; `reviewed` is
    whether an expert or admin has left any feedback.
    """
    query = select(Answer).where(Answer.workspace == workspace)
    if since is not None:
        query = query.where(Answer.created_at >= since)
    if until is not None:
        query = query.where(Answer.created_at < until)
    if rating is not None:
        query = query.where(_has_feedback(Feedback.rating == Rating(rating)))
    if reviewed is not None:
        query = query.where(_reviewed if reviewed else ~_reviewed)
    query = query.order_by(
        case((_thumbs_down, 0), else_=1), Answer.confidence, Answer.created_at.desc(), Answer.id
    )
    if document_id is None:
        return list(s.scalars(query.limit(limit)))
    return _cites_document(s, query, document_id)[:limit]


def _cites_document(s: Session, query: Select[Any], document_id: str) -> list[Answer]:
    """Filter by a document inside the `sources` JSON, the same way on every backend.

    SQLite and Postgres query JSON arrays differently, so SQL only keeps rows whose JSON text
    contains the id (ids are 32 hex characters, so that is nearly exact), and Python checks.
    """
    query = query.where(cast(Answer.sources, String).contains(document_id, autoescape=True))
    return [
        answer
        for answer in s.scalars(query)
        if any(source.get("document_id") == document_id for source in answer.sources)
    ]


def review_progress(s: Session, workspace: str) -> tuple[int, int]:
    """(reviewed, remaining) answers in the workspace, for the reviewers' progress bar."""
    total, reviewed = s.execute(
        select(func.count(), func.count().filter(_reviewed)).where(Answer.workspace == workspace)
    ).one()
    return reviewed, total - reviewed


# Conversation list (the chat sidebar)


def list_conversations(
    s: Session,
    workspace: str,
    *,
    user: str | None,
    search: str | None = None,
    limit: int = 50,
) -> list[tuple[Conversation, datetime, int]]:
    """(conversation, last activity, questions) for the sidebar, most recently active first.

    `user=None` lists everyone's (admins); deleted conversations are never listed. `search`
    matches the title or any question or answer in the conversation, case-insensitively.
    """
    turns = (
        select(
            Answer.conversation_id.label("id"),
            func.max(Answer.created_at).label("last"),
            func.count().label("turns"),
        )
        .group_by(Answer.conversation_id)
        .subquery()
    )
    last = func.coalesce(turns.c.last, Conversation.created_at)
    query = (
        select(Conversation, last, func.coalesce(turns.c.turns, 0))
        .outerjoin(turns, turns.c.id == Conversation.id)
        .where(Conversation.workspace == workspace, Conversation.deleted_at.is_(None))
    )
    if user is not None:
        query = query.where(Conversation.user == user)
    if search and search.strip():
        pattern = f"%{search.strip()}%"
        mentions = exists().where(
            Answer.conversation_id == Conversation.id,
            Answer.question.ilike(pattern) | Answer.answer.ilike(pattern),
        )
        query = query.where(Conversation.title.ilike(pattern) | mentions)
    rows = s.execute(query.order_by(last.desc(), Conversation.id.desc()).limit(limit))
    return [(conversation, when, int(count)) for conversation, when, count in rows]


def open_conversation(s: Session, workspace: str, conversation_id: str) -> Conversation | None:
    """The conversation, unless it is in another workspace or deleted."""
    conversation = s.get(Conversation, conversation_id)
    if conversation is None or conversation.workspace != workspace:
        return None
    return None if conversation.deleted_at is not None else conversation


def soft_delete_conversation(s: Session, conversation: Conversation, by: str) -> None:
    """Hide the conversation from everyone's list; its row and answers stay for audit."""
    conversation.deleted_at = utcnow()
    conversation.deleted_by = by
    s.flush()


# Sign-ins (local users' lasting sessions)


def add_sign_in(
    s: Session, token_hash: str, user: str, password_fingerprint: str, expires_at: datetime
) -> SignIn:
    sign_in = SignIn(
        token_hash=token_hash,
        user=user,
        password_fingerprint=password_fingerprint,
        expires_at=expires_at,
    )
    s.add(sign_in)
    s.flush()
    return sign_in


def live_sign_in(s: Session, token_hash: str, now: datetime) -> SignIn | None:
    """The sign-in for this token if it is neither expired nor revoked."""
    sign_in = s.get(SignIn, token_hash)
    if sign_in is None or sign_in.revoked_at is not None or sign_in.expires_at <= now:
        return None
    return sign_in


def revoke_sign_in(s: Session, token_hash: str, now: datetime) -> bool:
    sign_in = s.get(SignIn, token_hash)
    if sign_in is None or sign_in.revoked_at is not None:
        return False
    sign_in.revoked_at = now
    s.flush()
    return True


def forget_expired_sign_ins(s: Session, now: datetime) -> int:
    """Delete sign-ins that can no longer be used, so the table stays small."""
    result = s.execute(
        delete(SignIn).where((SignIn.expires_at <= now) | SignIn.revoked_at.is_not(None))
    )
    return int(getattr(result, "rowcount", 0) or 0)
