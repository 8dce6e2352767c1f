"""Builders for the plain records tests need: chunks with vectors, in one shape everywhere."""

from __future__ import annotations

from core.stores.base import Chunk, chunk_id


def make_chunk(
    doc: str,
    position: int,
    text: str,
    vector: tuple[float, ...],
    *,
    content_hash: str = "v1",
    title: str | None = None,
    tags: tuple[str, ...] = (),
    page: int | None = None,
    heading: str | None = None,
) -> Chunk:
    """A chunk of document `doc`, with the id the ingest pipeline would give it."""
    return Chunk(
        id=chunk_id(doc, content_hash, position),
        document_id=doc,
        text=text,
        title=title or f"{doc}.txt",
        position=position,
        content_hash=content_hash,
        page=page,
        heading=heading,
        tags=tags,
        vector=vector,
    )
