"""The feedback replay runner: the questions experts verified, asked again, scored against
the answers they stood by (the regression set exported by `core export eval`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.answer.citations import strip_markers
from core.config import Settings
from core.evaluation.datasets import (
    FeedbackItem,
    feedback_items,
    load_feedback,
)
from core.evaluation.records import Progress, Record, report_progress, run_config, save_record
from core.evaluation.squad import RIGHT_F1, answer_metrics, score_answer

if TYPE_CHECKING:
    from core.answer.types import AnswerResult, Source
    from core.service import Loupe


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
                score_answer(
                    result, [strip_markers(item.answer)], _from_documents(item.document_ids)
                )
            )
            report_progress(progress, "ask", i, len(items))
        config = run_config(loupe.settings, model_name(loupe.embeddings), None)
    finally:
        loupe.close()
    metrics = answer_metrics(rows, current.retrieval_k)
    # What the regression gate (core/evaluation/gate.py) judges: how often the replayed answer
    # still agrees with the one the expert stands by.
    metrics["agreement"] = round(sum(r.f1 >= RIGHT_F1 for r in rows) / len(rows), 4)
    with_documents = sum(1 for item in items if item.document_ids)
    return save_record(
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
