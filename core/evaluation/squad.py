"""The SQuAD answer runner: paragraphs become documents, every question is asked through the
real chain, and answers are scored for retrieval, citations, answer text and calibration."""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.answer.citations import strip_markers
from core.config import Settings
from core.evaluation.datasets import (
    SquadDataset,
    load_squad,
)
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
    report_progress,
    round_or_none,
    run_config,
    save_record,
)

if TYPE_CHECKING:
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


def article_name(article: int) -> str:
    return f"article-{article:03d}.md"


def paragraph_heading(paragraph: int) -> str:
    return f"Paragraph {paragraph + 1}"


def squad_markdown(dataset: SquadDataset) -> list[tuple[str, str]]:
    """(file name, Markdown) per article, a heading per paragraph, so every passage's heading
    names the paragraph it came from."""
    documents = []
    for a, article in enumerate(dataset.articles):
        parts = [f"# {article.title}"]
        parts += [
            f"## {paragraph_heading(p)}\n\n{text}" for p, text in enumerate(article.paragraphs)
        ]
        documents.append((article_name(a), "\n\n".join(parts)))
    return documents


def _from_paragraph(article: int, paragraph: int) -> Callable[[Source], bool]:
    """Whether a source passage comes from this paragraph: the loader's heading path ends
    with the paragraph's heading ("Title > Paragraph 3")."""
    name, heading = article_name(article), paragraph_heading(paragraph)
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
        loupe = Loupe(isolated_settings(settings, Path(tmp), alpha))
        try:
            report_progress(progress, "ingest", 0, len(documents))
            results = loupe.ingest([IngestItem(name, text.encode()) for name, text in documents])
            failed = [r for r in results if r.outcome != "indexed"]
            if failed:
                raise RuntimeError(f"Could not index {failed[0].name}: {failed[0].error}")
            rows = []
            asking = time.perf_counter()
            for i, q in enumerate(questions, start=1):
                result = loupe.ask(q.question)
                rows.append(
                    score_answer(result, q.answers, _from_paragraph(q.article, q.paragraph))
                )
                report_progress(progress, "ask", i, len(questions))
            ask_seconds = time.perf_counter() - asking
            config = run_config(loupe.settings, model_name(loupe.embeddings), None)
        finally:
            loupe.close()
    metrics = answer_metrics(rows, settings.retrieval_k)
    metrics["speed"] = {"seconds_per_question": round(ask_seconds / len(rows), 3)}
    return save_record(
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
