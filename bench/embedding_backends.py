"""The embedding floor: the bundled MiniLM on torch against the same model on onnxruntime.

The ONNX runtime is Loupe's own (`core.embeddings.onnx_minilm`: the bundled weights exported
with torch's exporter, int8 by onnxruntime's dynamic quantization), exported here into a fresh
folder so the export and quantization are timed.

Measured for each backend: texts per second on ArguAna passages at batch 32/64/128 with 1 and 2
threads (2 is onnxruntime's default here: one per core), single-question latency (the query
path), and ArguAna nDCG@10 with vector-only retrieval (exact cosine search over the same chunks)
for torch, the reference, and int8. The default runtime's corpus vectors come from
`baseline prepare`; the other one's are embedded here.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from bench.baseline import PREPARED, RETRIEVE_K
from bench.common import (
    WORK_DIR,
    latency_ms,
    load_arguana,
    load_xquad,
    log,
    machine,
    sample,
    save_result,
    scale,
    timed_calls,
)
from core.config import Settings
from core.embeddings import get_embeddings
from core.embeddings.onnx_minilm import OnnxMiniLMEmbeddings, Precision, onnx_model_file
from core.evaluation.metrics import distinct_documents, ndcg_at_k

BACKENDS = ("torch", "onnx-fp32", "onnx-int8")
BATCHES = (32, 64, 128)
THREADS = (1, 2)


def model_dir() -> Path:
    from core.embeddings import bundled_minilm_path

    return Path(bundled_minilm_path())


def torch_backend(threads: int, batch_size: int) -> Embeddings:
    """Loupe's torch model object with the thread count and batch size set; unwrapped from
    Loupe's query-vector cache, so repeated questions time the model, not the cache."""
    import torch

    torch.set_num_threads(threads)
    embeddings = get_embeddings(Settings(embedding_runtime="torch"))
    model: Embeddings = getattr(embeddings, "inner", embeddings)
    model.batch_size = batch_size  # type: ignore[attr-defined]
    return model


def throughput(embeddings: Embeddings, texts: Sequence[str]) -> float:
    embeddings.embed_documents(list(texts[:16]))  # warm up
    start = time.perf_counter()
    embeddings.embed_documents(list(texts))
    return len(texts) / (time.perf_counter() - start)


def vector_ndcg(
    chunk_vectors: np.ndarray,
    doc_ids: Sequence[str],
    query_vectors: np.ndarray,
    query_ids: Sequence[str],
    qrels: dict[str, dict[str, int]],
) -> dict[str, float]:
    """ArguAna nDCG@10 per query, vector only: exact cosine search over the given chunks."""
    per_query = {}
    for start in range(0, len(query_vectors), 256):
        scores = query_vectors[start : start + 256] @ chunk_vectors.T
        top = np.argsort(-scores, axis=1)[:, :RETRIEVE_K]
        for offset, row in enumerate(top):
            qid = query_ids[start + offset]
            ranking = distinct_documents((doc_ids[i] for i in row), skip=qid)
            per_query[qid] = ndcg_at_k(ranking, qrels[qid], 10)
    return per_query


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    s = scale()
    prepared = json.loads((PREPARED / "chunks.json").read_text())
    text_index = sample(range(len(prepared["texts"])), s.backend_texts, salt=6)
    texts = [prepared["texts"][i] for i in text_index]
    questions = [q for q, _ in sample(load_xquad().questions, 60, salt=8)]
    data = load_arguana(s.arguana_corpus_docs, s.arguana_queries)

    log("backends: exporting ONNX")
    folder = WORK_DIR / "onnx"  # a fresh cache: the export is timed, not reused
    start = time.perf_counter()
    fp32 = onnx_model_file(model_dir(), folder, "fp32")
    export_s = time.perf_counter() - start
    start = time.perf_counter()
    int8 = onnx_model_file(model_dir(), folder, "int8")
    quantize_s = time.perf_counter() - start

    def make(backend: str, threads: int, batch: int) -> Embeddings:
        if backend == "torch":
            return torch_backend(threads, batch)
        precision: Precision = "fp32" if backend == "onnx-fp32" else "int8"
        return OnnxMiniLMEmbeddings(
            model_dir(), folder, precision=precision, batch_size=batch, threads=threads
        )

    grid = []
    for backend in BACKENDS:
        for threads in THREADS:
            for batch in BATCHES:
                log(f"backends: {backend}, {threads} threads, batch {batch}")
                rate = throughput(make(backend, threads, batch), texts)
                grid.append(
                    {"backend": backend, "threads": threads, "batch": batch, "texts_per_s": rate}
                )
            one = make(backend, threads, 64)
            grid.append(
                {
                    "backend": backend,
                    "threads": threads,
                    "batch": 1,
                    "query_latency": latency_ms(timed_calls(one.embed_query, questions, 5)),
                }
            )

    # torch (the reference) against int8 on an ArguAna subset: the default runtime's vectors
    # come from `baseline prepare`, the other runtime embeds the subset here, at 2 threads.
    default = Settings().embedding_runtime
    subset = load_arguana(*s.backend_quality) if s.backend_quality else data
    chunks = [i for i, d in enumerate(prepared["doc_ids"]) if d in subset.corpus]
    doc_ids = [prepared["doc_ids"][i] for i in chunks]
    query_ids = [q for q in prepared["query_ids"] if q in subset.queries]
    query_rows = [prepared["query_ids"].index(q) for q in query_ids]
    vectors_by_backend = {
        default: (
            np.load(PREPARED / "vectors.npy")[chunks],
            np.load(PREPARED / "query_vectors.npy")[query_rows],
        )
    }
    seconds_by_backend: dict[str, float] = {}
    for backend in ("torch", "onnx-int8"):
        if backend not in vectors_by_backend:
            log(f"backends: ArguAna subset ({len(chunks)} chunks) with {backend}")
            embeddings = make(backend, 2, 64)
            start = time.perf_counter()
            vectors = embeddings.embed_documents([prepared["texts"][i] for i in chunks])
            seconds_by_backend[backend] = time.perf_counter() - start
            queries = embeddings.embed_documents([subset.queries[q] for q in query_ids])
            vectors_by_backend[backend] = (
                np.asarray(vectors, dtype=np.float32),
                np.asarray(queries, dtype=np.float32),
            )
    torch_vectors = vectors_by_backend["torch"][0]
    quality: dict[str, dict[str, Any]] = {}
    for backend in ("torch", "onnx-int8"):
        vectors, queries = vectors_by_backend[backend]
        agreement = (vectors * torch_vectors).sum(axis=1)
        per_query = vector_ndcg(vectors, doc_ids, queries, query_ids, subset.qrels)
        quality[backend] = {
            "ndcg_at_10": float(np.mean(list(per_query.values()))),
            "per_query_ndcg": per_query,
            "cosine_to_torch_min": float(agreement.min()),
            "cosine_to_torch_mean": float(agreement.mean()),
        }
        if backend in seconds_by_backend:
            quality[backend]["subset_embed_s"] = seconds_by_backend[backend]
    # fp32 computes what torch computes: check that on the sampled passages instead of spending
    # minutes re-embedding the corpus for an nDCG that can only come out the same.
    log("backends: onnx-fp32 agreement with torch")
    fp32_vectors = np.asarray(make("onnx-fp32", 2, 64).embed_documents(texts), dtype=np.float32)
    reference = np.asarray(make("torch", 2, 64).embed_documents(texts), dtype=np.float32)
    agreement = (fp32_vectors * reference).sum(axis=1)
    quality["onnx-fp32"] = {
        "cosine_to_torch_min": float(agreement.min()),
        "cosine_to_torch_mean": float(agreement.mean()),
        "checked_on": len(texts),
    }
    save_result(
        "embedding-backends",
        {
            "machine": machine(),
            "texts": len(texts),
            "mean_chars": float(np.mean([len(t) for t in texts])),
            "export_s": export_s,
            "quantize_s": quantize_s,
            "model_mb": {
                "onnx-fp32": fp32.stat().st_size / 2**20,
                "onnx-int8": int8.stat().st_size / 2**20,
            },
            "grid": grid,
            "quality": quality,
            "quality_set": {
                "documents": len(subset.corpus),
                "chunks": len(chunks),
                "queries": len(query_ids),
            },
            "default": default,
        },
    )
    log("backends: done")


if __name__ == "__main__":
    sys.exit(main())
