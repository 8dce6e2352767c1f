"""Cut loaded sections into overlapping chunks for embedding and retrieval.

Each section is split on its own, so a chunk never spans two pages or two headings and its
citation stays exact; positions run across the whole document so its order can be rebuilt.

Sizes are counted by a `length` function: the embedding model's own tokenizer where Loupe has
it (`core.embeddings.token_budget`), so a chunk is exactly what the model embeds. Counted in
characters, 1,000 characters of Korean are about 670 MiniLM tokens against a 256-token window:
the end of every Korean chunk was never embedded.

Text in a language the embedding model was not trained on (Korean, for the English-only
default) is searched and answered by its words alone (`core.language.vectors_read`), so its
vectors are never read: it is sized in characters as keyword search and the answerer want it,
and its chunks cost a quarter of the embedding time of window-sized ones (bench/KOREAN.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter

from core.config import Settings
from core.ingest.loaders import Section
from core.language import vectors_read

# Coarsest boundary first. Korean ends sentences with the same ". ? !" as English, so those
# serve both; "。" covers Chinese and Japanese text. Clause marks come before a bare space so a
# long sentence breaks at a comma rather than mid-phrase, and "" is the last resort that keeps
# every chunk within size.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "。", "; ", ", ", " ", ""]

# Markdown heading lines at the start of a section ("## Annual leave").
_LEADING_HEADINGS = re.compile(r"\A(?:[ \t]*#{1,6}[ \t][^\n]*(?:\n+|\Z))+")


# Characters per chunk where the model's tokens do not size chunks: hosted models, and text the
# model does not read.
CHARACTER_CHUNK = 1000


@dataclass(frozen=True)
class ChunkPlan:
    """How chunks are sized: at most `size` as `length` counts, `overlap` shared; text in a
    language outside `languages` (the embedding model's, None: any) by `unread` instead."""

    size: int
    overlap: int
    length: Callable[[str], int] = len
    unit: str = "characters"
    languages: frozenset[str] | None = None
    unread: ChunkPlan | None = None

    def __post_init__(self) -> None:
        if self.size < 1 or not 0 <= self.overlap < self.size:
            raise ValueError(
                f"need size >= 1 and 0 <= overlap < size, got size={self.size} "
                f"overlap={self.overlap}"
            )

    def for_text(self, text: str) -> ChunkPlan:
        if self.unread is None or vectors_read(text, self.languages):
            return self
        return self.unread


def chunk_plan(settings: Settings, embeddings: Any) -> ChunkPlan:
    """Tokens of the active model where Loupe runs it: `LOUPE_CHUNK_SIZE` if set, never more
    than the model embeds whole; unset, its whole window. Hosted models (no local tokenizer,
    windows of thousands of tokens) are counted in characters, 1,000 unless set. The overlap
    is `LOUPE_CHUNK_OVERLAP`, or 15% of the size."""
    from core.embeddings import token_budget, vector_languages

    budget = token_budget(embeddings)
    if budget is None:
        return _plan(settings.chunk_size or CHARACTER_CHUNK, settings)
    length, window = budget
    languages = vector_languages(settings)
    return _plan(
        min(settings.chunk_size or window, window),
        settings,
        length=length,
        unit="tokens",
        languages=languages,
        # LOUPE_CHUNK_OVERLAP counts the model's tokens, so it does not apply here.
        unread=None
        if languages is None
        else ChunkPlan(CHARACTER_CHUNK, _default_overlap(CHARACTER_CHUNK)),
    )


def _default_overlap(size: int) -> int:
    return size * 15 // 100


def _plan(size: int, settings: Settings, **fields: Any) -> ChunkPlan:
    overlap = _default_overlap(size) if settings.chunk_overlap is None else settings.chunk_overlap
    return ChunkPlan(size=size, overlap=min(overlap, size - 1), **fields)


@dataclass(frozen=True)
class ChunkDraft:
    text: str
    position: int
    page: int | None
    heading: str | None


def chunk_sections(sections: Sequence[Section], plan: ChunkPlan) -> list[ChunkDraft]:
    """Split each section into chunks as the plan sizes them for the section's language, with
    overlap between neighbours; the same input always gives the same chunks, so re-ingesting
    is idempotent."""
    # The splitter strips each chunk and drops those left empty, so whitespace never becomes one.
    pieces = [
        (section, text)
        for section in sections
        for text in _split_section(section.text, plan.for_text(section.text))
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


def _split_section(text: str, plan: ChunkPlan) -> list[str]:
    """A section's chunks. A heading that opens it goes with the first chunk of its text:
    split on its own it became a chunk of nothing but "## Paragraph 4", which outranked the
    passage it heads and took a place among the sources."""
    size, overlap, length = plan.size, plan.overlap, plan.length
    heading = _LEADING_HEADINGS.match(text)
    body = text[heading.end() :] if heading else text
    title = heading.group(0).strip() if heading else ""
    room = size - length(title + "\n\n") - 1 if title else size
    if not title or not body.strip() or room < max(1, size // 2):
        return _splitter(size, overlap, length).split_text(text)
    pieces = _splitter(room, overlap, length).split_text(body)
    return [f"{title}\n\n{pieces[0]}", *pieces[1:]] if pieces else [title]
