"""The evaluation runners (BEIR retrieval, SQuAD answers, feedback replay) and their records.

Every run writes one JSON record under `<data_dir>/evals/` holding the configuration, the
metrics and the machine it ran on, so two runs can be compared later (`compare_records`) and a
figure can always be traced back to what produced it. Runs that need documents build them in a
temporary data directory, so an evaluation never touches the user's own index or SQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from core.citations import strip_markers
from core.config import Settings
from core.evaluation.datasets import (
    BeirDataset,
    BeirDoc,
    FeedbackItem,
    SquadDataset,
    feedback_items,
    limit_beir,
    load_beir,
    load_feedback,
    load_squad,
)
from core.evaluation.metrics import (
    auroc,
    contains_answer,
    distinct_documents,
    exact_match,
    expected_calibration_error,
    hit_at_k,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    token_f1,
)

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from core.chain import AnswerResult, Source
    from core.service import Loupe
    from core.stores.lancedb import LanceDBStore

Progress = Callable[[str, int, int], None]
Record = dict[str, Any]

BEIR_TOP_K = 100
ALPHA_SWEEP = (0.3, 0.5, 0.7)
# An answer is "right" for calibration when its token F1 reaches this.
RIGHT_F1 = 0.5
CALIBRATION_BINS = 10
_UPSERT_SLAB = 10_000
RankingMetric = Callable[[Sequence[str], Mapping[str, float], int], float]
_RANKING_METRICS: tuple[tuple[str, RankingMetric, int], ...] = (
    ("ndcg@10", ndcg_at_k, 10),
    ("recall@10", recall_at_k, 10),
    ("recall@100", recall_at_k, 100),
    ("mrr@10", mrr_at_k, 10),
)
_VERSIONED_PACKAGES = ("lancedb", "sentence-transformers", "langchain-core")
_REPO = Path(__file__).resolve().parents[2]


def _mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return sum(items) / len(items) if items else None


def _report(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


# BEIR ----------------------------------------------------------------------------------------


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
        index_seconds = _index_corpus(
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
    return _save(
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
            **_config(settings, model_name(embeddings), alpha),
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


def _index_corpus(
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
        _report(progress, "embed corpus", min(start + batch_size, len(ids)), len(ids))
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
        _report(progress, "search", i, len(dataset.queries))
    n = len(dataset.queries)
    summary: dict[float, dict[str, Any]] = {}
    for alpha in alphas:
        spent = seconds[alpha] + (embed_seconds if alpha > 0 else 0.0)
        summary[alpha] = {
            "alpha": alpha,
            **{name: _round(_mean(values)) for name, values in scores[alpha].items()},
            "qps": round(n / spent, 1) if spent > 0 else None,
        }
    return summary, embed_seconds


# Answers: SQuAD and feedback -----------------------------------------------------------------


@dataclass(frozen=True)
class ScoredAnswer:
    em: float
    f1: float
    contains: float
    confidence: float
    abstained: bool
    generator: str
    retrieved: bool  # a gold passage or document is among the sources
    cited: bool  # ... and among the cited ones
    reciprocal_rank: float
    hit_at_1: float


def _score_answer(
    result: AnswerResult, golds: Sequence[str], is_gold: Callable[[Source], bool]
) -> ScoredAnswer:
    answer = strip_markers(result.answer)
    ranked = ["gold" if is_gold(s) else s.chunk_id for s in result.sources]
    relevance = {"gold": 1.0}
    k = len(ranked)
    return ScoredAnswer(
        em=exact_match(answer, golds),
        f1=token_f1(answer, golds),
        contains=contains_answer(answer, golds),
        confidence=result.confidence.score,
        abstained=result.abstained,
        generator=result.generator,
        retrieved=bool(hit_at_k(ranked, relevance, k)),
        cited=any(s.cited and is_gold(s) for s in result.sources),
        reciprocal_rank=mrr_at_k(ranked, relevance, k),
        hit_at_1=hit_at_k(ranked, relevance, 1),
    )


def _answer_metrics(rows: Sequence[ScoredAnswer], k: int) -> dict[str, Any]:
    """Retrieval, answer and confidence figures shared by the SQuAD and feedback runs."""
    confidences = [r.confidence for r in rows]
    return {
        "retrieval": {
            "hit@1": _round(_mean(r.hit_at_1 for r in rows)),
            f"hit@{k}": _round(_mean(float(r.retrieved) for r in rows)),
            f"mrr@{k}": _round(_mean(r.reciprocal_rank for r in rows)),
        },
        "answers": {
            "exact_match": _round(_mean(r.em for r in rows)),
            "token_f1": _round(_mean(r.f1 for r in rows)),
            "contains_gold": _round(_mean(r.contains for r in rows)),
            "cites_gold": _round(_mean(float(r.cited) for r in rows)),
            "abstained": _round(_mean(float(r.abstained) for r in rows)),
            "generators": dict(Counter(r.generator for r in rows)),
        },
        "confidence": _calibration(
            confidences, [r.f1 >= RIGHT_F1 for r in rows], f"token F1 >= {RIGHT_F1}"
        ),
        # Whole-sentence answers (the extractive answerer) almost never reach F1 0.5, which
        # leaves the figures above with one class; this view still says whether confidence
        # tracks answers that hold the gold span.
        "confidence_contains": _calibration(
            confidences, [r.contains > 0 for r in rows], "the answer contains a gold answer"
        ),
    }


def _calibration(
    confidences: Sequence[float], right: Sequence[bool], meaning: str
) -> dict[str, Any]:
    return {
        "right_means": meaning,
        "right_share": _round(_mean(float(x) for x in right)),
        "mean_confidence": _round(_mean(confidences)),
        "auroc": _round(auroc(confidences, right)),
        "ece": _round(expected_calibration_error(confidences, right, CALIBRATION_BINS)),
    }


def _article_name(article: int) -> str:
    return f"article-{article:03d}.md"


def _paragraph_heading(paragraph: int) -> str:
    return f"Paragraph {paragraph + 1}"


def squad_markdown(dataset: SquadDataset) -> list[tuple[str, str]]:
    """(file name, Markdown) per article, a heading per paragraph, so every passage's heading
    names the paragraph it came from."""
    documents = []
    for a, article in enumerate(dataset.articles):
        parts = [f"# {article.title}"]
        parts += [
            f"## {_paragraph_heading(p)}\n\n{text}" for p, text in enumerate(article.paragraphs)
        ]
        documents.append((_article_name(a), "\n\n".join(parts)))
    return documents


def _from_paragraph(article: int, paragraph: int) -> Callable[[Source], bool]:
    """Whether a source passage comes from this paragraph: the loader's heading path ends
    with the paragraph's heading ("Title > Paragraph 3")."""
    name, heading = _article_name(article), _paragraph_heading(paragraph)
    return lambda s: s.document == name and (s.heading or "").split(" > ")[-1] == heading


def run_squad(
    path: Path,
    settings: Settings,
    *,
    limit_questions: int | None = None,
    alpha: float | None = None,
    progress: Progress | None = None,
) -> Record:
    """Answer quality through the real product: the articles are ingested into a temporary
    Loupe with the configured embeddings, alpha, k and LLM, and every question goes through
    `Loupe.ask`. The whole corpus is ingested even when the questions are limited, so a limited
    run faces the same distractors."""
    from core.embeddings import model_name
    from core.ingest.pipeline import IngestItem
    from core.service import Loupe

    started = time.perf_counter()
    dataset = load_squad(path)
    questions = dataset.questions[:limit_questions] if limit_questions else dataset.questions
    if not questions:
        raise ValueError(f"No questions in {path}.")
    documents = squad_markdown(dataset)
    with tempfile.TemporaryDirectory(prefix="loupe-squad-") as tmp:
        loupe = Loupe(_isolated(settings, Path(tmp), alpha))
        try:
            _report(progress, "ingest", 0, len(documents))
            results = loupe.ingest([IngestItem(name, text.encode()) for name, text in documents])
            failed = [r for r in results if r.outcome != "indexed"]
            if failed:
                raise RuntimeError(f"Could not index {failed[0].name}: {failed[0].error}")
            rows = []
            asking = time.perf_counter()
            for i, q in enumerate(questions, start=1):
                result = loupe.ask(q.question)
                rows.append(
                    _score_answer(result, q.answers, _from_paragraph(q.article, q.paragraph))
                )
                _report(progress, "ask", i, len(questions))
            ask_seconds = time.perf_counter() - asking
            config = _config(loupe.settings, model_name(loupe.embeddings), None)
        finally:
            loupe.close()
    metrics = _answer_metrics(rows, settings.retrieval_k)
    metrics["speed"] = {"seconds_per_question": round(ask_seconds / len(rows), 3)}
    return _save(
        "squad",
        settings,
        dataset={
            "path": str(path),
            "name": path.name,
            "articles": len(dataset.articles),
            "paragraphs": sum(len(a.paragraphs) for a in dataset.articles),
            "questions": len(questions),
            "limit_questions": limit_questions,
        },
        config={**config, "vector_store": "lancedb (temporary)"},
        metrics=metrics,
        notes=[
            f"An answer is right when its token F1 against a gold span is >= {RIGHT_F1}; AUROC "
            "and ECE measure how well confidence separates right from wrong answers "
            "(confidence_contains: right = the answer contains a gold span).",
            "EM and F1 are computed on the answer with its [n] markers removed; an extractive "
            "answer quotes whole sentences, so contains_gold is the fairer figure for it.",
            "A passage is gold when it comes from the question's paragraph.",
        ],
        started=started,
    )


def _from_documents(document_ids: Sequence[str]) -> Callable[[Source], bool]:
    wanted = set(document_ids)
    return lambda s: s.document_id in wanted


def _replay(loupe: Loupe, question: str) -> AnswerResult:
    """The chain `Loupe.ask` runs, without saving an Answer row: a regression run must not add
    to the answers experts review or to the usage figures."""
    for event in loupe.chain.stream(question):
        if event.result is not None:
            return event.result
    raise RuntimeError("the chain ended without a result")


def run_feedback(
    settings: Settings,
    path: Path | None = None,
    *,
    alpha: float | None = None,
    progress: Progress | None = None,
) -> Record:
    """Replays the expert-verified eval set against the current index and configuration: the
    expert's answer is the gold answer, the documents it cited are the gold documents."""
    from core.embeddings import model_name
    from core.service import Loupe

    started = time.perf_counter()
    current = settings if alpha is None else settings.model_copy(update={"hybrid_alpha": alpha})
    loupe = Loupe(current)
    try:
        items: list[FeedbackItem] = (
            load_feedback(path) if path else feedback_items(loupe.export("eval"))
        )
        if not items:
            raise ValueError(
                "The eval set is empty: no expert has approved or edited an answer yet."
            )
        rows = []
        for i, item in enumerate(items, start=1):
            result = _replay(loupe, item.question)
            rows.append(
                _score_answer(
                    result, [strip_markers(item.answer)], _from_documents(item.document_ids)
                )
            )
            _report(progress, "ask", i, len(items))
        config = _config(loupe.settings, model_name(loupe.embeddings), None)
    finally:
        loupe.close()
    metrics = _answer_metrics(rows, current.retrieval_k)
    with_documents = sum(1 for item in items if item.document_ids)
    return _save(
        "feedback",
        settings,
        dataset={
            "path": str(path) if path else f"SQL eval set of workspace '{settings.workspace}'",
            "items": len(items),
            "items_with_documents": with_documents,
        },
        config={**config, "vector_store": current.vector_store},
        metrics=metrics,
        notes=[
            "Gold answer: the expert's (markers removed); gold documents: those it cited. "
            f"{len(items) - with_documents} item(s) cite no document and count as not "
            "retrieved and not cited.",
            f"An answer is right when its token F1 against the expert's answer is >= {RIGHT_F1}.",
        ],
        started=started,
    )


def _isolated(settings: Settings, data_dir: Path, alpha: float | None) -> Settings:
    """The configured models and retrieval settings over an empty, private data directory
    (SQLite and LanceDB), so evaluation documents never reach the user's index."""
    update: dict[str, Any] = {"data_dir": data_dir, "database_url": None, "vector_store": "lancedb"}
    if alpha is not None:
        update["hybrid_alpha"] = alpha
    return settings.model_copy(update=update)


# Records -------------------------------------------------------------------------------------


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _config(settings: Settings, embedding_model: str, alpha: float | None) -> dict[str, Any]:
    return {
        "embeddings": settings.embeddings,
        "embedding_model": embedding_model,
        "hybrid_alpha": settings.hybrid_alpha if alpha is None else alpha,
        "retrieval_k": settings.retrieval_k,
        "llm": settings.llm,
        "llm_model": settings.llm_model if settings.llm_enabled else "extractive",
        "llm_base_url": settings.openai_base_url if settings.llm_enabled else None,
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "min_vector_similarity": settings.min_vector_similarity,
    }


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _machine() -> dict[str, Any]:
    """Where the run happened. Load average and torch's thread count are kept because speed
    figures on a shared machine mean little without them (an oversubscribed torch can be ten
    times slower per query)."""
    torch = sys.modules.get("torch")
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
    }


def _git() -> dict[str, Any]:
    """The commit the code ran at, and whether the tree had uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=_REPO, capture_output=True, text=True, timeout=5
        )
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=_REPO,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if commit.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _save(
    kind: str,
    settings: Settings,
    *,
    dataset: dict[str, Any],
    config: dict[str, Any],
    metrics: dict[str, Any],
    notes: list[str],
    started: float,
) -> Record:
    now = datetime.now(UTC)
    folder = settings.data_dir / "evals"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{now:%Y%m%dT%H%M%SZ}-{kind}"
    path = folder / f"{stem}.json"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.json"
    record: Record = {
        "kind": kind,
        "created_at": now.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "dataset": dataset,
        "config": config,
        "metrics": metrics,
        "notes": notes,
        "versions": _versions(),
        "machine": _machine(),
        "git": _git(),
        "path": str(path),
    }
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return record


def load_record(path: Path) -> Record:
    record: Record = json.loads(path.read_text(encoding="utf-8"))
    if "metrics" not in record:
        raise ValueError(f"{path} is not an evaluation record")
    return record


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


@dataclass(frozen=True)
class Difference:
    key: str
    a: Any
    b: Any
    delta: float | None  # b - a, for numbers


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def compare_records(a: Record, b: Record) -> tuple[list[Difference], list[Difference]]:
    """(metric rows, config rows that differ): every numeric metric of either record with
    B − A, and the settings that changed between the runs, which usually explain the rest."""
    metrics_a, metrics_b = _flatten(a["metrics"]), _flatten(b["metrics"])
    rows = []
    for key in dict.fromkeys([*metrics_a, *metrics_b]):
        va, vb = metrics_a.get(key), metrics_b.get(key)
        if not (_number(va) or _number(vb)):
            continue
        delta = round(vb - va, 4) if _number(va) and _number(vb) else None
        rows.append(Difference(key, va, vb, delta))
    config_a, config_b = _flatten(a.get("config", {})), _flatten(b.get("config", {}))
    changed = [
        Difference(key, config_a.get(key), config_b.get(key), None)
        for key in dict.fromkeys([*config_a, *config_b])
        if config_a.get(key) != config_b.get(key)
    ]
    return rows, changed
