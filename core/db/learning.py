"""The SQL reads behind what feedback teaches (core/learn/): the feedback log, read from a
known position on, and the answers it is about, as plain dataclasses.

Feedback rows are append-only with increasing ids, so a process that has applied every row up
to id N only needs the rows after N. `feedback_marker` is the cheap check done before each
question: the number of rows and the newest id. If the count grew by exactly the rows found
after N, nothing was missed; anything else (a row committed late with a lower id, feedback
deleted with its answer) asks the caller to read the log again from the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import Answer, Document, Feedback


@dataclass(frozen=True)
class FeedbackMarker:
    count: int
    last_id: int


@dataclass(frozen=True)
class FeedbackEvent:
    """One feedback row, as the learning code needs it."""

    id: int
    answer_id: str
    created_at: datetime
    rating: str | None
    comment: str | None
    edited_answer: str | None
    verdicts: dict[str, str]  # citation number → supports | does_not_support
    role: str
    source: str
    user: str | None


@dataclass(frozen=True)
class AnswerRecord:
    """The answer a piece of feedback is about, with the passages it was given."""

    id: str
    question: str
    standalone_question: str
    answer: str
    sources: tuple[dict[str, Any], ...]
    prompt_version: str | None
    model: str
    created_at: datetime


def _workspace_feedback(workspace: str) -> Any:
    return select(Feedback).join(Answer).where(Answer.workspace == workspace)


def feedback_marker(s: Session, workspace: str) -> FeedbackMarker:
    count, last = s.execute(
        select(func.count(Feedback.id), func.max(Feedback.id))
        .join(Answer)
        .where(Answer.workspace == workspace)
    ).one()
    return FeedbackMarker(int(count), int(last or 0))


def feedback_after(
    s: Session, workspace: str, after_id: int, *, up_to: int | None = None
) -> list[FeedbackEvent]:
    """Feedback rows with after_id < id <= up_to, in id order (the order they were given)."""
    query = _workspace_feedback(workspace).where(Feedback.id > after_id)
    if up_to is not None:
        query = query.where(Feedback.id <= up_to)
    return [
        FeedbackEvent(
            id=fb.id,
            answer_id=fb.answer_id,
            created_at=fb.created_at,
            rating=None if fb.rating is None else str(fb.rating),
            comment=fb.comment,
            edited_answer=fb.edited_answer,
            verdicts={str(n): str(v) for n, v in (fb.citation_verdicts or {}).items()},
            role=fb.role,
            source=fb.source,
            user=fb.user,
        )
        for fb in s.scalars(query.order_by(Feedback.id))
    ]


def answer_records(s: Session, answer_ids: list[str]) -> dict[str, AnswerRecord]:
    if not answer_ids:
        return {}
    rows = s.scalars(select(Answer).where(Answer.id.in_(answer_ids)))
    return {
        a.id: AnswerRecord(
            id=a.id,
            question=a.question,
            standalone_question=a.standalone_question,
            answer=a.answer,
            sources=tuple(dict(source) for source in a.sources or ()),
            prompt_version=a.prompt_version,
            model=a.model,
            created_at=a.created_at,
        )
        for a in rows
    }


@dataclass(frozen=True)
class ReviewedAnswer:
    """An answer with all its feedback, oldest first: what the exports are made of."""

    answer: AnswerRecord
    feedback: tuple[FeedbackEvent, ...]


def reviewed_answers(s: Session, workspace: str) -> list[ReviewedAnswer]:
    """Every answer of the workspace that has feedback, oldest answer first."""
    events = feedback_after(s, workspace, 0)
    by_answer: dict[str, list[FeedbackEvent]] = {}
    for event in events:
        by_answer.setdefault(event.answer_id, []).append(event)
    records = answer_records(s, list(by_answer))
    ordered = sorted(records.values(), key=lambda a: (a.created_at, a.id))
    return [ReviewedAnswer(a, tuple(by_answer[a.id])) for a in ordered]


def document_versions(s: Session, document_ids: list[str]) -> dict[str, DocumentVersion]:
    """The current version of each document that still exists."""
    if not document_ids:
        return {}
    rows = s.scalars(select(Document).where(Document.id.in_(document_ids)))
    return {
        d.id: DocumentVersion(
            d.id, d.name, d.content_hash, str(d.status), d.chunk_count, tuple(d.tags or ())
        )
        for d in rows
    }


@dataclass(frozen=True)
class DocumentVersion:
    id: str
    name: str
    content_hash: str
    status: str
    chunk_count: int
    tags: tuple[str, ...] = ()
