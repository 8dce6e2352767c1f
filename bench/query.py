"""Query latency and memory at 10k, 100k and 1M chunks.

Stores of these sizes are built from synthetic chunks (`common.SyntheticCorpus`: prose drawn from
the real corpora's vocabulary, vectors copied from real MiniLM vectors with noise), written to
LanceDB in bulk (arrow batches, not `upsert`: the ingest benchmark measures the write path), then
indexed by `LanceDBStore.refresh_indexes`, as an upsert would: the full-text index, and an
IVF_HNSW_SQ vector index once the table reaches `VECTOR_INDEX_MIN_ROWS`.

Two processes per size: `build` writes the store; `run` opens it in a fresh process (so its
memory is that of serving, not of building), loads the model and measures
- retrieval latency: `store.search` with a precomputed query vector (hybrid, keyword only,
  vector only, and exact vector search without the index),
- end to end without an LLM: `RagChain` with the extractive answerer (embed the question,
  retrieve, extract the answer sentences, compute confidence),
- recall@50 of the vector index against exact search,
- resident memory after loading the model, and after the queries.

Usage: python -m bench.query build SIZE | run SIZE
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
from lancedb.query import LanceVectorQueryBuilder

from bench.common import (
    DIM,
    WORK_DIR,
    SyntheticCorpus,
    latency_ms,
    load_embeddings,
    load_xquad,
    log,
    machine,
    peak_rss_mb,
    rss_mb,
    sample,
    save_result,
    scale,
    seed_vectors,
    timed_calls,
)
from core.config import Settings
from core.stores.base import chunk_id
from core.stores.keywords import keyword_text
from core.stores.lancedb import VECTOR_INDEX, LanceDBStore
from core.wiring import make_chain

# --- building ----------------------------------------------------------------------------------

_BATCH = 100_000


def store_dir(size: int) -> Path:
    return WORK_DIR / f"query-{size}"


def arrow_batch(schema: pa.Schema, start: int, texts: list[str], vectors: np.ndarray) -> pa.Table:
    """Rows exactly as `LanceDBStore.upsert` would write them: 100 chunks a document."""
    index = range(start, start + len(texts))
    titles = [f"synthetic-{i // 100:05d}.md" for i in index]
    return pa.table(
        {
            "id": [chunk_id(t, "synthetic", i % 100) for t, i in zip(titles, index, strict=True)],
            "document_id": titles,
            "text": texts,
            "fts": [keyword_text(f"{t}\n\n{x}") for t, x in zip(titles, texts, strict=True)],
            "title": titles,
            "page": pa.nulls(len(texts), pa.int32()),
            "heading": pa.nulls(len(texts), pa.string()),
            "position": pa.array([i % 100 for i in index], pa.int32()),
            "content_hash": ["synthetic"] * len(texts),
            "tags": pa.array([[] for _ in texts], pa.list_(pa.string())),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIM),
        },
        schema=schema,
    )


def build(size: int) -> dict[str, Any]:
    folder = store_dir(size)
    shutil.rmtree(folder, ignore_errors=True)
    store = LanceDBStore(folder, dimension=DIM)
    corpus = SyntheticCorpus(seed_vectors())
    timings = {"generate_s": 0.0, "add_s": 0.0}
    for start in range(0, size, _BATCH):
        mark = time.perf_counter()
        texts, vectors = corpus.chunks(start, min(size, start + _BATCH))
        table = arrow_batch(store._table.schema, start, texts, vectors)
        timings["generate_s"] += time.perf_counter() - mark
        mark = time.perf_counter()
        store._table.add(table)
        timings["add_s"] += time.perf_counter() - mark
    mark = time.perf_counter()
    store.refresh_indexes()
    timings["index_s"] = time.perf_counter() - mark
    stats = store._table.index_stats(VECTOR_INDEX)
    info = {
        "size": size,
        "rows": store.count(),
        "vector_index": stats.index_type if stats else "none (exact search)",
        "disk_mb": sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20,
        **timings,
    }
    (folder / "build.json").write_text(json.dumps(info, indent=2))
    return info


# --- running -----------------------------------------------------------------------------------


class _ExactTable:
    """A table whose vector searches bypass the vector index."""

    def __init__(self, table: Any) -> None:
        self._inner = table

    def search(self, *args: Any, **kwargs: Any) -> Any:
        builder = self._inner.search(*args, **kwargs)
        return builder.bypass_vector_index() if kwargs.get("query_type") == "vector" else builder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def exact_store(store: LanceDBStore) -> LanceDBStore:
    """A second handle on the same table that searches vectors exactly, as `LanceDBStore`
    does below `VECTOR_INDEX_MIN_ROWS`: what the index saves, on the same data."""
    view = copy.copy(store)
    view._table = cast(Any, _ExactTable(store._table))
    return view


def vector_ids(
    store: LanceDBStore, vector: Sequence[float], limit: int, *, exact: bool = False
) -> list[str]:
    """The store's vector query, through the index or (`exact`) bypassing it."""
    builder = cast(
        LanceVectorQueryBuilder,
        store._table.search(list(vector), query_type="vector", vector_column_name="vector"),
    ).distance_type("cosine")
    if exact:
        builder = builder.bypass_vector_index()
    return [row["id"] for row in builder.select(["id", "_distance"]).limit(limit).to_list()]


def run(size: int) -> dict[str, Any]:
    s = scale()
    settings = Settings()
    embeddings = load_embeddings()
    embeddings.embed_query("warm up")
    rss_model = rss_mb()
    store = LanceDBStore(store_dir(size), dimension=DIM)
    build_info = json.loads((store_dir(size) / "build.json").read_text())
    has_index = store._table.index_stats(VECTOR_INDEX) is not None

    questions = [q for q, _ in sample(load_xquad().questions, s.latency_queries + 10, salt=3)]
    vectors = embeddings.embed_documents(questions)
    k, alpha = settings.retrieval_k, settings.hybrid_alpha
    result: dict[str, Any] = {"size": size, "build": build_info, "k": k, "alpha": alpha}
    modes = {"hybrid": alpha, "keyword": 0.0, "vector": 1.0}
    items = list(range(len(questions)))
    for mode, a in modes.items():
        log(f"query {size}: {mode}")
        samples = timed_calls(
            lambda i, a=a: store.search(questions[i], vectors[i], k=k, alpha=a, filters=None),
            items,
        )
        result[mode] = latency_ms(samples)

    if has_index:
        # The same hybrid search without the vector index (exact vector search): slow at 1M.
        exact, n = exact_store(store), (10 if size >= 1_000_000 else 40)
        log(f"query {size}: hybrid without the vector index x{n}")
        result["hybrid_exact"] = latency_ms(
            timed_calls(
                lambda i: exact.search(questions[i], vectors[i], k=k, alpha=alpha), items[:n], 2
            )
        )
    # Exact search is slow at 1M (a second or more each): a few queries show it.
    exact_n = 10 if size >= 1_000_000 else 40
    log(f"query {size}: exact vector search x{exact_n}")
    result["vector_exact"] = latency_ms(
        timed_calls(lambda i: vector_ids(store, vectors[i], 50, exact=True), items[:exact_n], 2)
    )
    if has_index:
        probes = SyntheticCorpus(seed_vectors()).query_vectors(50)
        recall = [
            len(set(vector_ids(store, v, 50)) & set(vector_ids(store, v, 50, exact=True))) / 50
            for v in probes.tolist()
        ]
        result["recall_at_50"] = float(np.mean(recall))

    log(f"query {size}: end to end x{s.e2e_queries}")
    chain = make_chain(settings, store, embeddings, chat_model=None)
    generators: dict[str, int] = {}
    stage_times: dict[str, list[float]] = {"retrieve": [], "generate": []}

    def ask(question: str) -> None:
        for event in chain.stream(question):
            if event.result is not None:
                generators[event.result.generator] = generators.get(event.result.generator, 0) + 1
                for stage in stage_times:
                    stage_times[stage].append(event.result.timings.get(stage, 0.0))

    e2e_questions = questions[: s.e2e_queries + 3]
    samples = timed_calls(ask, e2e_questions, warmup=3)  # distinct questions: no cache hits
    result["e2e"] = latency_ms(samples)
    result["e2e_stages_p50_ms"] = {
        stage: float(np.median(v[3:]) * 1000) for stage, v in stage_times.items()
    }
    result["e2e_generators"] = generators
    result["rss_model_mb"] = rss_model
    result["rss_mb"] = rss_mb()
    result["peak_rss_mb"] = peak_rss_mb()
    result["vector_index"] = has_index
    return result


def main(argv: list[str]) -> None:
    command, size = argv[0], int(argv[1])
    if command == "build":
        log(f"query {size}: build")
        info = build(size)
        log(f"query {size}: built {info}")
    else:
        result = run(size)
        result["machine"] = machine()
        save_result(f"query-{size}", result)
        log(f"query {size}: hybrid p50 {result['hybrid']['p50']:.1f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])
