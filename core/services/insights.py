"""Insights and the feedback export (admins only), and what the documents don't cover: the
questions Loupe abstained on or whose answer got a thumbs-down, grouped by similar question, with
how often each was asked and the documents that came closest, so an admin knows what to add.

Questions are grouped by the similarity of their embeddings (the model that searches the
documents), with average-linkage agglomerative clustering cut at the model's "related" level:
"how long is parental leave?" and "parental leave duration" land together, "hotel limit in
Oslo" does not."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Literal

import numpy as np
from sklearn.cluster import AgglomerativeClustering

from core.answer.prompts import NO_ANSWER
from core.auth import Actor, require
from core.config import Settings
from core.db.insights import feedback_rows, misses, report
from core.db.session import Database
from core.embeddings import SimilarityScale
from core.records import Gap, Miss, Report, to_csv, to_jsonl
from core.vocab import Role

Embed = Callable[[list[str]], list[list[float]]]
CLOSEST_DOCUMENTS = 3


class InsightsService:
    def __init__(
        self, settings: Settings, db: Database, embed: Embed, scale: SimilarityScale
    ) -> None:
        self.settings = settings
        self.db = db
        self.embed = embed
        self.scale = scale

    def not_covered(self, *, since: datetime | None, actor: Actor) -> list[Gap]:
        """What the documents don't cover, most asked first."""
        require(actor, Role.admin)
        with self.db.session() as s:
            found = misses(s, self.settings.workspace, no_answer=NO_ANSWER, since=since)
        return [
            # The closest documents' similarities as the relevance figure passages show.
            replace(
                gap,
                closest_documents=tuple(
                    (n, self.scale.relevance(v)) for n, v in gap.closest_documents
                ),
            )
            for gap in group(found, self.embed, related=self.scale.related)
        ]

    def report(self, *, since: datetime | None, actor: Actor) -> Report:
        require(actor, Role.admin)
        with self.db.session() as s:
            return report(s, self.settings.workspace, since=since)

    def export_feedback(
        self, fmt: Literal["csv", "jsonl"], *, since: datetime | None, actor: Actor
    ) -> str:
        """Every feedback row with its question and answer, as CSV or JSON Lines text."""
        require(actor, Role.admin)
        with self.db.session() as s:
            rows = feedback_rows(s, self.settings.workspace, since=since)
        return to_csv(rows) if fmt == "csv" else to_jsonl(rows)


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
