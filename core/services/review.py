"""Feedback and review: record feedback, fold it per person, the expert queue, and what the
feedback teaches (verified answers, retrieval boosts, exported datasets)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, Literal

from langchain_core.embeddings import Embeddings

from core.answer.retrieval import StoreRetriever
from core.answer.types import AnswerResult, Confidence, Source
from core.auth import Actor, require
from core.config import Settings
from core.db import learning, queries
from core.db.session import Database
from core.learn.exports import EXPORTERS
from core.learn.review import current_decision
from core.learn.state import LearnedState
from core.learn.verified import resolve, stale_reason
from core.records import FeedbackEntry, FeedbackState, ReviewDecision, ReviewItem
from core.services.ask import result_from_row
from core.stores.base import SearchFilter
from core.vocab import FeedbackSource, Rating, Role

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
        self.learned = LearnedState(
            db, settings.workspace, embeddings, match_threshold=settings.verified_similarity
        )
        self.refresh()

    def refresh(self) -> None:
        """Catch up with feedback given anywhere (this process or another on the same
        database): a cheap check of the feedback log, then only the new rows."""
        self.learned.refresh()
        self.retriever.boosts = self.learned.boosts

    def verified_answer(
        self, question: str, standalone: str, filters: SearchFilter | None
    ) -> tuple[AnswerResult | None, str | None]:
        """The expert-verified answer to serve for this question, checked before anything is
        generated: (the result to serve, None), or (None, why a matching verified answer was
        not served) when its passages changed or went, or (None, None) when none matches.

        The verified text is served as it was verified, its markers renumbered to the passages
        it was verified on, which are shown in that order."""
        self.refresh()
        match = self.learned.index.match(standalone)
        record = self.learned.answer(match.answer_id) if match is not None else None
        if match is None or record is None:
            return None, None
        resolved = resolve(match.answer, record.sources)
        checked = resolved.passages or [s for s in record.sources if s.get("cited")]
        with self.db.session() as s:
            versions = learning.document_versions(
                s, sorted({str(p.get("document_id")) for p in checked})
            )
        reason = stale_reason(checked, versions)
        if reason is not None:
            return None, (
                f"An expert-verified answer to this question is out of date ({reason}); "
                "it is back in the review queue."
            )
        if not _in_scope(checked, versions, filters):
            return None, None
        when = match.verified_at.date().isoformat()
        result = AnswerResult(
            question=question,
            standalone_question=standalone,
            answer=resolved.text,
            sources=[_source(p) for p in resolved.passages],
            confidence=Confidence(
                1.0, "high", [f"Verified by {match.expert or 'an expert'} on {when}."]
            ),
            generator="verified",
            model="verified",
            prompt_version=record.prompt_version,
            verified=match,
        )
        return result, None

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
        """Answers most in need of review first: thumbs-down, then least confident.

        Each comes with the conversation turns before it and its current decision. Repeated
        questions are grouped under their neediest answer. `reviewed=False` (the queue) holds
        what still needs an expert: undecided answers whose question is not verified yet, and
        approved answers gone stale because their passages changed."""
        require(actor, Role.expert)
        self.refresh()
        groups: dict[str, list[ReviewItem]] = {}
        with self.db.session() as s:
            rows = queries.review_queue(
                s,
                self.settings.workspace,
                since=since,
                until=until,
                rating=rating,
                document_id=document_id,
                reviewed=True if reviewed else None,
                limit=limit * 4 if reviewed is False else limit,
            )
            for a in rows:
                entries = tuple(FeedbackEntry.from_row(fb) for fb in a.feedback)
                decision = current_decision(a.answer, [_event(e) for e in entries])
                stale = (
                    self._stale(a.id, decision.answer)
                    if decision and decision.answer is not None
                    else None
                )
                if reviewed is False and not self._needs_review(a, entries, decision, stale):
                    continue
                earlier = (
                    queries.conversation_answers(s, a.conversation_id) if a.conversation_id else []
                )
                history = tuple(
                    (turn.question, turn.answer)
                    for turn in earlier
                    if (turn.created_at, turn.id) < (a.created_at, a.id)
                )
                item = ReviewItem(
                    result_from_row(a), a.created_at, entries, history, decision, stale
                )
                groups.setdefault(_question_key(a.standalone_question), []).append(item)
        queue = []
        for group in groups.values():  # in the order of each group's neediest answer
            # The answer that carries the question's decision speaks for the group.
            lead = next((i for i in group if i.decision is not None), group[0])
            others = tuple(i.answer.answer_id or "" for i in group if i is not lead)
            queue.append(dataclasses.replace(lead, repeats=others))
        return queue[:limit]

    def _stale(self, answer_id: str, text: str | None = None) -> str | None:
        """Why the passages a verified answer rests on are no longer current, or None. Those
        are the passages its verified text cites (an expert's correction may cite a passage
        the original answer did not), else the ones the answer cited."""
        record = self.learned.answer(answer_id)
        if record is None:
            with self.db.session() as s:
                record = learning.answer_records(s, [answer_id]).get(answer_id)
        if record is None:
            return None
        if text is None:
            verified = next(
                (v for v in self.learned.index.answers if v.answer_id == answer_id), None
            )
            text = verified.answer if verified is not None else record.answer
        passages = resolve(text, record.sources).passages or [
            p for p in record.sources if p.get("cited")
        ]
        with self.db.session() as s:
            versions = learning.document_versions(
                s, sorted({str(p.get("document_id")) for p in passages})
            )
        return stale_reason(passages, versions)

    def _needs_review(
        self,
        answer: Any,
        entries: Sequence[FeedbackEntry],
        decision: ReviewDecision | None,
        stale: str | None,
    ) -> bool:
        if decision is not None:
            return stale is not None
        thumbs_down = any(e.rating == Rating.down for e in entries)
        if answer.generator == "verified":  # a verified answer served again
            return thumbs_down
        # A question experts already verified (and still current) needs no second review.
        match = self.learned.index.match(answer.standalone_question)
        return thumbs_down or match is None or self._stale(match.answer_id) is not None

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
        """Datasets from reviews: `finetune`, `preferences` or `eval` (core/learn/exports.py)."""
        require(actor, Role.admin)
        if kind not in EXPORTERS:
            raise ValueError(f"Unknown export '{kind}': choose one of {', '.join(EXPORTERS)}.")
        with self.db.session() as s:
            reviewed = learning.reviewed_answers(s, self.settings.workspace)
        return list(EXPORTERS[kind](reviewed))


_SOURCE_FIELDS = {f.name for f in fields(Source)}


def _question_key(question: str) -> str:
    """Repeated questions group together whatever their case, spacing and punctuation."""
    return " ".join(re.sub(r"[^\w\s]", " ", question.casefold()).split())


def _event(entry: FeedbackEntry) -> learning.FeedbackEvent:
    return learning.FeedbackEvent(
        id=entry.id,
        answer_id=entry.answer_id,
        created_at=entry.created_at,
        rating=None if entry.rating is None else str(entry.rating),
        comment=entry.comment,
        edited_answer=entry.edited_answer,
        verdicts=dict(entry.citation_verdicts),
        role=entry.role,
        source=entry.source,
        user=entry.user,
    )


def _source(passage: dict[str, Any]) -> Source:
    values = {k: v for k, v in passage.items() if k in _SOURCE_FIELDS}
    values.setdefault("score", 1.0)
    for optional in ("page", "heading", "keyword_score", "vector_score"):
        values.setdefault(optional, None)
    return Source(**values)


def _in_scope(
    passages: Sequence[dict[str, Any]],
    versions: Mapping[str, learning.DocumentVersion],
    filters: SearchFilter | None,
) -> bool:
    """A question asked within some documents or tags is only answered from them."""
    if filters is None:
        return True
    for passage in passages:
        version = versions[str(passage.get("document_id"))]
        if filters.document_ids and version.id not in filters.document_ids:
            return False
        if filters.tags and not set(filters.tags) & set(version.tags):
            return False
    return True
