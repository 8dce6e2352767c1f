"""What expert feedback changes: verified answers, retrieval boosts, and exported datasets.

Feedback rows are append-only; everything here is derived from them on demand, so a wrong
verdict is corrected by a newer one, never by editing history.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import numpy as np
from langchain_core.embeddings import Embeddings
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from core.answer.prompts import ANSWER, format_passage
from core.answer.types import VerifiedAnswer
from core.db.models import Answer, Feedback, Rating

EXPERT_ROLES = ("expert", "admin")
SUPPORTS, DOES_NOT_SUPPORT = "supports", "does_not_support"
# Retrieval boosts: a verdict moves a chunk's fused score by these amounts, halving every
# BOOST_HALF_LIFE_DAYS, and the sum per chunk is clipped to ±MAX_BOOST (in core.answer.retrieval).
SUPPORT_BOOST, UNSUPPORT_PENALTY = 0.05, -0.10
BOOST_HALF_LIFE_DAYS = 90.0
# Cosine similarity above which a new question is "the same" as a verified one.
VERIFIED_MATCH = 0.92


def _aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes even for timezone columns; they were stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _expert_feedback(session: Session, workspace: str) -> Sequence[Feedback]:
    return session.scalars(
        select(Feedback)
        .join(Answer)
        .where(
            Answer.workspace == workspace,
            Feedback.role.in_(EXPERT_ROLES),
            Feedback.source != "chat",
        )
        .options(selectinload(Feedback.answer))
        .order_by(Feedback.created_at, Feedback.id)
    ).all()


def verified_answers(session: Session, workspace: str) -> list[VerifiedAnswer]:
    """The latest expert review of each answer: an edit, or an approval (thumbs up). A later
    thumbs-down from an expert withdraws the verification. Reactions in chat do not count,
    even from an expert: verifying is a deliberate act."""
    latest: dict[str, VerifiedAnswer | None] = {}
    for fb in _expert_feedback(session, workspace):
        answer = fb.answer
        if fb.edited_answer:
            text = fb.edited_answer
        elif fb.rating == Rating.up:
            text = answer.answer
        elif fb.rating == Rating.down:
            latest[answer.id] = None
            continue
        else:
            continue
        latest[answer.id] = VerifiedAnswer(
            answer.id, answer.standalone_question, text, fb.user, _aware(fb.created_at)
        )
    return [v for v in latest.values() if v is not None]


def retrieval_boosts(
    session: Session, workspace: str, *, now: datetime | None = None
) -> dict[str, float]:
    """Chunk id → score offset from per-citation verdicts (any role), decaying with age."""
    now = now or datetime.now(UTC)
    boosts: dict[str, float] = {}
    rows = session.scalars(
        select(Feedback)
        .join(Answer)
        .where(Answer.workspace == workspace)
        .options(selectinload(Feedback.answer))
    ).all()
    for fb in rows:
        if not fb.citation_verdicts:
            continue
        age_days = (now - _aware(fb.created_at)).total_seconds() / 86400
        decay = math.pow(0.5, max(age_days, 0.0) / BOOST_HALF_LIFE_DAYS)
        by_n = {str(src["n"]): src["chunk_id"] for src in fb.answer.sources}
        for n, verdict in fb.citation_verdicts.items():
            chunk = by_n.get(str(n))
            if chunk is None:
                continue
            delta = SUPPORT_BOOST if verdict == SUPPORTS else UNSUPPORT_PENALTY
            boosts[chunk] = boosts.get(chunk, 0.0) + delta * decay
    return boosts


class VerifiedIndex:
    """Verified questions embedded once, matched against each new question."""

    def __init__(self, embeddings: Embeddings, answers: Sequence[VerifiedAnswer]) -> None:
        self.answers = list(answers)
        self._vectors = (
            np.asarray(embeddings.embed_documents([a.question for a in self.answers]))
            if self.answers
            else np.zeros((0, 0))
        )

    def match(self, question_vector: Sequence[float]) -> VerifiedAnswer | None:
        if not self.answers:
            return None
        sims = self._vectors @ np.asarray(question_vector)
        best = int(np.argmax(sims))
        if sims[best] < VERIFIED_MATCH:
            return None
        found = self.answers[best]
        return VerifiedAnswer(
            found.answer_id,
            found.question,
            found.answer,
            found.expert,
            found.verified_at,
            float(sims[best]),
        )


# Exports ---------------------------------------------------------------------------------


def _context(answer: Answer) -> str:
    return "\n\n".join(
        format_passage(s["n"], s["document"], s.get("page"), s["quote"]) for s in answer.sources
    )


def export_finetune(session: Session, workspace: str) -> Iterator[dict[str, object]]:
    """Chat-format examples (OpenAI fine-tuning JSONL) from expert-verified answers, with the
    same prompt and passages the model saw, so tuning teaches the product's real task."""
    answers = {
        a.id: a for a in session.scalars(select(Answer).where(Answer.workspace == workspace))
    }
    for verified in verified_answers(session, workspace):
        answer = answers[verified.answer_id]
        yield {
            "messages": [
                {"role": "system", "content": ANSWER.system},
                {
                    "role": "user",
                    "content": ANSWER.human.format(
                        context=_context(answer), question=answer.question
                    ),
                },
                {"role": "assistant", "content": verified.answer},
            ],
            "metadata": {"answer_id": answer.id, "prompt_version": ANSWER.id},
        }


def export_preferences(session: Session, workspace: str) -> Iterator[dict[str, object]]:
    """Preference pairs: the expert's edit is chosen, the original answer rejected."""
    for fb in _expert_feedback(session, workspace):
        if fb.edited_answer and fb.edited_answer.strip() != fb.answer.answer.strip():
            yield {
                "prompt": ANSWER.human.format(
                    context=_context(fb.answer), question=fb.answer.question
                ),
                "chosen": fb.edited_answer,
                "rejected": fb.answer.answer,
                "metadata": {"answer_id": fb.answer_id, "feedback_id": fb.id},
            }


def export_eval_set(session: Session, workspace: str) -> Iterator[dict[str, object]]:
    """Questions with the answer experts stand by and the documents it rests on: the
    regression set that `python -m core eval --feedback` replays."""
    answers = {
        a.id: a for a in session.scalars(select(Answer).where(Answer.workspace == workspace))
    }
    for verified in verified_answers(session, workspace):
        answer = answers[verified.answer_id]
        yield {
            "question": answer.question,
            "answer": verified.answer,
            "document_ids": sorted({s["document_id"] for s in answer.sources if s.get("cited")}),
            "answer_id": answer.id,
            "verified_by": verified.expert,
        }
