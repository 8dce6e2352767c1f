"""The vector-store contract every backend implements (LanceDB embedded, Weaviate).

Stores hold chunks and vectors only; SQL is the system of record. A hybrid search returns each
hit with both of its parts, so confidence and evaluation can see why a passage ranked where it did.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

_CHUNK_NAMESPACE = uuid.UUID("5d1c7a52-3f0e-4f59-9a53-2a3b0f0f1c11")


def chunk_id(document_id: str, content_hash: str, position: int) -> str:
    """A stable UUID for a chunk: re-ingesting the same bytes yields the same ids (idempotent)."""
    return str(uuid.uuid5(_CHUNK_NAMESPACE, f"{document_id}:{content_hash}:{position}"))


@dataclass(frozen=True)
class Chunk:
    id: str
    document_id: str
    text: str
    title: str
    position: int
    content_hash: str
    page: int | None = None
    heading: str | None = None
    tags: tuple[str, ...] = ()
    vector: tuple[float, ...] | None = None

    def without_vector(self) -> Chunk:
        return replace(self, vector=None)


@dataclass(frozen=True)
class Hit:
    """A scored chunk. `score` is the fused hybrid score in [0, 1]; the parts are raw values:
    `keyword_score` is BM25 (None when the keyword search did not return the chunk) and
    `vector_score` is cosine similarity (None when the vector search did not return it)."""

    chunk: Chunk
    score: float
    keyword_score: float | None = None
    vector_score: float | None = None


@dataclass(frozen=True)
class SearchFilter:
    """Restrict a search to some documents and/or to chunks carrying any of the tags."""

    document_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.document_ids and not self.tags


@dataclass(frozen=True)
class StoreHealth:
    ok: bool
    backend: str
    detail: str = ""
    chunks: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class VectorStore(Protocol):
    """What Loupe needs from a vector store; `tests/contract/` checks every backend against it."""

    name: str

    def upsert(self, chunks: Sequence[Chunk]) -> None:
        """Insert or replace chunks by id. Every chunk carries its vector."""
        ...

    def delete_document(self, document_id: str, *, keep_content_hash: str | None = None) -> int:
        """Delete a document's chunks (all, or all but one version); return how many went."""
        ...

    def search(
        self,
        query: str,
        vector: Sequence[float],
        *,
        k: int,
        alpha: float,
        filters: SearchFilter | None = None,
    ) -> list[Hit]:
        """Hybrid search: alpha=0 keyword only, alpha=1 vector only; best first."""
        ...

    def count(self, document_id: str | None = None) -> int: ...

    def iter_chunks(self, batch_size: int = 500) -> Iterator[list[Chunk]]:
        """Every chunk with its vector, in batches (used to migrate between stores)."""
        ...

    def version_counts(self) -> Counter[tuple[str, str]]:
        """How many chunks each (document id, content hash) has: one entry per version held."""
        ...

    def health(self) -> StoreHealth: ...

    def close(self) -> None: ...


def fuse(
    keyword: Sequence[tuple[Chunk, float]],
    vector: Sequence[tuple[Chunk, float]],
    *,
    alpha: float,
    k: int,
) -> list[Hit]:
    """Relative score fusion (Weaviate's default): min-max normalise each list, then
    alpha * vector + (1 - alpha) * keyword. Unlike rank fusion it keeps score gaps, which
    matter for confidence, and it behaves the same on both backends."""
    chunks: dict[str, Chunk] = {}
    raw: dict[str, dict[str, float]] = {}
    fused: dict[str, float] = {}
    for part, weight, results in (("keyword", 1 - alpha, keyword), ("vector", alpha, vector)):
        if not results:
            continue
        lo, hi = min(s for _, s in results), max(s for _, s in results)
        for chunk, score in results:
            chunks[chunk.id] = chunk
            raw.setdefault(chunk.id, {})[part] = score
            normalised = (score - lo) / (hi - lo) if hi > lo else 1.0
            fused[chunk.id] = fused.get(chunk.id, 0.0) + weight * normalised
    hits = [
        Hit(
            chunk=chunks[cid],
            score=score,
            keyword_score=raw[cid].get("keyword"),
            vector_score=raw[cid].get("vector"),
        )
        for cid, score in fused.items()
    ]
    hits.sort(key=lambda h: (-h.score, h.chunk.document_id, h.chunk.position))
    return hits[:k]
