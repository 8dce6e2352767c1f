"""Review decisions folded from the append-only feedback log.

An expert's review row decides an answer: an edit *corrects* it, a thumbs-up *approves* it, a
thumbs-down *rejects* it (with the reason in its comment). A newer decision replaces an older
one; rows with only a comment or passage verdicts leave the decision as it was. Chat
reactions never decide, even from an admin. The review page, the exports and the verified
answers all read decisions through here, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable

from core import vocab
from core.db.learning import FeedbackEvent
from core.records import DecisionKind, ReviewDecision


def is_review(event: FeedbackEvent) -> bool:
    return vocab.is_review(event.role, event.source)


def row_decision(event: FeedbackEvent) -> DecisionKind | None:
    """What this one row decided, if it is a review that decides anything."""
    if not is_review(event):
        return None
    if event.edited_answer:
        return "corrected"
    if event.rating == "up":
        return "approved"
    if event.rating == "down":
        return "rejected"
    return None


def current_decision(
    original_answer: str, events: Iterable[FeedbackEvent]
) -> ReviewDecision | None:
    """The newest decision among an answer's feedback rows (given oldest first)."""
    decision: ReviewDecision | None = None
    for event in events:
        kind = row_decision(event)
        if kind is None:
            continue
        text = {"corrected": event.edited_answer, "approved": original_answer}.get(kind)
        decision = ReviewDecision(kind, event.user, event.created_at, event.id, event.comment, text)
    return decision
