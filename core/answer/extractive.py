"""The answerer that needs no language model.

It answers with the sentences of the retrieved passages that best match the question, each
cited. It is what Loupe runs offline and what it falls back to when the LLM fails, so it must
never invent text: every word it returns is quoted from a passage. A passage that is a table
(a CSV section: a "Columns: ..." line, then one "column: value; ..." line per row) answers with
its best-matching row, cut to the columns the question asks about when that can be told.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from core.answer.citations import neutralize_markers
from core.answer.text import content_terms, coverage, split_sentences, stemmed_terms
from core.language import vectors_read

MODEL_NAME = "extractive"
# Longest sentence considered: longer "sentences" are usually tables or run-on lists.
_MAX_SENTENCE_CHARS = 600
# A second sentence is added only if it scores nearly as well as the best one.
_SECOND_SENTENCE_RATIO = 0.85
# The best-ranked passage answers when its best sentence scores within this share of the
# overall best: retrieval already weighed the whole passage, a sentence score sees one line.
_FIRST_PASSAGE_RATIO = 0.92
# A line without end punctuation and at most this many words, right before more text, is a
# heading (HTML and DOCX headings arrive without Markdown's "#").
_HEADING_WORDS = 8
_END_PUNCTUATION = (".", "!", "?", ":", ";", "。", "！", "？", ")", '"', "”")
_CSV_HEADER = "Columns: "
_CELL = re.compile(r"\s*;\s*(?=[^;:]+:\s)")
_CACHE_SIZE = 8192


def _heading_titles(doc: Document) -> set[str]:
    heading = doc.metadata.get("heading") if doc.metadata else None
    return {part.strip().lower() for part in str(heading or "").split(" > ") if part.strip()}


def _statement(sentence: str, headings: set[str], *, starts_line: bool = True) -> str | None:
    """The sentence without leading heading lines (Markdown "#", a title of the passage's
    heading path, or a short unpunctuated line followed by more), or None when what is left is
    no statement (too short or long, or a question: FAQ entries ask rather than answer). A
    sentence that starts mid-line (after another one's full stop) opens with no heading: its
    short first line is the rest of a hard-wrapped line, and dropping it lost "배우자의 건강검진
    비용은 50%를" from "...50%를\n회사가 지원합니다."."""
    lines = [line.strip() for line in sentence.strip().splitlines() if line.strip()]
    while lines and (
        lines[0].startswith("#")
        or lines[0].lower() in headings
        or (
            starts_line
            and len(lines) > 1
            and len(lines[0].split()) <= _HEADING_WORDS
            and not lines[0].endswith(_END_PUNCTUATION)
        )
    ):
        lines.pop(0)
    text = " ".join(lines).strip()
    if text.lower() in headings or not text.endswith(_END_PUNCTUATION):
        # A lone title ("Canteen menu") is a heading, not a statement.
        if len(text.split()) <= _HEADING_WORDS:
            return None
    if not 3 <= len(text) <= _MAX_SENTENCE_CHARS or text.endswith(("?", "？")):
        return None
    return text


def _table_rows(text: str) -> list[list[tuple[str, str]]] | None:
    """A CSV section's rows as (column, value) pairs, or None when the passage is no table."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith(_CSV_HEADER):
        return None
    rows = []
    for line in lines[1:]:
        cells = []
        for cell in _CELL.split(line):
            name, sep, value = cell.partition(":")
            if sep and name.strip() and value.strip():
                cells.append((name.strip(), value.strip()))
        if cells:
            rows.append(cells)
    return rows


def _name_terms(column: str) -> set[str]:
    return stemmed_terms(column.replace("_", " "))


def _row_answer(
    row: list[tuple[str, str]],
    q_terms: set[str],
    q_stems: set[str],
    column_stems: dict[str, set[str]],
) -> str:
    """`column: value` pairs of a row: the columns whose values the question names (which row)
    and those whose names share the most words with it (what it asks), or the whole row when
    it names no column. The question's terms and the columns' stems are worked out once per
    table, not per row (`column_stems` fills as columns are seen)."""
    keys = [(c, v) for c, v in row if content_terms(v) & q_terms]
    for c, _ in row:
        if c not in column_stems:
            column_stems[c] = _name_terms(c)
    named = {c: len(column_stems[c] & q_stems) for c, _ in row}
    most = max(named.values(), default=0)
    asked = [(c, v) for c, v in row if most and named[c] == most and (c, v) not in keys]
    chosen = keys + asked if asked else row
    order = {c: i for i, (c, _) in enumerate(row)}
    return "; ".join(f"{c}: {v}" for c, v in sorted(chosen, key=lambda cv: order[cv[0]]))


@dataclass(frozen=True)
class Candidate:
    n: int
    sentence: str
    score: float


class ExtractiveAnswerer:
    def __init__(
        self,
        embeddings: Embeddings,
        *,
        max_sentences: int = 2,
        vector_languages: frozenset[str] | None = None,
    ) -> None:
        self.embeddings = embeddings
        self.max_sentences = max_sentences
        self.vector_languages = vector_languages  # the embedding model's; None: many
        # Sentence vectors by text: the same passages come back for related questions, and
        # embedding their sentences is most of this answerer's time.
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def _embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            known = {t: self._vectors[t] for t in texts if t in self._vectors}
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            fresh = self.embeddings.embed_documents(missing)
            for text, vector in zip(missing, fresh, strict=True):
                known[text] = np.asarray(vector, dtype=np.float32)
            with self._lock:
                self._vectors.update((t, known[t]) for t in missing)
                while len(self._vectors) > _CACHE_SIZE:
                    self._vectors.popitem(last=False)
        return np.vstack([known[t] for t in texts])

    def _units(self, passages: Sequence[Document], question: str) -> list[tuple[int, str, str]]:
        """(passage number, text to embed and score, text to quote): each statement once, in
        the best-ranked passage that has it; a table passage gives its rows."""
        units: list[tuple[int, str, str]] = []
        seen: set[str] = set()
        q_terms: set[str] | None = None
        q_stems: set[str] = set()
        column_stems: dict[str, set[str]] = {}
        for n, doc in enumerate(passages, start=1):
            text = neutralize_markers(doc.page_content)
            rows = _table_rows(text)
            if rows is not None:
                if q_terms is None:
                    q_terms, q_stems = content_terms(question), stemmed_terms(question)
                for row in rows:
                    full = "; ".join(f"{c}: {v}" for c, v in row)
                    if full.lower() not in seen:
                        seen.add(full.lower())
                        units.append((n, full, _row_answer(row, q_terms, q_stems, column_stems)))
                continue
            headings = _heading_titles(doc)
            offset = 0
            for sentence in split_sentences(text):
                at = text.find(sentence[:40], offset)
                starts_line = at <= 0 or text[at - 1] == "\n"
                offset = max(at, offset)
                statement = _statement(sentence, headings, starts_line=starts_line)
                if statement and statement.lower() not in seen:
                    seen.add(statement.lower())
                    units.append((n, statement, statement))
        return units

    def rank(self, question: str, passages: Sequence[Document]) -> list[Candidate]:
        """Every statement (or table row) of every passage, best first: 60% meaning
        (embedding similarity), 30% shared terms with the question, 10% the passage's rank. When
        the model's vectors mean nothing in the question's language, shared terms take the
        meaning's share."""
        units = self._units(passages, question)
        if not units:
            return []
        q_terms = content_terms(question)
        shared = [coverage(q_terms, content_terms(text)) for _, text, _ in units]
        if vectors_read(question, self.vector_languages):
            q_vec = np.asarray(self.embeddings.embed_query(question))
            meaning = [float(s) for s in self._embed([text for _, text, _ in units]) @ q_vec]
        else:
            meaning = shared
        ranked = [
            Candidate(n=n, sentence=quote, score=0.6 * sim + 0.3 * terms + 0.1 / n)
            for (n, _, quote), sim, terms in zip(units, meaning, shared, strict=True)
        ]
        return sorted(ranked, key=lambda c: -c.score)

    def answer(self, question: str, passages: Sequence[Document]) -> str:
        return self.answer_scored(question, passages)[0]

    def answer_scored(
        self, question: str, passages: Sequence[Document]
    ) -> tuple[str, dict[str, float]]:
        """The answer and how clearly its sentence won: its score and its lead over the
        runner-up (confidence features: a close race often picks the wrong sentence)."""
        ranked = self.rank(question, passages)
        if not ranked:
            return "", {}
        best = ranked[0]
        first = next((c for c in ranked if c.n == 1), None)
        if first is not None and first.score >= _FIRST_PASSAGE_RATIO * best.score:
            best = first
        chosen = [best]
        for candidate in ranked:
            if len(chosen) >= self.max_sentences:
                break
            if candidate is not best and candidate.score >= _SECOND_SENTENCE_RATIO * best.score:
                chosen.append(candidate)
        others = [c.score for c in ranked if c is not best]
        scores = {
            "sentence_score": round(best.score, 4),
            "sentence_margin": round(best.score - max(others, default=0.0), 4),
        }
        return " ".join(f"{c.sentence.rstrip()} [{c.n}]" for c in chosen), scores
