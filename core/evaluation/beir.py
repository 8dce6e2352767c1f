"""The BEIR retrieval runner: index a corpus in a temporary data directory and score each
retrieval mode (keyword, vector, hybrid, an alpha sweep) by nDCG, recall and MRR."""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import Settings
from core.evaluation.datasets import (
    BeirDataset,
    BeirDoc,
    limit_beir,
    load_beir,
)
from core.evaluation.metrics import (
    distinct_documents,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
)
from core.evaluation.records import (
    Progress,
    Record,
    mean,
    report_progress,
    round_or_none,
    run_config,
    save_record,
)

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from core.stores.lancedb import LanceDBStore

BEIR_TOP_K = 100
ALPHA_SWEEP = (0.3, 0.5, 0.7)
_UPSERT_SLAB = 10_000
RankingMetric = Callable[[Sequence[str], Mapping[str, float], int], float]
_RANKING_METRICS: tuple[tuple[str, RankingMetric, int], ...] = (
    ("ndcg@10", ndcg_at_k, 10),
    ("recall@10", recall_at_k, 10),
    ("recall@100", recall_at_k, 100),
    ("mrr@10", mrr_at_k, 10),
)


def run_beir(
    folder: Path,
    settings: Settings,
    *,
    limit_queries: int | None = None,
    limit_corpus: int | None = None,
    alpha: float | None = None,
    progress: Progress | None = None,
) -> Record:
    """Retrieval quality on a BEIR data set: keyword only, vector only and hybrid (the
    configured alpha and a small sweep), top 100, on a fresh store of one chunk per document."""
    from core.embeddings import dimension, get_embeddings, model_name
    from core.stores.lancedb import LanceDBStore

    started = time.perf_counter()
    dataset = limit_beir(load_beir(folder), queries=limit_queries, corpus=limit_corpus)
    if not dataset.queries:
        raise ValueError(f"No judged queries in {folder}.")
    alpha = settings.hybrid_alpha if alpha is None else alpha
    embeddings = get_embeddings(settings)
    alphas = sorted({0.0, 1.0, alpha, *ALPHA_SWEEP})
    with tempfile.TemporaryDirectory(prefix="loupe-beir-") as tmp:
        store = LanceDBStore(Path(tmp), dimension=dimension(embeddings), table="beir")
        index_seconds = index_corpus(
            store, embeddings, dataset.corpus, settings.embed_batch_size, progress
        )
        by_alpha, embed_seconds = _search_queries(store, embeddings, dataset, alphas, progress)
        store.close()
    best = max(ALPHA_SWEEP, key=lambda a: by_alpha[a]["ndcg@10"] or 0.0)
    metrics = {
        "modes": {
            "keyword": by_alpha[0.0],
            "vector": by_alpha[1.0],
            "hybrid": by_alpha[alpha],
            "hybrid_best": by_alpha[best],
        },
        "sweep": {f"{a:g}": by_alpha[a] for a in ALPHA_SWEEP},
        "index": {
            "seconds": round(index_seconds, 2),
            "docs_per_second": round(len(dataset.corpus) / index_seconds, 1),
            "query_embed_ms": round(1000 * embed_seconds / len(dataset.queries), 2),
        },
    }
    return save_record(
        "beir",
        settings,
        dataset={
            "path": str(folder),
            "name": folder.name,
            "documents": len(dataset.corpus),
            "queries": len(dataset.queries),
            "relevant_missing_from_corpus": dataset.missing_relevant,
            "limit_queries": limit_queries,
            "limit_corpus": limit_corpus,
        },
        config={
            **run_config(settings, model_name(embeddings), alpha),
            "vector_store": "lancedb",
            "top_k": BEIR_TOP_K,
            "alpha_sweep": list(ALPHA_SWEEP),
        },
        metrics=metrics,
        notes=[
            "A document whose id equals the query id is dropped from that query's ranking, "
            "as BEIR does (ArguAna's queries are themselves arguments in the corpus).",
            f"hybrid_best is the best alpha of {list(ALPHA_SWEEP)} by nDCG@10 on these same "
            "queries: an optimistic figure, not a tuned-on-dev one.",
            "qps includes embedding the query for every mode that uses vectors.",
        ],
        started=started,
    )


def index_corpus(
    store: LanceDBStore,
    embeddings: Embeddings,
    corpus: Mapping[str, BeirDoc],
    batch_size: int,
    progress: Progress | None,
) -> float:
    """One chunk per document (title and text), embedded in batches; no file loaders, since a
    BEIR document is already a passage. Returns the seconds it took."""
    from core.stores.base import Chunk, chunk_id

    started = time.perf_counter()
    ids = list(corpus)
    texts = [
        f"{corpus[d].title}\n{corpus[d].text}" if corpus[d].title else corpus[d].text for d in ids
    ]
    pending: list[Chunk] = []
    for start in range(0, len(ids), batch_size):
        batch = slice(start, start + batch_size)
        vectors = embeddings.embed_documents(texts[batch])
        for doc_id, text, vector in zip(ids[batch], texts[batch], vectors, strict=True):
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            pending.append(
                Chunk(
                    id=chunk_id(doc_id, digest, 0),
                    document_id=doc_id,
                    text=text,
                    title="",  # the title is already in the text; the store indexes both
                    position=0,
                    content_hash=digest,
                    vector=tuple(vector),
                )
            )
        if len(pending) >= _UPSERT_SLAB:
            store.upsert(pending)
            pending = []
        report_progress(progress, "embed corpus", min(start + batch_size, len(ids)), len(ids))
    store.upsert(pending)
    return time.perf_counter() - started


def _search_queries(
    store: LanceDBStore,
    embeddings: Embeddings,
    dataset: BeirDataset,
    alphas: Sequence[float],
    progress: Progress | None,
) -> tuple[dict[float, dict[str, Any]], float]:
    """Mean ranking metrics and queries per second for each alpha; each query is embedded once
    and that time is charged to every mode that uses vectors."""
    scores: dict[float, dict[str, list[float]]] = {
        a: {name: [] for name, _, _ in _RANKING_METRICS} for a in alphas
    }
    seconds = dict.fromkeys(alphas, 0.0)
    embed_seconds = 0.0
    for i, (query_id, text) in enumerate(dataset.queries.items(), start=1):
        mark = time.perf_counter()
        vector = embeddings.embed_query(text)
        embed_seconds += time.perf_counter() - mark
        relevance = {d: float(g) for d, g in dataset.qrels[query_id].items()}
        for alpha in alphas:
            mark = time.perf_counter()
            hits = store.search(text, vector if alpha > 0 else [], k=BEIR_TOP_K + 1, alpha=alpha)
            seconds[alpha] += time.perf_counter() - mark
            ranked = distinct_documents((h.chunk.document_id for h in hits), skip=query_id)
            ranked = ranked[:BEIR_TOP_K]
            for name, metric, k in _RANKING_METRICS:
                scores[alpha][name].append(metric(ranked, relevance, k))
        report_progress(progress, "search", i, len(dataset.queries))
    n = len(dataset.queries)
    summary: dict[float, dict[str, Any]] = {}
    for alpha in alphas:
        spent = seconds[alpha] + (embed_seconds if alpha > 0 else 0.0)
        summary[alpha] = {
            "alpha": alpha,
            **{name: round_or_none(mean(values)) for name, values in scores[alpha].items()},
            "qps": round(n / spent, 1) if spent > 0 else None,
        }
    return summary, embed_seconds
