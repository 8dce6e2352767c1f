"""Vector stores: a registry of backends, and `make_store` to open the configured one."""

from __future__ import annotations

import re
from collections.abc import Callable

from core.config import Settings
from core.embeddings import embedding_key
from core.stores.base import VectorStore


def model_suffix(settings: Settings) -> str:
    """Each embedding model gets a table (collection) of its own, so vectors of two models can
    never be searched together: after a model change the new one starts empty, and documents
    indexed with another model are listed as needing a re-index (`DocumentService.stale`)."""
    return re.sub(r"[^0-9A-Za-z]+", "_", embedding_key(settings)).strip("_").lower()


def lancedb_table(settings: Settings) -> str:
    return f"chunks_{settings.workspace}_{model_suffix(settings)}"


def _lancedb(settings: Settings, dimension: int) -> VectorStore:
    from core.stores.lancedb import LanceDBStore

    return LanceDBStore(settings.lancedb_dir, dimension=dimension, table=lancedb_table(settings))


def _weaviate(settings: Settings, dimension: int) -> VectorStore:
    from core.stores.weaviate import WeaviateStore

    collection = f"{settings.weaviate_collection}_{model_suffix(settings)}"
    return WeaviateStore(settings, dimension=dimension, collection=collection)


# Every `LOUPE_VECTOR_STORE` value (a test checks this against the config's choices). Backends
# import lazily, so a LanceDB install never loads the Weaviate client and the reverse.
STORES: dict[str, Callable[[Settings, int], VectorStore]] = {
    "lancedb": _lancedb,
    "weaviate": _weaviate,
}


def make_store(settings: Settings, *, dimension: int, backend: str | None = None) -> VectorStore:
    """The store for `settings`, or for another `backend` over the same settings (what
    `migrate-store` copies into)."""
    name = backend or settings.vector_store
    if name not in STORES:
        raise ValueError(f"Unknown vector store {name!r}: choose one of {', '.join(STORES)}.")
    return STORES[name](settings, dimension)
