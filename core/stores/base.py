"""The vector-store contract every backend implements (LanceDB embedded, Weaviate).

Stores hold chunks and vectors only; SQL is the system of record. A hybrid search returns each
hit with both of its parts, so confidence and evaluation can see why a passage ranked where it did.
"""

from __future__ import annotations

import uuid
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
    by_id: dict[str, dict[str, float | Chunk]] = {}
    for part, results in (("keyword", keyword), ("vector", vector)):
        if not results:
            continue
        scores = [s for _, s in results]
        lo, hi = min(scores), max(scores)
        for chunk, raw in results:
            entry = by_id.setdefault(chunk.id, {"chunk": chunk})
            entry[part] = raw
            entry[f"{part}_norm"] = (raw - lo) / (hi - lo) if hi > lo else 1.0
    hits = []
    for entry in by_id.values():
        kw = float(entry.get("keyword_norm", 0.0))  # type: ignore[arg-type]
        vec = float(entry.get("vector_norm", 0.0))  # type: ignore[arg-type]
        chunk = entry["chunk"]
        assert isinstance(chunk, Chunk)
        hits.append(
            Hit(
                chunk=chunk,
                score=alpha * vec + (1 - alpha) * kw,
                keyword_score=_opt(entry.get("keyword")),
                vector_score=_opt(entry.get("vector")),
            )
        )
    hits.sort(key=lambda h: (-h.score, h.chunk.document_id, h.chunk.position))
    return hits[:k]


def _opt(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None
