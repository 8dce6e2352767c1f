"""The SQuAD answer runner: paragraphs become documents, every question is asked through the
real chain, and answers are scored for retrieval, citations, answer text and trust.

Trust is measured on held-out articles (`core.evaluation.labelled`): each answerable question
is asked of an index that holds its article, each question again of one that lacks it
(unanswerable), off-topic questions too, and each answerable question once more after an
unrelated one (the conversational check). The confidence in use (the installed or shipped
calibration) is scored on all of it, and a calibration refitted on these same records is
scored out of fold, grouped by article, beside it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.answer.citations import strip_markers
from core.config import Settings
from core.evaluation import fitting, labelled
from core.evaluation.datasets import SquadDataset, load_squad
from core.evaluation.metrics import (
    auroc,
    contains_answer,
    exact_match,
    expected_calibration_error,
    hit_at_k,
    mrr_at_k,
    token_f1,
)
from core.evaluation.records import (
    Progress,
    Record,
    isolated_settings,
    mean,
    round_or_none,
    run_config,
    save_record,
)

if TYPE_CHECKING:
    from core.answer.calibration import Calibration
    from core.answer.types import AnswerResult, Source

# An answer is "right" for calibration when its token F1 reaches this.
RIGHT_F1 = 0.5
CALIBRATION_BINS = 10


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


def score_answer(
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


def answer_metrics(rows: Sequence[ScoredAnswer], k: int) -> dict[str, Any]:
    """Retrieval, answer and confidence figures shared by the SQuAD and feedback runs."""
    confidences = [r.confidence for r in rows]
    return {
        "retrieval": {
            "hit@1": round_or_none(mean(r.hit_at_1 for r in rows)),
            f"hit@{k}": round_or_none(mean(float(r.retrieved) for r in rows)),
            f"mrr@{k}": round_or_none(mean(r.reciprocal_rank for r in rows)),
        },
        "answers": {
            "exact_match": round_or_none(mean(r.em for r in rows)),
            "token_f1": round_or_none(mean(r.f1 for r in rows)),
            "contains_gold": round_or_none(mean(r.contains for r in rows)),
            "cites_gold": round_or_none(mean(float(r.cited) for r in rows)),
            "abstained": round_or_none(mean(float(r.abstained) for r in rows)),
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
        "right_share": round_or_none(mean(float(x) for x in right)),
        "mean_confidence": round_or_none(mean(confidences)),
        "auroc": round_or_none(auroc(confidences, right)),
        "ece": round_or_none(expected_calibration_error(confidences, right, CALIBRATION_BINS)),
    }


def squad_markdown(dataset: SquadDataset) -> list[tuple[str, str]]:
    """(file name, Markdown) for every article (see `labelled.squad_documents`)."""
    return labelled.squad_documents(dataset, range(len(dataset.articles)))


def _from_paragraph(article: int, paragraph: int) -> Callable[[Source], bool]:
    """Whether a source passage comes from this paragraph."""
    return lambda s: labelled.is_gold(s.as_dict(), article, paragraph)


def _scored(record: dict[str, Any]) -> ScoredAnswer:
    """A labelled record of an answerable question, scored as `score_answer` scores a result."""
    answer = strip_markers(record["answer"]) if not record["abstained"] else ""
    golds, article, paragraph = record["golds"], record["article"], record["paragraph"]
    gold = [labelled.is_gold(s, article, paragraph) for s in record["sources"]]
    first = next((i for i, g in enumerate(gold, start=1) if g), None)
    return ScoredAnswer(
        em=exact_match(answer, golds),
        f1=token_f1(answer, golds),
        contains=contains_answer(answer, golds),
        confidence=float(record.get("p", 0.0)),
        abstained=bool(record["abstained"]),
        generator=str(record["generator"]),
        retrieved=first is not None,
        cited=any(s["cited"] and g for s, g in zip(record["sources"], gold, strict=True)),
        reciprocal_rank=1.0 / first if first else 0.0,
        hit_at_1=float(first == 1),
    )


def conversational_check(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """hit@1 of each answerable question asked alone and after an unrelated question (the
    latest one of another article): the second must not lose more than one point."""
    alone = {r["id"]: r for r in records if r["kind"] == "answerable" and not r.get("previous")}
    pairs = [(alone[r["id"].split("#")[0]], r) for r in records if r.get("previous")]
    if not pairs:
        return {"questions": 0}
    hit_alone = mean(float(a["hit_at_1"]) for a, _ in pairs) or 0.0
    hit_after = mean(float(b["hit_at_1"]) for _, b in pairs) or 0.0
    return {
        "questions": len(pairs),
        "hit@1_alone": round(hit_alone, 4),
        "hit@1_after_unrelated": round(hit_after, 4),
        "loss_points": round(100 * (hit_alone - hit_after), 2),
        "passes": 100 * (hit_alone - hit_after) <= 1.0,
        "used_previous_turn": round(
            mean(float(b["standalone"] != b["question"]) for _, b in pairs) or 0.0, 4
        ),
    }


def trust_metrics(
    records: Sequence[dict[str, Any]], calibration: Calibration | None, header: labelled.Header
) -> dict[str, Any]:
    """The installed confidence's figures on these records and a refit's, out of fold."""
    data = fitting.from_records(records)
    result: dict[str, Any] = {
        "counts": dict(Counter(data.kinds)),
        "right_share": round_or_none(mean(float(r) for r in data.right)),
    }
    if calibration is not None:
        p = [calibration.predict(f) for f in data.features]
        result["installed"] = {
            "version": calibration.version,
            "fitted_on": calibration.dataset,
            **fitting.figures(p, data.right, data.kinds, calibration.threshold),
        }
    else:
        result["installed"] = None
    if why := fitting.enough(data):
        result["out_of_fold"] = {"skipped": why}
    else:
        fit = fitting.fit(
            data,
            version="evaluation",
            embedding_model=header.embedding_model,
            language=header.language,
            dataset=header.dataset,
            training_hash=fitting.labels_hash(data),
        )
        result["out_of_fold"] = {
            "method": fit.calibration.method,
            "threshold_rule": fit.calibration.threshold_rule,
            "methods": fit.methods,
            **fit.figures,
        }
    return result


def run_squad(
    path: Path,
    settings: Settings,
    *,
    limit_questions: int | None = None,
    alpha: float | None = None,
    off_topic: Path | None = None,
    off_topic_limit: int = labelled.DEFAULT_OFF_TOPIC,
    folds: int = labelled.DEFAULT_FOLDS,
    articles: str | None = None,
    progress: Progress | None = None,
) -> Record:
    """Answer quality and trust through the real chain, on held-out-article folds (see the
    module docstring). The labelled records are kept under `<data_dir>/labelled/`, so a
    calibration can be fitted from them (`python -m core calibrate --from-store`)."""
    from core.embeddings import get_embeddings, model_name
    from core.wiring import load_calibration

    started = time.perf_counter()
    dataset = load_squad(path, articles)
    if not dataset.questions:
        raise ValueError(f"No questions in {path}.")
    current = isolated_settings(settings, settings.data_dir, alpha)
    folds = min(folds, len(dataset.articles))
    header, records = labelled.generate(
        path,
        current,
        folds=folds,
        off_topic=off_topic,
        off_topic_limit=off_topic_limit,
        limit_questions=limit_questions,
        articles=articles,
        language=settings.calibration_language,
        conversational=True,
        progress=progress,
    )
    calibration = load_calibration(settings, get_embeddings(settings))
    for r in records:
        r["p"] = calibration.predict(r["features"]) if calibration else None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    store = settings.data_dir / "labelled" / f"{stamp}-{path.stem}.jsonl"
    labelled.write_store(store, header, records)
    answerable = [_scored(r) for r in records if r["kind"] == "answerable" and not r["previous"]]
    metrics = answer_metrics(answerable, settings.retrieval_k)
    metrics["trust"] = trust_metrics(records, calibration, header)
    metrics["conversational"] = conversational_check(records)
    asked = len(records)
    metrics["speed"] = {"seconds_per_question": round((time.perf_counter() - started) / asked, 3)}
    config = run_config(current, model_name(get_embeddings(settings)), alpha)
    return save_record(
        "squad",
        settings,
        dataset={
            "path": str(path),
            "name": path.name,
            "articles": len(dataset.articles),
            "article_range": articles,
            "paragraphs": sum(len(a.paragraphs) for a in dataset.articles),
            "questions": len(answerable),
            "limit_questions": limit_questions,
            "folds": folds,
            "off_topic": str(off_topic) if off_topic else None,
            "labelled_store": str(store),
        },
        config={**config, "vector_store": "lancedb (temporary, one per fold)"},
        metrics=metrics,
        notes=[
            f"Each answerable question is asked of an index holding every article but one "
            f"fold's ({folds} folds), then again of the index that lacks its article "
            "(unanswerable); off-topic questions come from a BEIR folder's queries.",
            "trust: right = the answer cites the gold paragraph and contains a gold answer "
            "(SQuAD normalisation); nothing is right for unanswerable or off-topic questions. "
            "trust.installed scores the calibration in use (in sample when it was fitted on "
            "this data set); trust.out_of_fold refits on these records, grouped by article.",
            f"retrieval/answers/confidence: answerable questions only; confidence there: token "
            f"F1 >= {RIGHT_F1} (confidence_contains: the answer contains a gold span).",
            "conversational: each answerable question asked after the latest question of "
            "another article; hit@1 must not drop by more than one point.",
        ],
        started=started,
    )
