"""Vector stores: a registry of backends, and `make_store` to open the configured one."""

from __future__ import annotations

from collections.abc import Callable

from core.config import Settings
from core.stores.base import VectorStore


def _lancedb(settings: Settings, dimension: int) -> VectorStore:
    from core.stores.lancedb import LanceDBStore

    return LanceDBStore(
        settings.lancedb_dir, dimension=dimension, table=f"chunks_{settings.workspace}"
    )


def _weaviate(settings: Settings, dimension: int) -> VectorStore:
    from core.stores.weaviate import WeaviateStore

    return WeaviateStore(settings, dimension=dimension)


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
