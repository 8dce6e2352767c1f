"""Cut loaded sections into overlapping chunks for embedding and retrieval.

Each section is split on its own, so a chunk never spans two pages or two headings and its
citation stays exact; positions run across the whole document so its order can be rebuilt.

Sizes are counted by a `length` function: the embedding model's own tokenizer where Loupe has
it (`core.embeddings.token_budget`), so a chunk is exactly what the model embeds. Counted in
characters, 1,000 characters of Korean are about 670 MiniLM tokens against a 256-token window:
the end of every Korean chunk was never embedded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter

from core.config import Settings
from core.ingest.loaders import Section

# Coarsest boundary first. Korean ends sentences with the same ". ? !" as English, so those
# serve both; "。" covers Chinese and Japanese text. Clause marks come before a bare space so a
# long sentence breaks at a comma rather than mid-phrase, and "" is the last resort that keeps
# every chunk within size.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "。", "; ", ", ", " ", ""]

# Markdown heading lines at the start of a section ("## Annual leave").
_LEADING_HEADINGS = re.compile(r"\A(?:[ \t]*#{1,6}[ \t][^\n]*(?:\n+|\Z))+")


@dataclass(frozen=True)
class ChunkPlan:
    """How chunks are sized: at most `size` as `length` counts, `overlap` shared."""

    size: int
    overlap: int
    length: Callable[[str], int] = len
    unit: str = "characters"


def chunk_plan(settings: Settings, embeddings: Any) -> ChunkPlan:
    """Tokens of the active model where Loupe runs it: `LOUPE_CHUNK_SIZE` if set, never more
    than the model embeds whole; unset, its whole window. Hosted models (no local tokenizer,
    windows of thousands of tokens) are counted in characters, 1,000 unless set. The overlap
    is `LOUPE_CHUNK_OVERLAP`, or 15% of the size."""
    from core.embeddings import token_budget

    budget = token_budget(embeddings)
    length: Callable[[str], int]
    if budget is None:
        size, length, unit = settings.chunk_size or 1000, len, "characters"
    else:
        length, window = budget
        size, unit = min(settings.chunk_size or window, window), "tokens"
    overlap = size * 15 // 100 if settings.chunk_overlap is None else settings.chunk_overlap
    return ChunkPlan(size=size, overlap=min(overlap, size - 1), length=length, unit=unit)


@dataclass(frozen=True)
class ChunkDraft:
    text: str
    position: int
    page: int | None
    heading: str | None


def chunk_sections(
    sections: Sequence[Section],
    *,
    size: int,
    overlap: int,
    length: Callable[[str], int] = len,
) -> list[ChunkDraft]:
    """Split each section into chunks of at most `size` (as `length` counts: characters by
    default), `overlap` shared between neighbours; the same input always gives the same
    chunks, so re-ingesting is idempotent."""
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"need size >= 1 and 0 <= overlap < size, got {size=} {overlap=}")
    # The splitter strips each chunk and drops those left empty, so whitespace never becomes one.
    pieces = [
        (section, text)
        for section in sections
        for text in _split_section(section.text, size, overlap, length)
    ]
    return [
        ChunkDraft(text=text, position=position, page=section.page, heading=section.heading)
        for position, (section, text) in enumerate(pieces)
    ]


def _splitter(
    size: int, overlap: int, length: Callable[[str], int]
) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=min(overlap, size - 1),
        length_function=length,
        separators=SEPARATORS,
        keep_separator="end",  # a sentence keeps its full stop instead of the next one taking it
        strip_whitespace=True,
    )


def _split_section(text: str, size: int, overlap: int, length: Callable[[str], int]) -> list[str]:
    """A section's chunks. A heading that opens it goes with the first chunk of its text:
    split on its own it became a chunk of nothing but "## Paragraph 4", which outranked the
    passage it heads and took a place among the sources."""
    heading = _LEADING_HEADINGS.match(text)
    body = text[heading.end() :] if heading else text
    title = heading.group(0).strip() if heading else ""
    room = size - length(title + "\n\n") - 1 if title else size
    if not title or not body.strip() or room < max(1, size // 2):
        return _splitter(size, overlap, length).split_text(text)
    pieces = _splitter(room, overlap, length).split_text(body)
    return [f"{title}\n\n{pieces[0]}", *pieces[1:]] if pieces else [title]
