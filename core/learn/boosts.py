"""Retrieval boosts from per-citation verdicts: per question, bounded, decaying, never a removal.

A verdict moves a passage's fused score by a small offset: up for "supports", down for "does
not support". A verdict was given for one question, and a passage wrong for that question may be
another question's gold passage, so a verdict counts only for questions like the one it was
given for: its weight is a ramp on the cosine similarity of the new (standalone) question and
the verdict's question, 0 up to `SIMILAR_FROM`, 1 from `SAME_FROM`, linear between. And only the
verdicts of the judged question closest to the new one count (with any judged question within
`NEAREST_MARGIN` of it): what experts said about this very question is the evidence, and a
near-twin question with another answer does not outvote it. For a hit:

    offset = Σ delta × decay(age) × ramp(cos(query, verdict question)), over the nearest questions

Each person's newest verdict on a citation is the one that counts (changing your mind replaces
the old verdict, it does not add to it); offsets halve every `BOOST_HALF_LIFE_DAYS`, so old
judgements fade as documents change; and a passage's total is clipped to ±`MAX_BOOST` (in
core.answer.retrieval), so no amount of feedback decides a ranking alone. A demoted passage
stays searchable: it only ranks lower.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from core.vocab import Verdict

SUPPORT_BOOST, UNSUPPORT_PENALTY = 0.15, -0.15
BOOST_HALF_LIFE_DAYS = 90.0
# Cosine similarity (bundled MiniLM) of the new question and the verdict's question: below
# SIMILAR_FROM a verdict does not count, from SAME_FROM it counts fully. A verdict is about one
# question; what carries it over is a rewording of that question, not a question on the same
# topic. Rewrites of XQuAD questions (lower case, no "?", a polite prefix) score a median 0.95;
# ArguAna's arguments of one debate score 0.7-0.85 with each other (65% of its queries have a
# neighbour above 0.7, 17% above 0.85), and a ramp from 0.7 let one query's verdicts break
# another's hits (bench/FINDINGS.md, feedback section).
SIMILAR_FROM, SAME_FROM = 0.85, 0.95
# Judged questions whose cosine to the new question is within this of the closest one's count
# with it: a near twin (cosine 0.95-0.98) judged with another gold passage does not cancel this
# very question's own "supports". (ArguAna's broken hits turned out to be identical twins,
# which no rule can tell apart; bench/FINDINGS.md.)
NEAREST_MARGIN = 0.02


@dataclass(frozen=True)
class PassageVerdict:
    """The newest verdict of one person on one citation of one answer, with the embedding of
    the (standalone) question that answer was for."""

    chunk_id: str
    verdict: Verdict
    at: datetime
    question_vector: Sequence[float]


def decay(at: datetime, now: datetime) -> float:
    age_days = max((now - at).total_seconds(), 0.0) / 86400
    return math.pow(0.5, age_days / BOOST_HALF_LIFE_DAYS)


def similarity_weight(cosine: np.ndarray) -> np.ndarray:
    """The ramp: 0 below SIMILAR_FROM, 1 above SAME_FROM, linear between."""
    return np.clip((cosine - SIMILAR_FROM) / (SAME_FROM - SIMILAR_FROM), 0.0, 1.0)


class Boosts(Mapping[str, float]):
    """The verdicts of one moment (decay applied), grouped by passage.

    As a mapping, chunk id → the offset for the very question its verdicts were given for
    (every weight 1), the most any question can move it; `offsets` gives the offsets for one
    new question."""

    def __init__(self, verdicts: Iterable[PassageVerdict], now: datetime) -> None:
        rows: dict[str, list[int]] = {}
        deltas: list[float] = []
        vectors: list[Sequence[float]] = []
        for v in verdicts:
            delta = SUPPORT_BOOST if v.verdict == Verdict.supports else UNSUPPORT_PENALTY
            rows.setdefault(v.chunk_id, []).append(len(deltas))
            deltas.append(delta * decay(v.at, now))
            vectors.append(v.question_vector)
        self._rows = {c: np.asarray(r, dtype=np.intp) for c, r in rows.items()}
        self._deltas = np.asarray(deltas, dtype=np.float32)
        matrix = np.asarray(vectors, dtype=np.float32) if vectors else np.zeros((0, 1))
        norms = np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        self._questions = matrix / norms  # one row per verdict: its question, unit length

    def __getitem__(self, chunk_id: str) -> float:
        return float(self._deltas[self._rows[chunk_id]].sum())

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def offsets(self, query_vector: Sequence[float], chunk_ids: Iterable[str]) -> dict[str, float]:
        """Chunk id → score offset for this question (unclipped; the retriever clips)."""
        wanted = [c for c in chunk_ids if c in self._rows]
        if not wanted:
            return {}
        query = np.asarray(query_vector, dtype=np.float32)
        cosine = self._questions @ (query / (np.linalg.norm(query) or 1.0))
        weight = similarity_weight(cosine) * (cosine >= cosine.max() - NEAREST_MARGIN)
        weighted = self._deltas * weight
        return {c: float(weighted[self._rows[c]].sum()) for c in wanted}
