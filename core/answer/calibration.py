"""A fitted calibration: features → P(the answer is right), with no scikit-learn at run time.

`python -m core calibrate` fits a logistic regression (and, when it helps out of fold, an
isotonic map on top) with scikit-learn and writes what it learnt as plain numbers in a JSON
file: the feature names, their standardisation, the coefficients, the isotonic breakpoints, the
training data's hash and its cross-validated AUROC and ECE. Applying it is a dot product and an
interpolation, so answering needs nothing but numpy, and a calibration can be read, diffed and
committed. One calibration is shipped per bundled embedding model (`calibrations/`), fitted on
public benchmark data, so a fresh install answers calibrated from its first question.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BUNDLED_DIR = Path(__file__).resolve().parent / "calibrations"
FORMAT = 1


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


@dataclass(frozen=True)
class OperatingPoint:
    """What answering at one threshold did on the calibration data (out of fold)."""

    threshold: float
    coverage: float  # share of all questions answered
    precision: float | None  # share of answered ones that were right
    answerable_answered: float | None  # share of answerable questions answered
    unanswerable_abstained: float | None  # share of unanswerable and off-topic abstained


@dataclass(frozen=True)
class Calibration:
    version: str
    features: tuple[str, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    coefficients: tuple[float, ...]
    intercept: float
    # Two-stage calibrations multiply by a second logistic model, the *gate*: P(the documents
    # answer the question at all), fitted on answerable against unanswerable questions, while
    # the main model is fitted on answerable ones only (P(right | answerable)). Empty: one stage.
    gate_means: tuple[float, ...] = ()
    gate_scales: tuple[float, ...] = ()
    gate_coefficients: tuple[float, ...] = ()
    gate_intercept: float = 0.0
    # Isotonic map applied to the logistic output: x breakpoints and their y values.
    isotonic_x: tuple[float, ...] = ()
    isotonic_y: tuple[float, ...] = ()
    # The recommended answer threshold on P(right), chosen on the calibration data.
    threshold: float = 0.5
    threshold_rule: str = ""
    operating_points: tuple[OperatingPoint, ...] = ()
    method: str = "logistic"
    # The generators whose answers it was fitted on (empty: any); an LLM's answers are not
    # scored by a calibration fitted on extractive ones.
    generators: tuple[str, ...] = ()
    embedding_model: str = ""
    language: str = ""
    dataset: str = ""
    training_hash: str = ""
    samples: int = 0
    cv: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""

    def __post_init__(self) -> None:
        n = len(self.features)
        if not len(self.means) == len(self.scales) == len(self.coefficients) == n:
            raise ValueError("a calibration needs one mean, scale and coefficient per feature")
        gate = (self.gate_means, self.gate_scales, self.gate_coefficients)
        if any(gate) and not all(len(part) == n for part in gate):
            raise ValueError("a gate needs one mean, scale and coefficient per feature")
        if len(self.isotonic_x) != len(self.isotonic_y):
            raise ValueError("isotonic breakpoints and values differ in length")

    def applies_to(self, generator: str) -> bool:
        """Whether this calibration was fitted on answers like this generator's (a fallback
        answer is an extractive one)."""
        kind = "extractive" if generator == "fallback" else generator
        return not self.generators or kind in self.generators

    @property
    def two_stage(self) -> bool:
        return bool(self.gate_coefficients)

    def _x(self, features: Mapping[str, float]) -> np.ndarray:
        return np.asarray([float(features.get(name, 0.0)) for name in self.features])

    def _pushes(self, features: Mapping[str, float]) -> np.ndarray:
        x = self._x(features)
        pushes = (x - np.asarray(self.means)) / np.asarray(self.scales) * self.coefficients
        if self.two_stage:
            gate = (x - np.asarray(self.gate_means)) / np.asarray(self.gate_scales)
            pushes = pushes + gate * np.asarray(self.gate_coefficients)
        return np.asarray(pushes)

    def contributions(self, features: Mapping[str, float]) -> list[tuple[str, float]]:
        """Each feature's push on the log-odds (coefficient × standardised value, summed over
        both stages), largest first: the reasons behind a confidence, ranked by what they did."""
        pushes = self._pushes(features).tolist()
        ranked = sorted(zip(self.features, pushes, strict=True), key=lambda p: -abs(p[1]))
        return [(name, round(value, 4)) for name, value in ranked]

    def logistic(self, features: Mapping[str, float]) -> float:
        """The model's output before the isotonic map: one logistic, or the product of the
        main model and the gate."""
        x = self._x(features)
        z = float((x - np.asarray(self.means)) / np.asarray(self.scales) @ self.coefficients)
        p = _sigmoid(z + self.intercept)
        if self.two_stage:
            gate = (x - np.asarray(self.gate_means)) / np.asarray(self.gate_scales)
            p *= _sigmoid(float(gate @ np.asarray(self.gate_coefficients)) + self.gate_intercept)
        return p

    def predict(self, features: Mapping[str, float]) -> float:
        """P(right) for one answer's features."""
        p = self.logistic(features)
        if self.isotonic_x:
            p = float(np.interp(p, self.isotonic_x, self.isotonic_y))
        return round(min(1.0, max(0.0, p)), 4)

    def threshold_for_precision(self, target: float) -> float:
        """The lowest threshold whose answers reached `target` precision on the calibration
        data (answering as much as that precision allows); the highest one seen when none did."""
        reached = [
            p.threshold
            for p in self.operating_points
            if p.precision is not None and p.precision >= target
        ]
        if reached:
            return min(reached)
        return max((p.threshold for p in self.operating_points), default=self.threshold)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = FORMAT
        return data

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
        path.write_text(text, encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown calibration format {data.get('format')!r}")
        tuples = (
            "features",
            "means",
            "scales",
            "coefficients",
            "gate_means",
            "gate_scales",
            "gate_coefficients",
            "isotonic_x",
            "isotonic_y",
            "generators",
        )
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in tuples:
            values[key] = tuple(values.get(key, ()))
        values["operating_points"] = tuple(
            OperatingPoint(**p) for p in data.get("operating_points", ())
        )
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> Calibration:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def bundled_path(embedding_model: str, language: str = "en") -> Path:
    """Where the calibration shipped for this embedding model and language lives."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in embedding_model)
    return BUNDLED_DIR / f"{safe}.{language}.json"


def installed_path(data_dir: Path) -> Path:
    """The calibration `python -m core calibrate` installed for this data directory."""
    return data_dir / "calibration.json"


def installed_calibration(data_dir: Path | None, embedding_model: str) -> Calibration | None:
    """The calibration installed in this data directory, when it was fitted for this model."""
    if data_dir is None or not installed_path(data_dir).exists():
        return None
    installed = Calibration.load(installed_path(data_dir))
    return installed if installed.embedding_model == embedding_model else None


def bundled_calibration(embedding_model: str, language: str) -> Calibration | None:
    """The calibration shipped for this model and language; a runtime variant such as
    "all-MiniLM-L6-v2 (onnx int8)" falls back to its model's."""
    for name in dict.fromkeys([embedding_model, embedding_model.split(" (")[0]]):
        path = bundled_path(name, language)
        if path.exists():
            return Calibration.load(path)
    return None


def bundled_for_languages(embedding_model: str, languages: Sequence[str]) -> dict[str, Calibration]:
    """The calibrations shipped for this embedding model, by language, for those that have one."""
    found = {language: bundled_calibration(embedding_model, language) for language in languages}
    return {language: fit for language, fit in found.items() if fit is not None}


def find_calibration(
    data_dir: Path | None, embedding_model: str, languages: Sequence[str] = ("en",)
) -> Calibration | None:
    """The installed calibration when it was fitted for this embedding model, else the
    bundled one for the model (first language that has one), else None (uncalibrated)."""
    installed = installed_calibration(data_dir, embedding_model)
    if installed is not None:
        return installed
    for language in languages:
        bundled = bundled_calibration(embedding_model, language)
        if bundled is not None:
            return bundled
    return None
