"""A LangChain retriever over any Loupe vector store.

Documents come back with their scores in metadata (fused, keyword, vector) so the chain can
judge whether the documents cover the question and how confident the answer may be. Expert
verdicts on passages arrive as `boosts`: bounded score offsets by chunk id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from core.stores.base import Hit, SearchFilter, VectorStore

MAX_BOOST = 0.3


class StoreRetriever(BaseRetriever):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Any  # a VectorStore; typed loosely because protocols are not pydantic types
    embeddings: Embeddings
    k: int = 5
    alpha: float = 0.5
    filters: SearchFilter | None = None
    boosts: Mapping[str, float] = Field(default_factory=dict)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        """`k` given at call time (`retriever.invoke(q, k=1)`) wins over the field, as
        LangChain's retrievers do."""
        return [hit_to_document(hit) for hit in self.search(query, k=k)]

    def search(self, query: str, *, k: int | None = None) -> list[Hit]:
        store: VectorStore = self.store
        k = self.k if k is None else k
        vector = self.embeddings.embed_query(query) if self.alpha > 0 else []
        # Fetch a few extra so a promoted passage just below the cut can move up.
        extra = 3 if self.boosts else 0
        hits = store.search(query, vector, k=k + extra, alpha=self.alpha, filters=self.filters)
        if self.boosts:
            hits = sorted(hits, key=lambda h: -(h.score + self._boost(h.chunk.id)))
        return hits[:k]

    def _boost(self, chunk_id: str) -> float:
        return max(-MAX_BOOST, min(MAX_BOOST, self.boosts.get(chunk_id, 0.0)))


def hit_to_document(hit: Hit) -> Document:
    chunk = hit.chunk
    return Document(
        page_content=chunk.text,
        id=chunk.id,
        metadata={
            "chunk_id": chunk.id,
            "document_id": chunk.document_id,
            "document": chunk.title,
            "page": chunk.page,
            "heading": chunk.heading,
            "position": chunk.position,
            "content_hash": chunk.content_hash,
            "tags": list(chunk.tags),
            "score": hit.score,
            "keyword_score": hit.keyword_score,
            "vector_score": hit.vector_score,
        },
    )
