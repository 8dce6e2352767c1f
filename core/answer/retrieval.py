"""A LangChain retriever over any Loupe vector store.

Documents come back with their scores in metadata (fused, keyword, vector) so the chain can
judge whether the documents cover the question and how confident the answer may be. Expert
verdicts on passages arrive as `boosts` (core/learn/boosts.py): score offsets by chunk id,
weighted by how similar the question is to the one each verdict was given for, and clipped.
A question in a language the embedding model was not trained on is searched by keywords alone
(`vector_languages`): its vectors would only add noise to the fused score.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from core.language import vectors_read
from core.stores.base import Hit, SearchFilter, VectorStore

MAX_BOOST = 0.3


@runtime_checkable
class Boosts(Protocol):
    """What feedback has taught about passages (built by `core.learn.boosts`): score offsets
    by chunk id for one question. A protocol, so the answer flow does not depend on LEARN."""

    def __len__(self) -> int: ...

    def offsets(self, query_vector: Sequence[float], chunk_ids: Iterable[str]) -> dict[str, float]:
        """Chunk id → score offset for the question with this vector."""
        ...


class StoreRetriever(BaseRetriever):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Any  # a VectorStore; typed loosely because protocols are not pydantic types
    embeddings: Embeddings
    k: int = 5
    alpha: float = 0.5
    filters: SearchFilter | None = None
    boosts: Boosts | None = None
    vector_languages: frozenset[str] | None = None  # the embedding model's; None: many

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        """`k` given at call time (`retriever.invoke(q, k=1)`) wins over the field, as
        LangChain's retrievers do."""
        return [hit_to_document(hit) for hit in self.search(query, k=k)]

    def search(self, query: str, *, k: int | None = None) -> list[Hit]:
        store: VectorStore = self.store
        k = self.k if k is None else k
        boosts = self.boosts
        alpha = self.alpha if vectors_read(query, self.vector_languages) else 0.0
        # The boosts need the question's vector even when the search is keyword-only.
        vector = self.embeddings.embed_query(query) if alpha > 0 or boosts else []
        # Fetch a few extra so a promoted passage just below the cut can move up.
        extra = 3 if boosts else 0
        hits = store.search(
            query,
            vector if alpha > 0 else [],
            k=k + extra,
            alpha=alpha,
            filters=self.filters,
        )
        if boosts:
            offsets = boosts.offsets(vector, [h.chunk.id for h in hits])
            hits = sorted(hits, key=lambda h: -(h.score + _clip(offsets.get(h.chunk.id, 0.0))))
        return hits[:k]


def _clip(offset: float) -> float:
    return max(-MAX_BOOST, min(MAX_BOOST, offset))


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
