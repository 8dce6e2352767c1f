"""The embedded default store: LanceDB on local disk, no server to run.

Hybrid search runs LanceDB's native BM25 full-text search and an exact/ANN cosine vector search
with the same prefilter, then fuses them with `fuse` so scores mean the same as on Weaviate.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import lancedb
import pyarrow as pa
from lancedb.index import FTS, IvfHnswSq
from lancedb.query import LanceVectorQueryBuilder

from core.stores.base import Chunk, Hit, SearchFilter, StoreHealth, fuse
from core.stores.keywords import keyword_text

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
        (
            self._table.merge_insert("id")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(rows)
        )
        self.refresh_indexes()

    def refresh_indexes(self) -> None:
        """Bring both indexes up to date with the table. Rows added since an index was built
        are still searched (exactly, and more slowly), so this only has to run often enough to
        keep queries fast: `optimize()` folds new rows into existing indexes once they are a
        fifth of the table, and the vector index is rebuilt with more partitions whenever the
        table has grown fourfold since it was trained."""
        fts = self._table.index_stats(f"{_FTS_COLUMN}_idx")
        if fts is None:
            self._table.create_index(_FTS_COLUMN, config=FTS(ascii_folding=True), replace=True)
        rows = int(self._table.count_rows())
        vectors = self._table.index_stats(VECTOR_INDEX)
        if rows >= VECTOR_INDEX_MIN_ROWS and (
            vectors is None or rows > 4 * vectors.num_indexed_rows
        ):
            self._table.create_index(
                "vector", config=vector_index_config(rows), name=VECTOR_INDEX, replace=True
            )
            vectors = None
        if any(
            stats is not None
            and stats.num_unindexed_rows > _REINDEX_SHARE * max(stats.num_indexed_rows, 1)
            for stats in (fts, vectors)
        ):
            self._table.optimize()

    def delete_document(self, document_id: str, *, keep_content_hash: str | None = None) -> int:
        where = f"document_id = {_quote(document_id)}"
        if keep_content_hash is not None:
            where += f" AND content_hash != {_quote(keep_content_hash)}"
        doomed = int(self._table.count_rows(where))
        self._table.delete(where)
        return doomed

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
