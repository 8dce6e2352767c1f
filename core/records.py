"""The plain, frozen records that cross the page boundary.

The facade (`core.service.Loupe`) hands these to pages, the CLI and the API instead of ORM rows:
a row read after its session closed fails or lies, and a page that holds an ORM class can write
to the database behind the service's back.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from core.answer.types import AnswerResult, Source
from core.vocab import DocumentStatus, Rating, is_review


@dataclass(frozen=True)
class DocumentInfo:
    """A document as the documents page and `core documents` show it."""

    id: str
    name: str
    kind: str
    size_bytes: int
    content_hash: str
    stored_path: str | None
    status: DocumentStatus
    error: str | None
    pages: int | None
    chunk_count: int
    tags: list[str]
    uploaded_by: str | None
    created_at: datetime
    updated_at: datetime
    indexed_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> DocumentInfo:
        return cls(
            id=row.id,
            name=row.name,
            kind=row.kind,
            size_bytes=row.size_bytes,
            content_hash=row.content_hash,
            stored_path=row.stored_path,
            status=DocumentStatus(row.status),
            error=row.error,
            pages=row.pages,
            chunk_count=row.chunk_count,
            tags=list(row.tags or ()),
            uploaded_by=row.uploaded_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            indexed_at=row.indexed_at,
        )


@dataclass(frozen=True)
class FeedbackEntry:
    """One append-only feedback row."""

    id: int
    answer_id: str
    rating: Rating | None
    comment: str | None
    edited_answer: str | None
    citation_verdicts: dict[str, str]
    role: str
    source: str
    user: str | None
    created_at: datetime

    @property
    def is_review(self) -> bool:
        return is_review(self.role, self.source)

    @classmethod
    def from_row(cls, row: Any) -> FeedbackEntry:
        return cls(
            id=row.id,
            answer_id=row.answer_id,
            rating=None if row.rating is None else Rating(row.rating),
            comment=row.comment,
            edited_answer=row.edited_answer,
            citation_verdicts=dict(row.citation_verdicts or {}),
            role=row.role,
            source=row.source,
            user=row.user,
            created_at=row.created_at,
        )


DecisionKind = Literal["approved", "corrected", "rejected"]


@dataclass(frozen=True)
class ReviewDecision:
    """An answer's current review decision (core/learn/review.py folds it from the log)."""

    kind: DecisionKind
    reviewer: str | None
    at: datetime
    feedback_id: int
    reason: str | None  # the reviewer's comment; for a rejection, why
    answer: str | None  # the text the expert stands by (None when rejected)


@dataclass(frozen=True)
class ReviewItem:
    """An answer in the review queue with all its feedback, oldest first; the conversation
    turns before it (question, answer), its current decision, why it is stale if an approved
    answer's passages changed, and the other answers to the same question grouped under it."""

    answer: AnswerResult
    created_at: datetime
    feedback: tuple[FeedbackEntry, ...]
    history: tuple[tuple[str, str], ...] = ()
    decision: ReviewDecision | None = None
    stale: str | None = None
    repeats: tuple[str, ...] = ()

    @property
    def reviewed(self) -> bool:
        return any(fb.is_review for fb in self.feedback)

    def count(self, rating: Rating) -> int:
        return sum(fb.rating == rating for fb in self.feedback)


@dataclass
class FeedbackState:
    """One person's current feedback on an answer, folded from their append-only rows: the
    newest rating, comment and edit win, and each citation keeps its newest verdict."""

    rating: Rating | None = None
    comment: str | None = None
    edited_answer: str | None = None
    verdicts: dict[str, str] = field(default_factory=dict)


@dataclass
class Report:
    """Everything the insights page draws; each list is rows for one chart or table."""

    questions: int = 0
    rated: int = 0
    thumbs_up: int = 0
    mean_confidence: float | None = None
    questions_per_day: list[dict[str, Any]] = field(default_factory=list)
    ratings_per_day: list[dict[str, Any]] = field(default_factory=list)
    confidence: list[dict[str, Any]] = field(default_factory=list)
    latency: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    most_cited: list[dict[str, Any]] = field(default_factory=list)
    cited_in_thumbs_down: list[dict[str, Any]] = field(default_factory=list)

    @property
    def thumbs_up_rate(self) -> float | None:
        return self.thumbs_up / self.rated if self.rated else None


# Text formats of exported rows

FEEDBACK_COLUMNS = (
    "feedback_id",
    "created_at",
    "answer_id",
    "question",
    "answer",
    "rating",
    "comment",
    "edited_answer",
    "citation_verdicts",
    "role",
    "user",
    "source",
    "decision",
    "reviewer",
    "standalone_question",
    "prompt_version",
    "documents",
    "confidence",
    "confidence_label",
    "generator",
    "model",
)


def to_jsonl(rows: Sequence[Mapping[str, Any]]) -> str:
    """JSON Lines; values JSON has no type for (timestamps) are written as text."""
    return "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV with a header; nested values (citation verdicts) as JSON text in their cell."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FEEDBACK_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                key: json.dumps(value, ensure_ascii=False)
                if isinstance(value, dict | list)
                else value
                for key, value in row.items()
            }
        )
    return out.getvalue()


@dataclass(frozen=True)
class ConversationSummary:
    """One row of the conversation list."""

    id: str
    title: str
    user: str | None
    last_active: datetime
    questions: int


@dataclass(frozen=True)
class CitedOriginal:
    """A cited passage and the original it came from (`path` None once the document was
    deleted or its file is gone: the passage as quoted is all that is left)."""

    answer_id: str
    question: str
    source: Source
    document_id: str
    name: str
    kind: str
    path: Path | None
    mime: str


@dataclass(frozen=True)
class Miss:
    """One answer that did not help: the question, why, and the documents it came closest to
    (document name → best cosine similarity of a retrieved passage)."""

    question: str
    abstained: bool
    thumbs_down: bool
    closest: dict[str, float]
    asked_at: datetime


@dataclass(frozen=True)
class Gap:
    """Similar questions the documents did not answer well."""

    question: str  # the most frequent wording (the newest among ties)
    asked: int
    abstained: int
    thumbs_down: int
    examples: tuple[str, ...]  # other wordings, most frequent first
    closest_documents: tuple[tuple[str, float], ...]  # (name, relevance of its best passage)
    last_asked: datetime
