"""Calibrating the confidence: fit on labelled benchmark records or on expert verdicts, keep
every fit in SQL, and install one only when it earns it.

A benchmark fit (`python -m core calibrate --squad FILE`) is installed in the data directory:
it is fitted on held-out-article questions of public data, which is what the shipped
calibrations are too. A refit from expert feedback (approve = right, reject or correction =
wrong) is offered once there are enough labels and is installed only when, on those same
labels, its out-of-fold AUROC is no lower and its ECE no higher than the installed
calibration's: the decision, with both sets of figures, is kept with the fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from core.answer.calibration import Calibration, installed_path
from core.answer.chain import RagChain
from core.answer.features import FEATURE_NAMES
from core.auth import Actor, require
from core.config import Settings
from core.db.insights import expert_verdicts
from core.db.models import CalibrationRow
from core.db.session import Database
from core.embeddings import model_name
from core.evaluation import fitting
from core.vocab import Role
from core.wiring import answer_threshold


@dataclass(frozen=True)
class Outcome:
    """What one fit did: the calibration, its out-of-fold figures, whether it was installed
    and why."""

    calibration: Calibration
    figures: dict[str, Any]
    installed: bool
    decision: str
    compared: dict[str, Any] | None = None  # installed vs candidate, on the same labels


def _version(source: str, embedding: str, language: str, training_hash: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    short = embedding.split(" (")[0]
    return f"{short}.{language}.{source}.{stamp}.{training_hash[:8]}"


class CalibrationService:
    def __init__(self, settings: Settings, db: Database, chain: RagChain) -> None:
        self.settings = settings
        self.db = db
        self.chain = chain

    @property
    def embedding_model(self) -> str:
        return model_name(self.chain.retriever.embeddings)

    @property
    def current(self) -> Calibration | None:
        return self.chain.calibration

    def fit_records(
        self,
        records: Sequence[dict[str, Any]],
        *,
        dataset: str,
        language: str,
        training_hash: str,
        target_precision: float | None = None,
        install: bool = True,
        without: Sequence[str] = (),
        progress: Callable[[str], None] | None = None,
        actor: Actor,
    ) -> Outcome:
        """Fit on labelled benchmark records and (by default) install the fit. `without`
        leaves features out of it (ones that do not carry over to other corpora)."""
        require(actor, Role.admin)
        unknown = set(without) - set(FEATURE_NAMES)
        if unknown:
            raise ValueError(f"No such confidence feature: {', '.join(sorted(unknown))}.")
        data = fitting.from_records(records)
        fit = fitting.fit(
            data,
            version=_version("benchmark", self.embedding_model, language, training_hash),
            embedding_model=self.embedding_model,
            language=language,
            dataset=dataset,
            training_hash=training_hash,
            features=[name for name in FEATURE_NAMES if name not in without],
            target_precision=target_precision,
            progress=progress,
        )
        decision = (
            "installed: fitted on held-out benchmark questions"
            if install
            else "not installed (--no-install)"
        )
        return self._record(fit.calibration, fit.figures, "benchmark", install, decision)

    def feedback_labels(self) -> fitting.Labelled:
        """Reviewed answers as labels: the newest expert verdict on each decides (approve =
        right; reject or a correction = wrong)."""
        with self.db.session() as s:
            verdicts = expert_verdicts(s, self.settings.workspace)
        return fitting.Labelled(
            features=[v.features for v in verdicts],
            right=[v.right for v in verdicts],
            groups=[v.answer_id for v in verdicts],
            kinds=["feedback"] * len(verdicts),
        )

    def refit_offer(self) -> str | None:
        """None when a refit from expert feedback can be run, else why not yet."""
        return fitting.enough(self.feedback_labels())

    def refit_from_feedback(self, *, actor: Actor) -> Outcome:
        """Fit on expert verdicts; install only if no worse than the current calibration on
        the same labels (out of fold for the refit, as-is for the installed one)."""
        require(actor, Role.admin)
        data = self.feedback_labels()
        if why := fitting.enough(data):
            raise ValueError(f"Not enough expert verdicts to refit yet: {why}.")
        current = self.current
        language = current.language if current else self.settings.calibration_language
        training_hash = fitting.labels_hash(data)
        fit = fitting.fit(
            data,
            version=_version("feedback", self.embedding_model, language, training_hash),
            embedding_model=self.embedding_model,
            language=language,
            dataset=f"expert verdicts of workspace '{self.settings.workspace}'",
            training_hash=training_hash,
            # No answerable/unanswerable split here: keep the installed threshold.
            target_precision=None,
        )
        candidate = {"auroc": fit.figures["auroc"], "ece": fit.figures["ece"]}
        installed_scores = fitting.score_with(current, data) if current else None
        wins = fitting.no_worse(candidate, installed_scores or {})
        calibration = fit.calibration
        if current is not None:
            # Keep the threshold chosen on answerable/unanswerable data: verdicts on given
            # answers cannot tell how often the documents lacked an answer.
            calibration = Calibration.from_dict(
                {
                    **calibration.to_dict(),
                    "threshold": current.threshold,
                    "threshold_rule": f"kept from {current.version}",
                }
            )
        where = f"on {len(data)} expert verdicts"
        if installed_scores is None:
            decision = f"installed: refit won (no calibration was installed) {where}"
        else:
            figures = (
                f"refit AUROC {candidate['auroc']} / ECE {candidate['ece']} vs installed "
                f"AUROC {installed_scores['auroc']} / ECE {installed_scores['ece']} {where}"
            )
            decision = (
                f"installed: refit won ({figures})"
                if wins
                else f"kept {current.version if current else 'none'}: installed won ({figures})"
            )
        compared = {"candidate": candidate, "installed": installed_scores}
        return self._record(calibration, fit.figures, "feedback", wins, decision, compared)

    def _record(
        self,
        calibration: Calibration,
        figures: dict[str, Any],
        source: str,
        install: bool,
        decision: str,
        compared: dict[str, Any] | None = None,
    ) -> Outcome:
        with self.db.session() as s:
            if install:
                for row in s.scalars(
                    select(CalibrationRow).where(
                        CalibrationRow.workspace == self.settings.workspace,
                        CalibrationRow.installed.is_(True),
                    )
                ):
                    row.installed = False
            s.add(
                CalibrationRow(
                    workspace=self.settings.workspace,
                    version=calibration.version,
                    source=source,
                    embedding_model=calibration.embedding_model,
                    language=calibration.language,
                    method=calibration.method,
                    samples=calibration.samples,
                    training_hash=calibration.training_hash,
                    cv_auroc=calibration.cv.get("auroc"),
                    cv_ece=calibration.cv.get("ece"),
                    threshold=calibration.threshold,
                    installed=install,
                    decision=decision,
                    body=calibration.to_dict(),
                )
            )
        if install:
            calibration.save(installed_path(self.settings.data_dir))
            self.chain.calibration = calibration
            self.chain.threshold = answer_threshold(self.settings, calibration)
            self.chain.by_language = {}  # fitted on this data directory: it scores every question
        return Outcome(calibration, figures, install, decision, compared)

    def history(self) -> list[dict[str, Any]]:
        """Every fit of this workspace, newest first, without the calibration bodies."""
        with self.db.session() as s:
            rows = s.scalars(
                select(CalibrationRow)
                .where(CalibrationRow.workspace == self.settings.workspace)
                .order_by(CalibrationRow.created_at.desc(), CalibrationRow.id.desc())
            )
            return [
                {
                    "version": r.version,
                    "source": r.source,
                    "samples": r.samples,
                    "cv_auroc": r.cv_auroc,
                    "cv_ece": r.cv_ece,
                    "threshold": r.threshold,
                    "installed": r.installed,
                    "decision": r.decision,
                    "created_at": r.created_at.isoformat(timespec="seconds"),
                }
                for r in rows
            ]
