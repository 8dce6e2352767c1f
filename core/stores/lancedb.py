"""The embedded default store: LanceDB on local disk, no server to run.

Hybrid search runs LanceDB's native BM25 full-text search and an exact/ANN cosine vector search
with the same prefilter, then fuses them with `fuse` so scores mean the same as on Weaviate.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import lancedb
import pyarrow as pa
from lancedb.index import FTS, IvfHnswSq
from lancedb.query import LanceVectorQueryBuilder

from core.stores.base import Chunk, Hit, SearchFilter, StoreHealth, fuse
from core.stores.keywords import keyword_text

log = logging.getLogger(__name__)
T = TypeVar("T")

# Index statistics (read on every upsert) without the vector index's centroids: Lance's coming
# default, and it silences the warning the current one prints.
os.environ.setdefault("LANCE_INCLUDE_VECTOR_CENTROIDS", "false")

_FTS_COLUMN = "fts"
_COLUMNS = [
    "id",
    "document_id",
    "text",
    "title",
    "page",
    "heading",
    "position",
    "content_hash",
    "tags",
]
# Candidates fetched from each of the two searches before fusion: enough that a passage ranked
# low by one method but high by the other still meets the fusion.
_MIN_CANDIDATES = 50
# Re-index the full-text index once this share of rows is unindexed (unindexed rows are still
# searched, just more slowly).
_REINDEX_SHARE = 0.2
# Exact vector search reads every vector on every query; from this size an approximate index is
# faster (bench/RESULTS.md, section 2) and below it exact search is fast enough to keep.
VECTOR_INDEX_MIN_ROWS = 50_000
VECTOR_INDEX = "vector_idx"


# Writers in other processes commit new table versions concurrently: Lance then refuses a
# commit with "Retryable commit conflict" (an add racing an optimize, two deletes, ...), which
# succeeds when simply tried again on the newer version. Backoff doubles from 50 ms up to 2 s,
# with jitter so two writers do not retry in step; 12 tries wait ~15 s at most.
RETRY_ATTEMPTS = 12
_RETRY_FIRST_WAIT = 0.05
_RETRY_MAX_WAIT = 2.0


def is_commit_conflict(exc: BaseException) -> bool:
    """Lance reports concurrent commits in the message only (no exception type of its own)."""
    message = str(exc).lower()
    return "commit conflict" in message or "retryable" in message


def retry_conflicts(action: Callable[[], T], *, what: str) -> T:
    """Run a write, again on commit conflicts with backoff; other errors pass through."""
    for attempt in range(RETRY_ATTEMPTS):
        try:
            return action()
        except Exception as exc:
            if not is_commit_conflict(exc) or attempt == RETRY_ATTEMPTS - 1:
                raise
            wait = min(_RETRY_MAX_WAIT, _RETRY_FIRST_WAIT * 2**attempt)
            log.info("%s: commit conflict, retry %d in %.2f s", what, attempt + 1, wait)
            time.sleep(wait * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


def vector_index_config(rows: int) -> IvfHnswSq:
    """IVF partitions of ~sqrt(rows) vectors, each an HNSW graph over 8-bit scalar-quantized
    vectors: on two cores it builds ~7x faster than IVF_PQ at 100k rows and needs no refine step.
    Lighter training than LanceDB's defaults builds 2.4x faster at 100k rows for recall@50 0.984
    instead of 0.986 against exact search; the index is built inside an upsert, so its build time
    is an upload's waiting time."""
    return IvfHnswSq(
        distance_type="cosine",
        num_partitions=max(1, round(math.sqrt(rows))),
        sample_rate=64,
        max_iterations=20,
        m=16,
        ef_construction=150,
    )


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _where(filters: SearchFilter | None) -> str | None:
    if filters is None or filters.empty:
        return None
    clauses = []
    if filters.document_ids:
        clauses.append(f"document_id IN ({', '.join(map(_quote, filters.document_ids))})")
    if filters.tags:
        clauses.append(f"array_has_any(tags, [{', '.join(map(_quote, filters.tags))}])")
    return " AND ".join(clauses)


class LanceDBStore:
    """Chunks and vectors in one LanceDB table, with a native full-text index."""

    name = "lancedb"

    def __init__(self, path: Path, *, dimension: int, table: str = "chunks") -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._path = path
        # Check for new table versions on every read: the CLI or another app worker may have
        # written since this process opened the table.
        self._db = lancedb.connect(str(path), read_consistency_interval=timedelta(0))
        self._dimension = dimension
        schema = pa.schema(
            [
                pa.field("id", pa.string(), nullable=False),
                pa.field("document_id", pa.string(), nullable=False),
                pa.field("text", pa.string()),
                pa.field(_FTS_COLUMN, pa.string()),
                pa.field("title", pa.string()),
                pa.field("page", pa.int32()),
                pa.field("heading", pa.string()),
                pa.field("position", pa.int32()),
                pa.field("content_hash", pa.string()),
                pa.field("tags", pa.list_(pa.string())),
                pa.field("vector", pa.list_(pa.float32(), dimension)),
            ]
        )
        self._table = self._db.create_table(table, schema=schema, exist_ok=True)
        stored_dim = self._table.schema.field("vector").type.list_size
        if stored_dim != dimension:
            raise ValueError(
                f"The vector store at {path} holds {stored_dim}-dimensional vectors but the "
                f"embedding model makes {dimension}: re-index after changing the embedding model."
            )

    def upsert(self, chunks: Sequence[Chunk]) -> None:
        if not chunks:
            return
        rows = []
        for chunk in chunks:
            if chunk.vector is None or len(chunk.vector) != self._dimension:
                raise ValueError(f"chunk {chunk.id} has no {self._dimension}-dimensional vector")
            rows.append(
                {
                    "id": chunk.id,
                    "document_id": chunk.document_id,
                    "text": chunk.text,
                    _FTS_COLUMN: keyword_text(
                        f"{chunk.title}\n{chunk.heading or ''}\n{chunk.text}"
                    ),
                    "title": chunk.title,
                    "page": chunk.page,
                    "heading": chunk.heading,
                    "position": chunk.position,
                    "content_hash": chunk.content_hash,
                    "tags": list(chunk.tags),
                    "vector": list(chunk.vector),
                }
            )
        retry_conflicts(
            lambda: (
                self._table.merge_insert("id")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(rows)
            ),
            what="upsert",
        )
        # The chunks are written: an index that cannot be brought up to date now (other
        # writers kept winning) only makes searches a little slower until the next write.
        try:
            self.refresh_indexes()
        except Exception as exc:
            if not is_commit_conflict(exc):
                raise
            log.warning("indexes not refreshed after an upsert (concurrent writers): %s", exc)

    def refresh_indexes(self) -> None:
        """Bring both indexes up to date with the table. Rows added since an index was built
        are still searched (exactly, and more slowly), so this only has to run often enough to
        keep queries fast: `optimize()` folds new rows into existing indexes once they are a
        fifth of the table, and the vector index is rebuilt with more partitions whenever the
        table has grown fourfold since it was trained."""
        table = self._table
        fts = table.index_stats(f"{_FTS_COLUMN}_idx")
        if fts is None:
            retry_conflicts(
                lambda: table.create_index(
                    _FTS_COLUMN, config=FTS(ascii_folding=True), replace=True
                ),
                what="full-text index",
            )
        rows = int(table.count_rows())
        vectors = table.index_stats(VECTOR_INDEX)
        if rows >= VECTOR_INDEX_MIN_ROWS and (
            vectors is None or rows > 4 * vectors.num_indexed_rows
        ):
            retry_conflicts(
                lambda: table.create_index(
                    "vector", config=vector_index_config(rows), name=VECTOR_INDEX, replace=True
                ),
                what="vector index",
            )
            vectors = None
        if any(
            stats is not None
            and stats.num_unindexed_rows > _REINDEX_SHARE * max(stats.num_indexed_rows, 1)
            for stats in (fts, vectors)
        ):
            retry_conflicts(table.optimize, what="optimize")

    def delete_document(self, document_id: str, *, keep_content_hash: str | None = None) -> int:
        where = f"document_id = {_quote(document_id)}"
        if keep_content_hash is not None:
            where += f" AND content_hash != {_quote(keep_content_hash)}"
        doomed = int(self._table.count_rows(where))
        if doomed:
            retry_conflicts(lambda: self._table.delete(where), what="delete")
        return doomed

    def version_counts(self) -> Counter[tuple[str, str]]:
        """Chunks per (document id, content hash): what `core check` compares with SQL."""
        columns = self._table.search().select(["document_id", "content_hash"]).limit(None)
        counts: Counter[tuple[str, str]] = Counter()
        for batch in columns.to_batches(10_000):
            data = batch.to_pydict()
            counts.update(zip(data["document_id"], data["content_hash"], strict=True))
        return counts

    def search(
        self,
        query: str,
        vector: Sequence[float],
        *,
        k: int,
        alpha: float,
        filters: SearchFilter | None = None,
    ) -> list[Hit]:
        where = _where(filters)
        candidates = max(k, _MIN_CANDIDATES)
        keyword: list[tuple[Chunk, float]] = []
        dense: list[tuple[Chunk, float]] = []
        if alpha < 1 and query.strip():
            builder = self._table.search(
                keyword_text(query), query_type="fts", fts_columns=_FTS_COLUMN
            )
            if where:
                builder = builder.where(where, prefilter=True)
            rows = builder.select([*_COLUMNS, "_score"]).limit(candidates).to_list()
            keyword = [(_chunk(row), float(row["_score"])) for row in rows]
        if alpha > 0:
            # refine_factor(1) re-scores the index's candidates on the stored vectors: without
            # it the quantized index reports a distance on another scale (about twice the
            # cosine distance), and confidence and the "not covered" check read cosines.
            builder = (
                cast(
                    LanceVectorQueryBuilder,
                    self._table.search(
                        list(vector), query_type="vector", vector_column_name="vector"
                    ),
                )
                .distance_type("cosine")
                .refine_factor(1)
            )
            if where:
                builder = builder.where(where, prefilter=True)
            rows = builder.select([*_COLUMNS, "_distance"]).limit(candidates).to_list()
            dense = [(_chunk(row), 1.0 - float(row["_distance"])) for row in rows]
        return fuse(keyword, dense, alpha=alpha, k=k)

    def count(self, document_id: str | None = None) -> int:
        if document_id is None:
            return int(self._table.count_rows())
        return int(self._table.count_rows(f"document_id = {_quote(document_id)}"))

    def iter_chunks(self, batch_size: int = 500) -> Iterator[list[Chunk]]:
        query = self._table.search().select([*_COLUMNS, "vector"]).limit(None)
        for batch in query.to_batches(batch_size):
            yield [_chunk(row, with_vector=True) for row in batch.to_pylist()]

    def health(self) -> StoreHealth:
        try:
            return StoreHealth(
                ok=True, backend=self.name, detail=str(self._path), chunks=self.count()
            )
        except Exception as exc:  # noqa: BLE001 - health reports any failure rather than raising
            return StoreHealth(ok=False, backend=self.name, detail=f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        """LanceDB holds no server connection; nothing to release."""


def _chunk(row: dict[str, Any], *, with_vector: bool = False) -> Chunk:
    return Chunk(
        id=row["id"],
        document_id=row["document_id"],
        text=row["text"],
        title=row["title"] or "",
        position=int(row["position"]),
        content_hash=row["content_hash"] or "",
        page=row["page"],
        heading=row["heading"],
        tags=tuple(row["tags"] or ()),
        vector=tuple(row["vector"]) if with_vector else None,
    )
