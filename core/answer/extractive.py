"""The answerer that needs no language model.

It answers with the sentences of the retrieved passages that best match the question, each
cited. It is what Loupe runs offline and what it falls back to when the LLM fails, so it must
never invent text: every word it returns is quoted from a passage.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from core.answer.citations import neutralize_markers
from core.answer.text import content_terms, coverage, split_sentences

MODEL_NAME = "extractive"
# Longest sentence considered: longer "sentences" are usually tables or run-on lists.
_MAX_SENTENCE_CHARS = 600
# A second sentence is added only if it scores nearly as well as the best one.
_SECOND_SENTENCE_RATIO = 0.85


def _statement(sentence: str) -> str | None:
    """The sentence without a leading Markdown heading line, or None when what is left is no
    statement (too short or long, or a question: FAQ entries ask rather than answer)."""
    lines = sentence.strip().splitlines()
    while lines and lines[0].lstrip().startswith("#"):
        lines.pop(0)
    text = " ".join(line.strip() for line in lines).strip()
    if not 3 <= len(text) <= _MAX_SENTENCE_CHARS or text.endswith(("?", "？")):
        return None
    return text


@dataclass(frozen=True)
class Candidate:
    n: int
    sentence: str
    score: float


class ExtractiveAnswerer:
    def __init__(self, embeddings: Embeddings, *, max_sentences: int = 2) -> None:
        self.embeddings = embeddings
        self.max_sentences = max_sentences

    def rank(self, question: str, passages: Sequence[Document]) -> list[Candidate]:
        """Every sentence of every passage, best first: 60% meaning (embedding similarity),
        30% shared terms with the question, 10% the passage's retrieval rank."""
        sentences: list[tuple[int, str]] = []
        for n, doc in enumerate(passages, start=1):
            for sentence in split_sentences(neutralize_markers(doc.page_content)):
                if statement := _statement(sentence):
                    sentences.append((n, statement))
        if not sentences:
            return []
        q_vec = np.asarray(self.embeddings.embed_query(question))
        s_vecs = np.asarray(self.embeddings.embed_documents([s for _, s in sentences]))
        similarity = s_vecs @ q_vec
        q_terms = content_terms(question)
        ranked = [
            Candidate(
                n=n,
                sentence=sentence,
                score=0.6 * float(sim) + 0.3 * coverage(q_terms, content_terms(sentence)) + 0.1 / n,
            )
            for (n, sentence), sim in zip(sentences, similarity, strict=True)
        ]
        return sorted(ranked, key=lambda c: -c.score)

    def answer(self, question: str, passages: Sequence[Document]) -> str:
        ranked = self.rank(question, passages)
        if not ranked:
            return ""
        chosen = [ranked[0]]
        for candidate in ranked[1:]:
            if len(chosen) >= self.max_sentences:
                break
            if candidate.score >= _SECOND_SENTENCE_RATIO * ranked[0].score and all(
                candidate.sentence != c.sentence for c in chosen
            ):
                chosen.append(candidate)
        return " ".join(f"{c.sentence.rstrip()} [{c.n}]" for c in chosen)

    def stream(self, question: str, passages: Sequence[Document]) -> Iterator[str]:
        """Word by word, so the UI streams the same way for both generators."""
        text = self.answer(question, passages)
        words = text.split(" ")
        for i, word in enumerate(words):
            yield word if i == 0 else " " + word
