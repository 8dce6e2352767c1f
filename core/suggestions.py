"""Questions a new conversation offers, drawn from the indexed documents' own headings, so a
first-time user sees what the documents can answer instead of a blank page.

Headings are what a document says it is about ("Bicycle parking" in a commuting guide), and the
answerer finds the passage under a heading when asked about it, with or without a language
model. Documents without headings (plain text, CSV) offer none: a guess from their body would
suggest questions they may not answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from core.ingest.loaders import LoaderError, load_bytes

# A heading that is a sentence or a list item, not a topic.
_MAX_HEADING_WORDS = 8
_NOT_A_TOPIC = re.compile(
    r"^(introduction|overview|contents|table of contents|appendix|faq)$", re.I
)


@dataclass(frozen=True)
class Indexed:
    """An indexed document, as far as suggestions need it."""

    name: str
    path: Path | None


def _title(name: str) -> str:
    """'commuting-guide.md' → 'the commuting guide'."""
    stem = re.sub(r"[-_]+", " ", PurePath(name).stem).strip()
    return f"the {stem.lower()}" if stem else name


def topics(name: str, data: bytes) -> list[str]:
    """The headings under the document's title, in document order, without repeats."""
    try:
        document = load_bytes(name, data)
    except LoaderError:
        return []
    seen: list[str] = []
    for section in document.sections:
        if not section.heading:
            continue
        parts = [part.strip() for part in section.heading.split(" > ") if part.strip()]
        # The single top heading is the document's title, not a topic in it.
        leaf = parts[-1] if len(parts) > 1 else None
        if (
            leaf
            and len(leaf.split()) <= _MAX_HEADING_WORDS
            and not _NOT_A_TOPIC.match(leaf)
            and leaf.lower() not in (topic.lower() for topic in seen)
        ):
            seen.append(leaf)
    return seen


def suggested_questions(documents: Sequence[Indexed], limit: int = 4) -> list[str]:
    """Up to `limit` questions, taking one topic from each document in turn (newest first),
    so several documents are represented rather than the first one's headings only."""
    per_document: list[list[str]] = []
    for doc in documents:
        if doc.path is None or not doc.path.exists():
            continue
        found = topics(doc.name, doc.path.read_bytes())
        if found:
            title = _title(doc.name)
            per_document.append([f"What does {title} say about {t.lower()}?" for t in found])
    questions: list[str] = []
    for depth in range(max((len(q) for q in per_document), default=0)):
        for candidates in per_document:
            if depth < len(candidates) and len(questions) < limit:
                questions.append(candidates[depth])
    return questions
