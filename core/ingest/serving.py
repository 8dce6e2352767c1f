"""Search serves only what SQL says is ready.

The store may hold chunks SQL does not serve: a new version being written (it is published
only once complete), a new document not yet ready, leftovers of a crashed ingest waiting for
recovery. `ReadyVersions` wraps a store for searching and keeps a hit only when SQL marks its
document ready with the hit's content hash, so a question never sees two versions of a document
or half of one. The check is one indexed SQL read of at most the candidates' documents per
search; a search that lost hits to it is repeated with more candidates so `k` still holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

from sqlalchemy import select

from core.db.models import Document, DocumentStatus
from core.db.session import Database
from core.stores.base import Chunk, Hit, SearchFilter, StoreHealth, VectorStore

# A search that dropped hits asks again for this many times as many candidates, at most twice:
# unserved chunks are few and short-lived, so one retry nearly always suffices.
_WIDEN = 4
_TRIES = 3


class ReadyVersions:
    """A `VectorStore` whose searches return only chunks of ready versions; every other call
    goes to the wrapped store unchanged."""

    def __init__(self, store: VectorStore, db: Database, workspace: str) -> None:
        self.inner = store
        self.db = db
        self.workspace = workspace
        self.name = store.name

    def served(self, document_ids: Sequence[str]) -> dict[str, str]:
        """document id → the content hash search may serve, for those that are ready."""
        if not document_ids:
            return {}
        with self.db.session() as s:
            rows = s.execute(
                select(Document.id, Document.content_hash).where(
                    Document.id.in_(sorted(set(document_ids))),
                    Document.workspace == self.workspace,
                    Document.status == DocumentStatus.ready,
                )
            ).all()
        return {document_id: digest for document_id, digest in rows}

    def search(
        self,
        query: str,
        vector: Sequence[float],
        *,
        k: int,
        alpha: float,
        filters: SearchFilter | None = None,
    ) -> list[Hit]:
        want = k
        kept: list[Hit] = []
        for _ in range(_TRIES):
            hits = self.inner.search(query, vector, k=want, alpha=alpha, filters=filters)
            ready = self.served([hit.chunk.document_id for hit in hits])
            kept = [
                hit for hit in hits if ready.get(hit.chunk.document_id) == hit.chunk.content_hash
            ]
            if len(kept) == len(hits) or len(kept) >= k or len(hits) < want:
                break
            want *= _WIDEN
        return kept[:k]

    # -- the rest of the protocol, unchanged ----------------------------------------------

    def upsert(self, chunks: Sequence[Chunk]) -> None:
        self.inner.upsert(chunks)

    def delete_document(self, document_id: str, *, keep_content_hash: str | None = None) -> int:
        return self.inner.delete_document(document_id, keep_content_hash=keep_content_hash)

    def count(self, document_id: str | None = None) -> int:
        return self.inner.count(document_id)

    def iter_chunks(self, batch_size: int = 500) -> Iterator[list[Chunk]]:
        return self.inner.iter_chunks(batch_size)

    def version_counts(self) -> Counter[tuple[str, str]]:
        return self.inner.version_counts()

    def health(self) -> StoreHealth:
        return self.inner.health()

    def close(self) -> None:
        self.inner.close()
