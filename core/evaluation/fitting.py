"""Fitting the confidence calibration with scikit-learn, and the figures that judge it.

A logistic regression on the standardised features gives P(right); an isotonic map on top is
kept only when it lowers the out-of-fold calibration error without costing ranking quality.
Every figure reported is out of fold: folds group the records by article (and each off-topic
question alone), so no article's questions are scored by a model that saw that article, the
same held-out discipline that made the unanswerable questions. The answer threshold is then
read off the out-of-fold predictions by an explicit rule, stored with its operating points so a
target precision can pick another at run time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from core.answer.calibration import Calibration, OperatingPoint
from core.answer.features import FEATURE_NAMES
from core.evaluation.metrics import auroc, expected_calibration_error

BINS = 10
CV_FOLDS = 5
COVERAGES = (0.5, 0.8, 0.9, 1.0)
# Default threshold rule: abstain as often as possible while still answering this share of
# the questions the documents do answer.
ANSWER_RATE = 0.90
# A model with fewer labels, or fewer of either class, is not fitted: its figures would be noise.
MIN_LABELS = 40
MIN_PER_CLASS = 8
# Regularisation strength (sklearn's C): mild, as the features are few and standardised.
C = 1.0
_GRID = tuple(round(t, 2) for t in np.arange(0.02, 0.99, 0.01))


@dataclass(frozen=True)
class Labelled:
    """What a fit learns from: one row per answer."""

    features: list[dict[str, float]]
    right: list[bool]
    groups: list[str]  # records of one group never straddle a train/test split
    kinds: list[str]  # answerable, unanswerable, off_topic, or feedback

    def __len__(self) -> int:
        return len(self.right)


def from_records(records: Sequence[Mapping[str, Any]]) -> Labelled:
    """Labelled rows from a labelled store, without the conversational repeats (the same
    question asked again after another; they are for the conversational check)."""
    kept = [r for r in records if not r.get("previous")]
    return Labelled(
        features=[dict(r["features"]) for r in kept],
        right=[bool(r["right"]) for r in kept],
        groups=[
            f"article-{r['article']}" if r.get("article") is not None else str(r["id"])
            for r in kept
        ],
        kinds=[str(r["kind"]) for r in kept],
    )


def generators_of(data: Labelled) -> tuple[str, ...]:
    """The generator kinds of the labelled answers, read off their features."""
    kinds = {
        "llm" if row.get("generator_llm") else "extractive"
        for row in data.features
        if not row.get("abstained")
    }
    return tuple(sorted(kinds))


def labels_hash(data: Labelled) -> str:
    """A hash of exactly what a fit learns from, so a calibration names its training data."""
    digest = hashlib.sha256()
    for features, right, group in zip(data.features, data.right, data.groups, strict=True):
        row = [group, bool(right), sorted((k, float(v)) for k, v in features.items())]
        digest.update(json.dumps(row).encode())
    return digest.hexdigest()


def enough(data: Labelled) -> str | None:
    """Why these labels cannot be fitted yet, or None when they can."""
    positives = sum(data.right)
    if len(data) < MIN_LABELS:
        return f"{len(data)} labels; at least {MIN_LABELS} are needed"
    if min(positives, len(data) - positives) < MIN_PER_CLASS:
        return (
            f"{positives} right and {len(data) - positives} wrong; at least {MIN_PER_CLASS} "
            "of each are needed"
        )
    return None


def _matrix(data: Labelled, features: Sequence[str]) -> np.ndarray:
    return np.asarray([[row.get(name, 0.0) for name in features] for row in data.features])


def _used(data: Labelled, features: Sequence[str]) -> list[str]:
    """The features that vary in these data (a constant column carries no signal and has no
    scale to standardise by)."""
    x = _matrix(data, features)
    return [name for i, name in enumerate(features) if np.ptp(x[:, i]) > 0]


@dataclass(frozen=True)
class _Model:
    scaler: StandardScaler
    logistic: LogisticRegression
    isotonic: IsotonicRegression | None
    gate: tuple[StandardScaler, LogisticRegression] | None = None

    def raw(self, x: np.ndarray) -> np.ndarray:
        p = self.logistic.predict_proba(self.scaler.transform(x))[:, 1]
        if self.gate is not None:
            scaler, gate = self.gate
            p = p * gate.predict_proba(scaler.transform(x))[:, 1]
        return np.asarray(p)

    def predict(self, x: np.ndarray) -> np.ndarray:
        p = self.raw(x)
        return np.asarray(self.isotonic.predict(p)) if self.isotonic is not None else p


def _splits(groups: Sequence[str], folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    n = min(folds, len(set(groups)))
    return list(GroupKFold(n_splits=n).split(np.zeros(len(groups)), groups=groups))


def _fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[StandardScaler, LogisticRegression]:
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=C, max_iter=2000).fit(scaler.transform(x), y)
    return scaler, model


def _fit_raw(x: np.ndarray, y: np.ndarray, covered: np.ndarray | None) -> _Model:
    """One logistic model, or (with `covered`, which rows the documents answer) a gate fitted
    on covered-or-not and a main model fitted on the covered rows alone."""
    if covered is None:
        return _Model(*_fit_logistic(x, y), None)
    gate = _fit_logistic(x, covered)
    inside = covered == 1
    return _Model(*_fit_logistic(x[inside], y[inside]), None, gate)


def _fit(
    x: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str],
    isotonic: bool,
    covered: np.ndarray | None = None,
) -> _Model:
    """The model on all rows; the isotonic map, when wanted, on its out-of-fold outputs
    (fitting it on in-sample outputs would learn the model's overconfidence)."""
    model = _fit_raw(x, y, covered)
    if not isotonic:
        return model
    inner = np.zeros(len(y))
    for train, test in _splits(groups, CV_FOLDS):
        part = _fit_raw(x[train], y[train], None if covered is None else covered[train])
        inner[test] = part.raw(x[test])
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(inner, y)
    return _Model(model.scaler, model.logistic, iso, model.gate)


def _covered(data: Labelled) -> np.ndarray | None:
    """Which rows the documents answer, when the labels say (benchmark records); None for
    labels without that split (expert verdicts), which get one stage."""
    kinds = set(data.kinds)
    if "answerable" not in kinds or not kinds & {"unanswerable", "off_topic"}:
        return None
    return np.asarray([k == "answerable" for k in data.kinds], dtype=int)


def out_of_fold(
    data: Labelled,
    features: Sequence[str],
    *,
    isotonic: bool,
    two_stage: bool = False,
    folds: int = CV_FOLDS,
) -> np.ndarray:
    """Every row's P(right) from a model fitted without its group."""
    x, y = _matrix(data, features), np.asarray(data.right, dtype=int)
    covered = _covered(data) if two_stage else None
    predictions = np.zeros(len(y))
    for train, test in _splits(data.groups, folds):
        if len(set(y[train])) < 2:
            predictions[test] = y[train].mean()
            continue
        train_groups = [data.groups[i] for i in train]
        part = None if covered is None else covered[train]
        model = _fit(x[train], y[train], train_groups, isotonic, part)
        predictions[test] = model.predict(x[test])
    return predictions


Scores = Sequence[float] | np.ndarray


def reliability(p: Scores, right: Sequence[bool], bins: int = BINS) -> list[dict[str, Any]]:
    """Per equal-width bin of confidence: how many, their mean confidence, how many right."""
    conf, correct = np.asarray(p, dtype=float), np.asarray(right, dtype=float)
    index = np.minimum((conf * bins).astype(int), bins - 1)
    table = []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        table.append(
            {
                "bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}",
                "count": count,
                "mean_confidence": round(float(conf[members].mean()), 4) if count else None,
                "accuracy": round(float(correct[members].mean()), 4) if count else None,
            }
        )
    return table


def selective_accuracy(
    p: Scores, right: Sequence[bool], coverages: Sequence[float] = COVERAGES
) -> dict[str, float | None]:
    """Accuracy of the most confident answers at each coverage (share answered)."""
    order = np.argsort(-np.asarray(p, dtype=float), kind="stable")
    correct = np.asarray(right, dtype=float)[order]
    result: dict[str, float | None] = {}
    for c in coverages:
        n = int(round(c * len(correct)))
        result[f"{c:.0%}"] = round(float(correct[:n].mean()), 4) if n else None
    return result


def operating_points(
    p: Scores, right: Sequence[bool], kinds: Sequence[str]
) -> list[OperatingPoint]:
    conf, correct = np.asarray(p, dtype=float), np.asarray(right, dtype=bool)
    answerable = np.asarray([k == "answerable" for k in kinds])
    outside = np.asarray([k in ("unanswerable", "off_topic") for k in kinds])
    points = []
    for t in _GRID:
        answered = conf >= t
        points.append(
            OperatingPoint(
                threshold=t,
                coverage=round(float(answered.mean()), 4),
                precision=round(float(correct[answered].mean()), 4) if answered.any() else None,
                answerable_answered=(
                    round(float(answered[answerable].mean()), 4) if answerable.any() else None
                ),
                unanswerable_abstained=(
                    round(float((~answered[outside]).mean()), 4) if outside.any() else None
                ),
            )
        )
    return points


def choose_threshold(
    points: Sequence[OperatingPoint],
    *,
    answer_rate: float = ANSWER_RATE,
    target_precision: float | None = None,
) -> tuple[float, str]:
    """(threshold, the rule that chose it). With a target precision: the lowest threshold whose
    answers reach it. Otherwise: the highest threshold that still answers `answer_rate` of the
    answerable questions (abstaining as much as that allows); without answerable questions
    (expert feedback), 0.5."""
    if target_precision is not None:
        reached = [p.threshold for p in points if (p.precision or 0.0) >= target_precision]
        if reached:
            return min(reached), f"lowest threshold with precision >= {target_precision:.2f}"
        best = max(points, key=lambda p: (p.precision or 0.0, p.threshold))
        return best.threshold, f"no threshold reached precision {target_precision:.2f}"
    rated = [p for p in points if p.answerable_answered is not None]
    if not rated:
        return 0.5, "default 0.5 (no answerable questions to choose by)"
    fitting = [p.threshold for p in rated if (p.answerable_answered or 0.0) >= answer_rate]
    if not fitting:
        return min(p.threshold for p in rated), "lowest threshold (none answers enough)"
    return max(fitting), f"highest threshold answering >= {answer_rate:.0%} of answerable"


def figures(
    p: Scores, right: Sequence[bool], kinds: Sequence[str], threshold: float
) -> dict[str, Any]:
    """AUROC (all, and answerable questions alone), ECE, the reliability table, selective
    accuracy, and what answering at `threshold` does."""
    conf = np.asarray(p, dtype=float)
    answerable = [i for i, k in enumerate(kinds) if k == "answerable"]
    outside = {
        k: [i for i, kk in enumerate(kinds) if kk == k] for k in ("unanswerable", "off_topic")
    }

    def rate(indices: Sequence[int], answered: bool) -> float | None:
        if not indices:
            return None
        hits = [(conf[i] >= threshold) == answered for i in indices]
        return round(float(np.mean(hits)), 4)

    au = auroc(list(conf), list(right))
    au_answerable = auroc([conf[i] for i in answerable], [right[i] for i in answerable])
    ece = expected_calibration_error(list(conf), list(right), BINS)
    answered = conf >= threshold
    return {
        "samples": len(conf),
        "right_share": round(float(np.mean(right)), 4) if len(conf) else None,
        "auroc": None if au is None else round(au, 4),
        "auroc_answerable": None if au_answerable is None else round(au_answerable, 4),
        "ece": None if ece is None else round(ece, 4),
        "reliability": reliability(conf, right),
        "selective_accuracy": selective_accuracy(conf, right),
        "threshold": threshold,
        "answer_rate_answerable": rate(answerable, True),
        "abstain_unanswerable": rate(outside["unanswerable"], False),
        "abstain_off_topic": rate(outside["off_topic"], False),
        "precision_answered": (
            round(float(np.asarray(right)[answered].mean()), 4) if answered.any() else None
        ),
    }


@dataclass(frozen=True)
class Fit:
    calibration: Calibration
    oof: list[float]  # out-of-fold P(right) of the chosen method, per row
    figures: dict[str, Any]  # out of fold
    methods: dict[str, dict[str, Any]]  # out-of-fold AUROC/ECE per method considered


def fit(
    data: Labelled,
    *,
    version: str,
    embedding_model: str,
    language: str,
    dataset: str,
    training_hash: str,
    features: Sequence[str] = FEATURE_NAMES,
    target_precision: float | None = None,
    answer_rate: float = ANSWER_RATE,
    progress: Callable[[str], None] | None = None,
) -> Fit:
    """Fit and judge a calibration on labelled rows (see the module docstring)."""
    if why := enough(data):
        raise ValueError(f"Not enough labels to fit a calibration: {why}.")
    used = _used(data, features)
    if not used:
        raise ValueError("Not enough labels to fit a calibration: no feature varies in them.")
    right = list(data.right)
    methods: dict[str, dict[str, Any]] = {}
    predictions: dict[str, np.ndarray] = {}
    structures = [("logistic", False)]
    if _covered(data) is not None:
        structures.append(("two-stage", True))
    answerable = [i for i, k in enumerate(data.kinds) if k == "answerable"]
    for structure, two_stage in structures:
        for isotonic in (False, True):
            method = structure + ("+isotonic" if isotonic else "")
            if progress is not None:
                progress(f"cross-validating {method}")
            p = out_of_fold(data, used, isotonic=isotonic, two_stage=two_stage)
            predictions[method] = p
            au = auroc(list(p), right)
            au_answerable = auroc([p[i] for i in answerable], [right[i] for i in answerable])
            ece = expected_calibration_error(list(p), right, BINS)
            methods[method] = {
                "auroc": None if au is None else round(au, 4),
                "auroc_answerable": None if au_answerable is None else round(au_answerable, 4),
                "ece": None if ece is None else round(ece, 4),
            }

    def ranking(method: str) -> float:
        m = methods[method]
        return (m["auroc"] or 0.0) + (m["auroc_answerable"] or 0.0)

    # The structure that ranks best out of fold (over all questions and among answerable
    # ones); isotonic on top only when it calibrates better and ranks about as well.
    structure = max((name for name, _ in structures), key=ranking)
    iso, plain = methods[structure + "+isotonic"], methods[structure]
    use_isotonic = (iso["ece"] or 1.0) < (plain["ece"] or 1.0) and ranking(
        structure + "+isotonic"
    ) >= ranking(structure) - 0.002
    method = structure + ("+isotonic" if use_isotonic else "")
    oof = predictions[method]
    points = operating_points(oof, right, data.kinds)
    threshold, rule = choose_threshold(
        points, answer_rate=answer_rate, target_precision=target_precision
    )
    x, y = _matrix(data, used), np.asarray(right, dtype=int)
    covered = _covered(data) if structure == "two-stage" else None
    model = _fit(x, y, data.groups, use_isotonic, covered)
    gate_scaler, gate = model.gate if model.gate is not None else (None, None)
    calibration = Calibration(
        version=version,
        features=tuple(used),
        means=tuple(round(float(v), 6) for v in model.scaler.mean_),
        scales=tuple(round(float(v), 6) for v in model.scaler.scale_),
        coefficients=tuple(round(float(v), 6) for v in model.logistic.coef_[0]),
        intercept=round(float(model.logistic.intercept_[0]), 6),
        gate_means=tuple(round(float(v), 6) for v in gate_scaler.mean_) if gate_scaler else (),
        gate_scales=tuple(round(float(v), 6) for v in gate_scaler.scale_) if gate_scaler else (),
        gate_coefficients=tuple(round(float(v), 6) for v in gate.coef_[0]) if gate else (),
        gate_intercept=round(float(gate.intercept_[0]), 6) if gate else 0.0,
        isotonic_x=tuple(float(v) for v in model.isotonic.X_thresholds_) if model.isotonic else (),
        isotonic_y=tuple(float(v) for v in model.isotonic.y_thresholds_) if model.isotonic else (),
        threshold=threshold,
        threshold_rule=rule,
        operating_points=tuple(points),
        method=method,
        generators=generators_of(data),
        embedding_model=embedding_model,
        language=language,
        dataset=dataset,
        training_hash=training_hash,
        samples=len(data),
        cv={"folds": CV_FOLDS, "grouped_by": "article", **methods[method], "methods": methods},
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return Fit(
        calibration, [float(v) for v in oof], figures(oof, right, data.kinds, threshold), methods
    )


def no_worse(candidate: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """Whether a refit may replace the installed calibration: on the same labels, its
    out-of-fold AUROC is at least, and its ECE at most, the installed one's."""
    c_au, c_ece = candidate.get("auroc"), candidate.get("ece")
    i_au, i_ece = current.get("auroc"), current.get("ece")
    if c_au is None or c_ece is None:
        return False
    if i_au is None or i_ece is None:
        return True
    return bool(c_au >= i_au and c_ece <= i_ece)


def score_with(calibration: Calibration, data: Labelled) -> dict[str, Any]:
    """The installed calibration's AUROC and ECE on these labels (what a refit must match)."""
    p = [calibration.predict(f) for f in data.features]
    au = auroc(p, list(data.right))
    ece = expected_calibration_error(p, list(data.right), BINS)
    return {
        "auroc": None if au is None else round(au, 4),
        "ece": None if ece is None else round(ece, 4),
    }
