"""Retrieval boosts from per-citation verdicts: per question, bounded, decaying, never a removal.

A verdict moves a passage's fused score by a small offset: up for "supports", down for "does
not support". A verdict was given for one question, and a passage wrong for that question may be
another question's gold passage, so a verdict counts only for questions like the one it was
given for: its weight is a ramp on the cosine similarity of the new (standalone) question and
the verdict's question, 0 up to `SIMILAR_FROM`, 1 from `SAME_FROM`, linear between. For a hit:

    offset = Σ delta × decay(age) × ramp(cos(query, verdict question))

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
        deltas: dict[str, list[float]] = {}
        vectors: dict[str, list[Sequence[float]]] = {}
        for v in verdicts:
            delta = SUPPORT_BOOST if v.verdict == Verdict.supports else UNSUPPORT_PENALTY
            deltas.setdefault(v.chunk_id, []).append(delta * decay(v.at, now))
            vectors.setdefault(v.chunk_id, []).append(v.question_vector)
        self._deltas = {c: np.asarray(d, dtype=np.float32) for c, d in deltas.items()}
        self._vectors = {c: np.asarray(vectors[c], dtype=np.float32) for c in deltas}

    def __getitem__(self, chunk_id: str) -> float:
        return float(self._deltas[chunk_id].sum())

    def __iter__(self) -> Iterator[str]:
        return iter(self._deltas)

    def __len__(self) -> int:
        return len(self._deltas)

    def offsets(self, query_vector: Sequence[float], chunk_ids: Iterable[str]) -> dict[str, float]:
        """Chunk id → score offset for this question (unclipped; the retriever clips)."""
        query = np.asarray(query_vector, dtype=np.float32)
        query = query / (np.linalg.norm(query) or 1.0)
        out: dict[str, float] = {}
        for chunk in chunk_ids:
            if chunk not in self._deltas:
                continue
            vectors = self._vectors[chunk]
            cosine = vectors @ query / np.maximum(np.linalg.norm(vectors, axis=1), 1e-12)
            out[chunk] = float((self._deltas[chunk] * similarity_weight(cosine)).sum())
        return out
