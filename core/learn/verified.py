"""Verified answers: matching a new question to one an expert already answered.

Matching has two steps. The embedding model finds candidates (cosine similarity of the
standalone questions at least `threshold`), and the precision guard (core/learn/questions.py)
refuses any candidate that asks for something else. The best surviving candidate is the match.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from core.answer.citations import _MARKER
from core.answer.types import VerifiedAnswer
from core.db.learning import DocumentVersion
from core.learn.questions import refusal
from core.stores.base import chunk_id

# Cosine similarity (bundled MiniLM) from which a verified question is a candidate; the guard
# decides. Measured with `python -m core eval --matching` (bench/RESULTS.md, feedback section).
CANDIDATE_SIMILARITY = 0.80
# Candidates checked by the guard, most similar first.
MAX_CANDIDATES = 5


class VerifiedIndex:
    """Verified questions, embedded once each, kept up to date one answer at a time."""

    def __init__(
        self,
        embeddings: Embeddings,
        answers: Iterable[VerifiedAnswer] = (),
        *,
        threshold: float = CANDIDATE_SIMILARITY,
        guard: bool = True,
    ) -> None:
        self.embeddings = embeddings
        self.threshold = threshold
        self.guard = guard
        self._answers: dict[str, VerifiedAnswer] = {}
        self._vectors: dict[str, np.ndarray] = {}
        self.put_many(list(answers))

    def __len__(self) -> int:
        return len(self._answers)

    @property
    def answers(self) -> list[VerifiedAnswer]:
        return list(self._answers.values())

    def put_many(self, answers: Sequence[VerifiedAnswer]) -> None:
        """Add or replace verified answers (keyed by answer id); only new questions are embedded."""
        fresh = [
            a
            for a in answers
            if a.answer_id not in self._answers or self._answers[a.answer_id].question != a.question
        ]
        vectors = self.embeddings.embed_documents([a.question for a in fresh]) if fresh else []
        for answer, vector in zip(fresh, vectors, strict=True):
            self._vectors[answer.answer_id] = np.asarray(vector, dtype=np.float32)
        for answer in answers:
            self._answers[answer.answer_id] = answer

    def remove(self, answer_id: str) -> None:
        self._answers.pop(answer_id, None)
        self._vectors.pop(answer_id, None)

    def candidates(self, vector: Sequence[float]) -> list[tuple[VerifiedAnswer, float]]:
        """Verified answers at least `threshold` similar to the question vector, best first."""
        if not self._answers:
            return []
        ids = list(self._answers)
        sims = np.stack([self._vectors[i] for i in ids]) @ np.asarray(vector, dtype=np.float32)
        order = np.argsort(-sims)[:MAX_CANDIDATES]
        return [(self._answers[ids[i]], float(sims[i])) for i in order if sims[i] >= self.threshold]

    def match(self, question: str, vector: Sequence[float] | None = None) -> VerifiedAnswer | None:
        """The verified answer to this (standalone) question, with its similarity, or None."""
        if not self._answers:
            return None
        if vector is None:
            vector = self.embeddings.embed_query(question)
        for answer, similarity in self.candidates(vector):
            if not self.guard or refusal(question, answer.question) is None:
                return dataclasses.replace(answer, similarity=similarity)
        return None


@dataclass(frozen=True)
class Resolved:
    """A verified answer ready to be served: its text with markers renumbered 1..m and the
    passages they point at, in that order (each a source dict as stored with the answer)."""

    text: str
    passages: list[dict[str, Any]]


def resolve(text: str, sources: Sequence[dict[str, Any]]) -> Resolved:
    """Renumber the markers of a verified text (which refer to the numbering of the answer it
    was verified on) to the passages they cite, so "[1]" opens the first passage shown."""
    by_n = {int(s["n"]): s for s in sources}
    order: list[int] = []

    def renumber(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
        kept = [n for n in dict.fromkeys(numbers) if n in by_n]
        for n in kept:
            if n not in order:
                order.append(n)
        lead = match.group(0)[0] if match.group(0)[0] in " \t" else ""
        return lead + "".join(f"[{order.index(n) + 1}]" for n in kept) if kept else ""

    renumbered = _MARKER.sub(renumber, text).strip()
    passages = [{**by_n[n], "n": i + 1, "cited": True} for i, n in enumerate(order)]
    return Resolved(renumbered, passages)


def stale_reason(
    passages: Sequence[dict[str, Any]], versions: Mapping[str, DocumentVersion]
) -> str | None:
    """Why the passages an answer was verified on are no longer what the documents say, or
    None. A chunk id is derived from the document's content hash and the chunk's position, so
    a passage is current exactly when its id is among the ids of the document's current
    version: re-indexing other text or deleting the document makes it stale."""
    for passage in passages:
        version = versions.get(str(passage.get("document_id")))
        name = passage.get("document") or passage.get("document_id")
        if version is None:
            return f"{name} was deleted"
        if version.status != "ready":
            return f"{name} is {version.status}"
        current = {
            chunk_id(version.id, version.content_hash, p) for p in range(version.chunk_count)
        }
        if passage.get("chunk_id") not in current:
            return f"{name} changed since the answer was verified"
    return None
