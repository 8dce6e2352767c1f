"""Retrieval boosts from per-citation verdicts: bounded, decaying, never a removal.

A verdict moves a passage's fused score by a small offset: up for "supports", down for "does
not support". Each person's newest verdict on a citation is the one that counts (changing your
mind replaces the old verdict, it does not add to it); offsets halve every
`BOOST_HALF_LIFE_DAYS`, so old judgements fade as documents change; and a passage's total is
clipped to ±`MAX_BOOST` (in core.retrieval), so no amount of feedback decides a ranking alone.
A demoted passage stays searchable: it only ranks lower.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

SUPPORTS, DOES_NOT_SUPPORT = "supports", "does_not_support"
SUPPORT_BOOST, UNSUPPORT_PENALTY = 0.15, -0.15
BOOST_HALF_LIFE_DAYS = 90.0


@dataclass(frozen=True)
class Verdict:
    """The newest verdict of one person on one citation of one answer."""

    chunk_id: str
    verdict: str
    at: datetime


def decay(at: datetime, now: datetime) -> float:
    age_days = max((now - at).total_seconds(), 0.0) / 86400
    return math.pow(0.5, age_days / BOOST_HALF_LIFE_DAYS)


def boosts_from(verdicts: Iterable[Verdict], now: datetime) -> dict[str, float]:
    """Chunk id → score offset at `now` (unclipped; the retriever clips the total)."""
    out: dict[str, float] = {}
    for v in verdicts:
        delta = SUPPORT_BOOST if v.verdict == SUPPORTS else UNSUPPORT_PENALTY
        out[v.chunk_id] = out.get(v.chunk_id, 0.0) + delta * decay(v.at, now)
    return out
