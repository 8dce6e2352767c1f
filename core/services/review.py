"""Feedback and review: record feedback, fold it per person, the expert queue, and what the
feedback teaches (verified answers, retrieval boosts, exported datasets)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

from langchain_core.embeddings import Embeddings

from core.answer.retrieval import StoreRetriever
from core.answer.types import AnswerResult
from core.auth import Actor, require
from core.config import Settings
from core.db import queries
from core.db.session import Database
from core.feedback import (
    VerifiedIndex,
    export_eval_set,
    export_finetune,
    export_preferences,
    retrieval_boosts,
    verified_answers,
)
from core.records import FeedbackEntry, FeedbackState, ReviewItem
from core.services.ask import result_from_row
from core.vocab import REVIEWER_ROLES, FeedbackSource, Rating, Role

Decision = Literal["approve", "edit", "reject"]


class ReviewService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        embeddings: Embeddings,
        retriever: StoreRetriever,
    ) -> None:
        self.settings = settings
        self.db = db
        self.embeddings = embeddings
        self.retriever = retriever
        self.verified = VerifiedIndex(embeddings, [])
        self.refresh()

    def refresh(self) -> None:
        """Re-derive retrieval boosts and verified answers from the feedback rows."""
        with self.db.session() as s:
            self.retriever.boosts = retrieval_boosts(s, self.settings.workspace)
            answers = verified_answers(s, self.settings.workspace)
        self.verified = VerifiedIndex(self.embeddings, answers)

    def annotate(self, result: AnswerResult) -> None:
        """Attach the verified answer to the same question, if experts gave one."""
        result.verified = self.verified.match(
            self.embeddings.embed_query(result.standalone_question)
        )

    def feedback(
        self,
        answer_id: str,
        *,
        rating: str | None,
        comment: str | None,
        edited_answer: str | None,
        citation_verdicts: Mapping[str | int, str] | None,
        role: str,
        source: str,
        actor: Actor,
    ) -> int:
        """Record feedback (a new row, never an update) in `actor`'s name: who gave it is who
        is signed in, never a name the caller chose. `role` is the weight it carries, so nobody
        may give it with a role above their own."""
        require(actor, role)
        with self.db.session() as s:
            row = queries.add_feedback(
                s,
                answer_id,
                rating=rating,
                comment=comment,
                edited_answer=edited_answer,
                citation_verdicts=citation_verdicts,
                role=role,
                user=actor.name,
                source=source,
            )
            s.flush()
            feedback_id = row.id
        if citation_verdicts or role in REVIEWER_ROLES:
            self.refresh()
        return feedback_id

    def feedback_state(
        self, answer_ids: Sequence[str], *, actor: Actor
    ) -> dict[str, FeedbackState]:
        """Each answer's current feedback from `actor` (their own, never someone else's), read
        back from SQL so a reload shows what was saved."""
        states = {answer_id: FeedbackState() for answer_id in answer_ids}
        with self.db.session() as s:
            for fb in queries.feedback_by_user(s, answer_ids, actor.name):
                state = states[fb.answer_id]
                state.rating = fb.rating or state.rating
                state.comment = fb.comment or state.comment
                state.edited_answer = fb.edited_answer or state.edited_answer
                state.verdicts.update(fb.citation_verdicts or {})
        return states

    def queue(
        self,
        *,
        since: datetime | None,
        until: datetime | None,
        rating: Rating | str | None,
        document_id: str | None,
        reviewed: bool | None,
        limit: int,
        actor: Actor,
    ) -> list[ReviewItem]:
        """Answers most in need of review first: thumbs-down, then least confident."""
        require(actor, Role.expert)
        with self.db.session() as s:
            rows = queries.review_queue(
                s,
                self.settings.workspace,
                since=since,
                until=until,
                rating=rating,
                document_id=document_id,
                reviewed=reviewed,
                limit=limit,
            )
            return [
                ReviewItem(
                    result_from_row(a),
                    a.created_at,
                    tuple(FeedbackEntry.from_row(fb) for fb in a.feedback),
                )
                for a in rows
            ]

    def progress(self, *, actor: Actor) -> tuple[int, int]:
        """(reviewed, remaining) answers."""
        require(actor, Role.expert)
        with self.db.session() as s:
            return queries.review_progress(s, self.settings.workspace)

    def review(
        self,
        answer_id: str,
        decision: Decision,
        *,
        reason: str | None,
        edited_answer: str | None,
        citation_verdicts: Mapping[str | int, str] | None,
        actor: Actor,
    ) -> int:
        """An expert's verdict on an answer. Approving or editing makes it a verified answer
        (offered again for the same question); rejecting withdraws that and needs a reason, so
        whoever fixes the documents knows what was wrong."""
        require(actor, Role.expert)
        rating: str | None = None
        if decision == "approve":
            rating, edited_answer = Rating.up, None
        elif decision == "edit":
            if not (edited_answer or "").strip():
                raise ValueError("Write the corrected answer to save an edit.")
        elif decision == "reject":
            if not (reason or "").strip():
                raise ValueError("Say why the answer is rejected.")
            rating, edited_answer = Rating.down, None
        else:
            raise ValueError(f"Unknown decision {decision!r}: approve, edit or reject.")
        return self.feedback(
            answer_id,
            rating=rating,
            comment=reason,
            edited_answer=edited_answer,
            citation_verdicts=citation_verdicts,
            role=actor.role,
            source=FeedbackSource.review,
            actor=actor,
        )

    def export(self, kind: str, *, actor: Actor) -> list[dict[str, object]]:
        """Datasets from feedback: `finetune`, `preferences` or `eval`."""
        require(actor, Role.admin)
        exporters = {
            "finetune": export_finetune,
            "preferences": export_preferences,
            "eval": export_eval_set,
        }
        if kind not in exporters:
            raise ValueError(f"Unknown export '{kind}': choose one of {', '.join(exporters)}.")
        with self.db.session() as s:
            return list(exporters[kind](s, self.settings.workspace))
