"""What the documents don't cover: the questions Loupe abstained on or whose answer got a
thumbs-down, grouped by similar question, with how often each was asked and the documents that
came closest, so an admin knows what to add or fix.

Questions are grouped by the similarity of their embeddings (the same model that searches the
documents), with average-linkage agglomerative clustering cut at the model's "related" level:
"how long is parental leave?" and "parental leave duration" land together, "hotel limit in
Oslo" does not.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.db.models import Answer, Rating
from core.insights import _answers_where, _latest_ratings
from core.prompts import NO_ANSWER

Embed = Callable[[list[str]], list[list[float]]]
# Most recent answers considered: enough for weeks of use, small enough to cluster at once.
MAX_QUESTIONS = 2000
CLOSEST_DOCUMENTS = 3


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

    question: str  # the most frequent wording (the earliest among ties)
    asked: int
    abstained: int
    thumbs_down: int
    examples: tuple[str, ...]  # other wordings, most frequent first
    closest_documents: tuple[tuple[str, float], ...]  # (name, best similarity), best first
    last_asked: datetime


def misses(s: Session, workspace: str, *, since: datetime | None = None) -> list[Miss]:
    """Answers that abstained or whose newest rating is a thumbs-down, newest first."""
    latest = _latest_ratings()
    rows = s.execute(
        select(Answer, latest.c.rating)
        .outerjoin(latest, latest.c.answer_id == Answer.id)
        .where(
            _answers_where(workspace, since),
            or_(
                Answer.generator == "none",
                Answer.answer == NO_ANSWER,
                latest.c.rating == Rating.down,
            ),
        )
        .order_by(Answer.created_at.desc())
        .limit(MAX_QUESTIONS)
    )
    found = []
    for answer, rating in rows:
        closest: dict[str, float] = {}
        for source in answer.sources or []:
            similarity = source.get("vector_score")
            name = str(source.get("document") or "")
            if name and similarity is not None:
                closest[name] = max(closest.get(name, -1.0), float(similarity))
        found.append(
            Miss(
                question=answer.question,
                abstained=answer.generator == "none" or answer.answer.strip() == NO_ANSWER,
                thumbs_down=rating == Rating.down,
                closest=closest,
                asked_at=answer.created_at,
            )
        )
    return found


def group(found: Sequence[Miss], embed: Embed, *, related: float) -> list[Gap]:
    """Group similar questions (cosine similarity of at least `related` on average within a
    group); the groups asked most come first."""
    if not found:
        return []
    if len(found) == 1:
        labels = np.zeros(1, dtype=int)
    else:
        vectors = np.asarray(embed([m.question for m in found]), dtype=float)
        labels = AgglomerativeClustering(
            n_clusters=None,
            metric="cosine",
            linkage="average",
            distance_threshold=1.0 - related,
        ).fit_predict(vectors)
    members: dict[int, list[Miss]] = defaultdict(list)
    for label, miss in zip(labels, found, strict=True):
        members[int(label)].append(miss)
    gaps = [_gap(group) for group in members.values()]
    return sorted(gaps, key=lambda g: (-g.asked, -g.last_asked.timestamp()))


def _gap(misses: list[Miss]) -> Gap:
    wordings = Counter(" ".join(m.question.split()) for m in misses)
    # Counter keeps first-seen order among equal counts; misses are newest first.
    ranked = [text for text, _ in wordings.most_common()]
    closest: dict[str, float] = {}
    for miss in misses:
        for name, similarity in miss.closest.items():
            closest[name] = max(closest.get(name, -1.0), similarity)
    best = sorted(closest.items(), key=lambda item: -item[1])[:CLOSEST_DOCUMENTS]
    return Gap(
        question=ranked[0],
        asked=len(misses),
        abstained=sum(m.abstained for m in misses),
        thumbs_down=sum(m.thumbs_down for m in misses),
        examples=tuple(ranked[1:4]),
        closest_documents=tuple(best),
        last_asked=max(m.asked_at for m in misses),
    )
