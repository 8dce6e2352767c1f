"""Vector stores: `make_store` picks the configured backend."""

from __future__ import annotations

from core.config import Settings
from core.stores.base import VectorStore


def make_store(settings: Settings, *, dimension: int) -> VectorStore:
    if settings.vector_store == "weaviate":
        from core.stores.weaviate import WeaviateStore

        return WeaviateStore(settings, dimension=dimension)
    from core.stores.lancedb import LanceDBStore

    return LanceDBStore(
        settings.lancedb_dir, dimension=dimension, table=f"chunks_{settings.workspace}"
    )
