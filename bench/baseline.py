"""Loupe against what most LangChain users would write, on the same data and the same model.

The baseline is the textbook hybrid retriever: `EnsembleRetriever` (langchain-classic) over
`BM25Retriever` (rank-bm25) and a FAISS vector store (langchain-community), weights 0.5/0.5,
on Loupe's own MiniLM embeddings object. Both systems get the same chunks (Loupe's loader and
chunker) and the same vectors, so the comparison is about indexing, search and fusion only.

Steps, each its own process so memory figures belong to one system:
- `prepare`: chunk ArguAna and embed chunks and queries once (the embedding time is shared:
  the same model on the same texts costs the same in both systems), cached in the work dir.
- `arguana loupe|langchain`: build the index from the prepared chunks, score nDCG@10 on every
  judged query, time retrieval on a sample of queries (query embedding included), report RSS.
- `synthetic loupe|langchain`: the 100k-chunk synthetic corpus of the query benchmark; time
  retrieval of XQuAD questions and report RSS.

nDCG@10 is over documents: each system returns its 20 best chunks, the chunks' documents are
deduplicated in order and the query's own document is dropped (BEIR's `ignore_identical_ids`).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever

from bench.common import (
    DIM,
    WORK_DIR,
    ArguAna,
    PrecomputedEmbeddings,
    SyntheticCorpus,
    arguana_file_text,
    latency_ms,
    load_arguana,
    load_embeddings,
    load_result,
    load_xquad,
    log,
    machine,
    mean_ndcg,
    peak_rss_mb,
    rss_mb,
    sample,
    save_result,
    scale,
    seed_vectors,
    timed_calls,
)
from bench.query import exact_store, store_dir
from core.answer.retrieval import StoreRetriever
from core.config import Settings
from core.embeddings import model_name
from core.evaluation.metrics import distinct_documents, ndcg_at_k
from core.ingest.chunking import chunk_plan, chunk_sections
from core.ingest.loaders import load_bytes
from core.stores.base import Chunk, chunk_id
from core.stores.lancedb import LanceDBStore

RETRIEVE_K = 20  # chunks per query, deduplicated to 10 documents for nDCG@10
LATENCY_QUERIES = 60  # ArguAna queries timed per system (query embedding included)
PREPARED = WORK_DIR / "arguana-prepared"


# --- shared preparation ------------------------------------------------------------------------


def prepare() -> dict[str, Any]:
    """Chunk ArguAna as Loupe's pipeline would and embed chunks and queries, once."""
    s = scale()
    settings = Settings()
    data = load_arguana(s.arguana_corpus_docs, s.arguana_queries)
    embeddings = load_embeddings()
    plan = chunk_plan(settings, embeddings)
    start = time.perf_counter()
    texts: list[str] = []
    doc_ids: list[str] = []
    for doc_id, (title, text) in data.corpus.items():
        loaded = load_bytes(f"{doc_id}.txt", arguana_file_text(title, text).encode())
        for draft in chunk_sections(loaded.sections, plan):
            texts.append(f"{draft.heading}\n{draft.text}" if draft.heading else draft.text)
            doc_ids.append(doc_id)
    chunk_s = time.perf_counter() - start
    log(f"prepare: {len(texts)} chunks of {len(data.corpus)} documents; embedding")
    start = time.perf_counter()
    vectors = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
    embed_s = time.perf_counter() - start
    query_ids = list(data.queries)
    query_vectors = np.asarray(
        embeddings.embed_documents([data.queries[q] for q in query_ids]), dtype=np.float32
    )
    PREPARED.mkdir(parents=True, exist_ok=True)
    np.save(PREPARED / "vectors.npy", vectors)
    np.save(PREPARED / "query_vectors.npy", query_vectors)
    info = {
        "documents": len(data.corpus),
        "chunks": len(texts),
        "queries": len(query_ids),
        "chunk_s": chunk_s,
        "embed_s": embed_s,
        "embedding_model": model_name(embeddings),
    }
    (PREPARED / "chunks.json").write_text(
        json.dumps({"texts": texts, "doc_ids": doc_ids, "query_ids": query_ids, "info": info})
    )
    return info


def load_prepared() -> tuple[ArguAna, list[str], list[str], np.ndarray, dict[str, list[float]]]:
    s = scale()
    data = load_arguana(s.arguana_corpus_docs, s.arguana_queries)
    prepared = json.loads((PREPARED / "chunks.json").read_text())
    vectors = np.load(PREPARED / "vectors.npy")
    query_vectors = np.load(PREPARED / "query_vectors.npy")
    known = {
        data.queries[q]: v.tolist()
        for q, v in zip(prepared["query_ids"], query_vectors, strict=True)
    }
    return data, prepared["texts"], prepared["doc_ids"], vectors, known


# --- the two systems ---------------------------------------------------------------------------


def build_loupe(texts: Sequence[str], doc_ids: Sequence[str], vectors: np.ndarray) -> LanceDBStore:
    """Loupe's store, filled through `upsert` as ingestion fills it."""
    folder = WORK_DIR / "baseline-loupe"
    shutil.rmtree(folder, ignore_errors=True)
    store = LanceDBStore(folder, dimension=DIM)
    chunks = []
    position: dict[str, int] = {}
    for text, doc, vector in zip(texts, doc_ids, vectors.tolist(), strict=True):
        n = position[doc] = position.get(doc, -1) + 1
        chunks.append(
            Chunk(
                id=chunk_id(doc, "arguana", n),
                document_id=doc,
                text=text,
                title=f"{doc}.txt",
                position=n,
                content_hash="arguana",
                vector=tuple(vector),
            )
        )
    store.upsert(chunks)
    return store


class Baseline:
    """The LangChain hybrid a typical user builds; the parts are kept to score each alone."""

    def __init__(
        self,
        texts: Sequence[str],
        doc_ids: Sequence[str],
        vectors: np.ndarray,
        embeddings: Embeddings,
        k: int,
    ) -> None:
        from langchain_classic.retrievers import EnsembleRetriever
        from langchain_community.retrievers import BM25Retriever
        from langchain_community.vectorstores import FAISS

        metadatas = [{"doc_id": d} for d in doc_ids]
        start = time.perf_counter()
        self.bm25 = BM25Retriever.from_texts(list(texts), metadatas=metadatas, k=k)
        self.bm25_s = time.perf_counter() - start
        start = time.perf_counter()
        store = FAISS.from_embeddings(
            list(zip(texts, vectors.tolist(), strict=True)), embeddings, metadatas=metadatas
        )
        self.faiss_s = time.perf_counter() - start
        self.vector: BaseRetriever = store.as_retriever(search_kwargs={"k": k})
        self.ensemble = EnsembleRetriever(retrievers=[self.bm25, self.vector], weights=[0.5, 0.5])


def doc_ids_of(docs: Sequence[Document]) -> list[str]:
    return [d.metadata["doc_id"] for d in docs]


# --- ArguAna -----------------------------------------------------------------------------------


def arguana(system: str) -> dict[str, Any]:
    data, texts, doc_ids, vectors, known = load_prepared()
    embeddings = load_embeddings()
    embeddings.embed_query("warm up")
    rss_before = rss_mb()
    cached = PrecomputedEmbeddings(embeddings, known)
    queries = list(data.queries.items())
    rankings: dict[str, dict[str, list[str]]] = {}
    result: dict[str, Any] = {"system": system, "chunks": len(texts), "queries": len(queries)}

    log(f"arguana {system}: index")
    start = time.perf_counter()
    if system == "loupe":
        store = build_loupe(texts, doc_ids, vectors)
        result["index_s"] = time.perf_counter() - start
        result["rss_index_mb"] = rss_mb() - rss_before
        log(f"arguana {system}: scoring {len(queries)} queries")
        alpha = Settings().hybrid_alpha
        for name, a in (("hybrid", alpha), ("vector", 1.0), ("keyword", 0.0)):
            retriever = StoreRetriever(store=store, embeddings=cached, k=RETRIEVE_K, alpha=a)
            rankings[name] = {
                qid: distinct_documents(
                    (d.metadata["document_id"] for d in retriever.invoke(text)), skip=qid
                )
                for qid, text in queries
            }
        timed: BaseRetriever = StoreRetriever(
            store=store, embeddings=embeddings, k=RETRIEVE_K, alpha=alpha
        )
    else:
        baseline = Baseline(texts, doc_ids, vectors, cached, RETRIEVE_K)
        result["index_s"] = time.perf_counter() - start
        result["bm25_index_s"], result["faiss_index_s"] = baseline.bm25_s, baseline.faiss_s
        result["rss_index_mb"] = rss_mb() - rss_before
        rankings = {"hybrid": {}, "vector": {}, "keyword": {}}
        bm25_s = []
        # rank-bm25 scores every chunk in Python for each term of these long queries (~1 s
        # each at 14k chunks): a seeded sample keeps the run in budget. Loupe scores every
        # query; the report compares both on this same sample.
        scored = sample(queries, scale().baseline_quality_queries, salt=10)
        log(f"arguana {system}: scoring {len(scored)} of {len(queries)} queries")
        result["queries"] = len(scored)
        for i, (qid, text) in enumerate(scored):
            mark = time.perf_counter()
            keyword_docs = baseline.bm25.invoke(text)
            bm25_s.append(time.perf_counter() - mark)
            vector_docs = baseline.vector.invoke(text)
            # What EnsembleRetriever.invoke does, from the two lists already fetched.
            fused = baseline.ensemble.weighted_reciprocal_rank([keyword_docs, vector_docs])
            if i < 5:  # check that this is the ensemble's own answer
                assert doc_ids_of(fused) == doc_ids_of(baseline.ensemble.invoke(text))
            for name, docs in (
                ("hybrid", fused),
                ("vector", vector_docs),
                ("keyword", keyword_docs),
            ):
                rankings[name][qid] = distinct_documents(doc_ids_of(docs), skip=qid)
        result["bm25_query"] = latency_ms(bm25_s)
        fresh = Baseline(texts, doc_ids, vectors, embeddings, RETRIEVE_K)  # uncached embeddings
        timed = fresh.ensemble
    result["ndcg_at_10"] = {name: mean_ndcg(r, data.qrels) for name, r in rankings.items()}
    result["per_query_ndcg"] = {
        name: {q: float(x) for q, x in zip(r, _per_query(r, data), strict=True)}
        for name, r in rankings.items()
    }
    log(f"arguana {system}: latency")
    picked = [text for _, text in sample(queries, LATENCY_QUERIES, salt=4)]
    result["latency"] = latency_ms(timed_calls(timed.invoke, picked, warmup=5))
    result["rss_mb"] = rss_mb()
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def _per_query(rankings: dict[str, list[str]], data: ArguAna) -> list[float]:
    return [ndcg_at_k(rankings[q], data.qrels[q], 10) for q in rankings]


# --- synthetic 100k ----------------------------------------------------------------------------


def synthetic(system: str) -> dict[str, Any]:
    s = scale()
    size = s.baseline_size
    embeddings = load_embeddings()
    embeddings.embed_query("warm up")
    rss_before = rss_mb()
    # Two disjoint question sets: Loupe caches query vectors, and the second Loupe run must
    # embed its questions as the first did.
    n = s.baseline_latency_queries + 10
    picked = [q for q, _ in sample(load_xquad().questions, 2 * n, salt=5)]
    questions, more_questions = picked[0::2], picked[1::2]
    result: dict[str, Any] = {"system": system, "size": size}
    settings = Settings()
    k, alpha = settings.retrieval_k, settings.hybrid_alpha
    if system == "loupe":
        store = LanceDBStore(store_dir(size), dimension=DIM)
        result["rss_index_mb"] = rss_mb() - rss_before
        retriever = StoreRetriever(store=store, embeddings=embeddings, k=k, alpha=alpha)
        log(f"synthetic {system}: latency")
        result["latency"] = latency_ms(timed_calls(retriever.invoke, questions))
        exact = StoreRetriever(store=exact_store(store), embeddings=embeddings, k=k, alpha=alpha)
        log(f"synthetic {system}: latency without the vector index (exact search)")
        result["latency_exact"] = latency_ms(timed_calls(exact.invoke, more_questions))
        build = load_result(f"query-{size}")
        result["index_s"] = (build or {}).get("build", {}).get("index_s")
    else:
        texts, vectors = SyntheticCorpus(seed_vectors()).chunks(0, size)
        doc_ids = [f"synthetic-{i // 100:05d}" for i in range(size)]
        log(f"synthetic {system}: building BM25 and FAISS over {size} chunks")
        start = time.perf_counter()
        baseline = Baseline(texts, doc_ids, vectors, embeddings, k)
        result["index_s"] = time.perf_counter() - start
        result["bm25_index_s"], result["faiss_index_s"] = baseline.bm25_s, baseline.faiss_s
        del texts, vectors
        result["rss_index_mb"] = rss_mb() - rss_before
        log(f"synthetic {system}: latency")
        result["latency"] = latency_ms(timed_calls(baseline.ensemble.invoke, questions))
    result["rss_mb"] = rss_mb()
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def main(argv: list[str]) -> None:
    if argv[0] == "prepare":
        info = prepare()
        save_result("baseline-prepare", {**info, "machine": machine()})
        return
    kind, system = argv[0], argv[1]
    result = arguana(system) if kind == "arguana" else synthetic(system)
    result["machine"] = machine()
    save_result(f"baseline-{kind}-{system}", result)
    log(f"{kind} {system}: done")


if __name__ == "__main__":
    main(sys.argv[1:])
