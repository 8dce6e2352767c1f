"""Verified answers: matching a new question to one an expert already answered.

Matching has two steps. The embedding model finds candidates (cosine similarity of the
standalone questions at least `threshold`), and the precision guard (core/learn/questions.py)
refuses any candidate that asks for something else. The best surviving candidate is the match.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from core.feedback import VerifiedAnswer
from core.learn.questions import refusal

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
