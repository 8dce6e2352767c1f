"""Calibration: fitting with scikit-learn, the JSON it persists (applied without scikit-learn),
the threshold rules, the no-worse rule for refits from expert verdicts (through SQL), and the
store of labelled records, which must replay through the real chain."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from core.answer.calibration import Calibration, OperatingPoint, find_calibration, installed_path
from core.config import Settings
from core.db.models import Answer, Feedback
from core.evaluation import fitting, labelled
from core.evaluation.metrics import auroc
from core.service import Loupe
from tests.evaluation.test_eval import SQUAD


def synthetic(n: int = 600, seed: int = 0) -> fitting.Labelled:
    """Answerable rows whose rightness follows `evidence` (noisy), and unanswerable rows with
    weak `coverage`: a signal a calibration must find, with one grouped article per 6 rows."""
    rng = random.Random(seed)
    features, right, groups, kinds = [], [], [], []
    for i in range(n):
        answerable = i % 3 != 0
        coverage = rng.uniform(0.5, 1.0) if answerable else rng.uniform(0.0, 0.6)
        evidence = rng.gauss(0.0, 1.0)
        features.append({"coverage": coverage, "evidence": evidence, "constant": 1.0})
        right.append(bool(answerable and rng.random() < 1 / (1 + np.exp(-2 * evidence))))
        groups.append(f"article-{i // 6}")
        kinds.append("answerable" if answerable else "unanswerable")
    return fitting.Labelled(features, right, groups, kinds)


def fit(data: fitting.Labelled, **kwargs: object) -> fitting.Fit:
    return fitting.fit(
        data,
        version="test",
        embedding_model="model",
        language="en",
        dataset="synthetic",
        training_hash=fitting.labels_hash(data),
        features=("coverage", "evidence", "constant"),
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_fit_finds_the_signal_and_is_calibrated_out_of_fold() -> None:
    result = fit(synthetic())
    figures = result.figures
    assert figures["auroc"] > 0.85
    assert figures["auroc_answerable"] > 0.75
    assert figures["ece"] < 0.08
    # A constant feature carries nothing and is left out rather than divided by zero.
    assert "constant" not in result.calibration.features
    assert set(result.methods) == {
        "logistic",
        "logistic+isotonic",
        "two-stage",
        "two-stage+isotonic",
    }
    assert result.calibration.method in result.methods
    assert [row["count"] for row in figures["reliability"]] and sum(
        row["count"] for row in figures["reliability"]
    ) == len(result.oof)


def test_the_persisted_calibration_predicts_what_was_fitted(tmp_path: Path) -> None:
    data = synthetic()
    result = fit(data)
    path = tmp_path / "calibration.json"
    result.calibration.save(path)
    loaded = Calibration.load(path)
    assert loaded == result.calibration
    p = [loaded.predict(row) for row in data.features]
    assert all(0.0 <= v <= 1.0 for v in p)
    # In sample the shipped numbers rank at least as well as out of fold.
    assert (auroc(p, data.right) or 0.0) >= result.figures["auroc"] - 0.01
    saved = json.loads(path.read_text())
    for key in ("features", "coefficients", "training_hash", "cv", "threshold", "format"):
        assert key in saved
    assert saved["training_hash"] == fitting.labels_hash(data)


def test_a_calibration_file_from_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({**fit(synthetic()).calibration.to_dict(), "format": 99}))
    with pytest.raises(ValueError, match="format"):
        Calibration.load(path)


def test_too_few_labels_are_not_fitted() -> None:
    data = synthetic(n=30)
    assert fitting.enough(data) is not None
    with pytest.raises(ValueError, match="Not enough labels"):
        fit(data)


POINTS = [
    OperatingPoint(0.2, 0.9, 0.60, 0.98, 0.50),
    OperatingPoint(0.4, 0.7, 0.75, 0.93, 0.80),
    OperatingPoint(0.5, 0.5, 0.85, 0.90, 0.92),
    OperatingPoint(0.6, 0.3, 0.92, 0.70, 0.99),
]


def test_the_default_threshold_abstains_most_while_answering_enough() -> None:
    threshold, rule = fitting.choose_threshold(POINTS, answer_rate=0.9)
    assert threshold == 0.5 and "90%" in rule


def test_a_target_precision_picks_the_lowest_threshold_that_reaches_it() -> None:
    assert fitting.choose_threshold(POINTS, target_precision=0.8)[0] == 0.5
    assert fitting.choose_threshold(POINTS, target_precision=0.6)[0] == 0.2
    threshold, rule = fitting.choose_threshold(POINTS, target_precision=0.99)
    assert threshold == 0.6 and "no threshold reached" in rule
    calibration = Calibration(
        "v", ("x",), (0.0,), (1.0,), (1.0,), 0.0, operating_points=tuple(POINTS), threshold=0.5
    )
    assert calibration.threshold_for_precision(0.9) == 0.6


@pytest.mark.parametrize(
    ("candidate", "current", "wins"),
    [
        ({"auroc": 0.90, "ece": 0.04}, {"auroc": 0.88, "ece": 0.05}, True),
        ({"auroc": 0.88, "ece": 0.05}, {"auroc": 0.88, "ece": 0.05}, True),  # no worse
        ({"auroc": 0.92, "ece": 0.06}, {"auroc": 0.88, "ece": 0.05}, False),  # worse ECE
        ({"auroc": 0.87, "ece": 0.01}, {"auroc": 0.88, "ece": 0.05}, False),  # worse AUROC
        ({"auroc": None, "ece": 0.01}, {"auroc": 0.88, "ece": 0.05}, False),
        ({"auroc": 0.80, "ece": 0.10}, {}, True),  # nothing installed yet
    ],
)
def test_the_no_worse_rule(candidate: dict, current: dict, wins: bool) -> None:
    assert fitting.no_worse(candidate, current) is wins


def _review(loupe: Loupe, features: dict[str, float], confidence: float, right: bool) -> None:
    with loupe.db.session() as s:
        answer = Answer(
            workspace="default",
            question="q",
            standalone_question="q",
            answer="a [1]",
            sources=[],
            model="extractive",
            generator="extractive",
            confidence=confidence,
            confidence_label="low",
            confidence_features=features,
        )
        s.add(answer)
        s.flush()
        s.add(
            Feedback(
                answer_id=answer.id,
                rating="up" if right else "down",
                comment=None if right else "wrong",
                role="expert",
                source="review",
                user="dana",
            )
        )


def test_a_refit_from_expert_verdicts_is_installed_only_when_no_worse(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", llm="extractive", database_url=None)
    loupe = Loupe(settings)
    try:
        assert loupe.calibration.refit_offer() is not None  # no verdicts yet
        rng = random.Random(3)
        # The shipped calibration does not use the sentence margin; experts' verdicts follow it.
        for _ in range(80):
            evidence = rng.gauss(0, 1)
            right = bool(rng.random() < 1 / (1 + np.exp(-3 * evidence)))
            _review(loupe, {"sentence_margin": evidence, "top_cosine": 0.5}, 0.5, right)
        assert loupe.calibration.refit_offer() is None
        won = loupe.refit_from_feedback()
        assert won.installed and won.decision.startswith("installed: refit won")
        assert installed_path(settings.data_dir).exists()
        assert loupe.chain.calibration == won.calibration
        assert find_calibration(settings.data_dir, loupe.calibration.embedding_model) == (
            won.calibration
        )
        # Fitting the same verdicts again cannot beat the refit by a margin: whichever wins,
        # the decision says which and both fits are kept in SQL.
        again = loupe.refit_from_feedback()
        assert ("refit won" in again.decision) == again.installed
        assert "installed won" in again.decision or again.installed
        history = loupe.calibration.history()
        assert [h["source"] for h in history] == ["feedback", "feedback"]
        assert sum(h["installed"] for h in history) == 1
    finally:
        loupe.close()


def test_a_refit_that_is_worse_is_not_installed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", llm="extractive", database_url=None)
    loupe = Loupe(settings)
    try:
        rng = random.Random(5)
        shipped = loupe.chain.calibration
        assert shipped is not None
        # Verdicts the shipped calibration predicts perfectly and that carry no other signal.
        for _ in range(60):
            good = rng.random() < 0.5
            features = {"question_coverage_cited": 1.0 if good else 0.0, "top_cosine": 0.7}
            features |= {"sentence_score": rng.random()}
            _review(loupe, features, shipped.predict(features), good)
        outcome = loupe.refit_from_feedback()
        if not outcome.installed:
            assert outcome.decision.startswith(f"kept {shipped.version}: installed won")
            assert loupe.chain.calibration == shipped
            assert not installed_path(settings.data_dir).exists()
        assert outcome.compared is not None and outcome.compared["installed"] is not None
    finally:
        loupe.close()


def test_the_labelled_store_replays_through_the_chain(tmp_path: Path) -> None:
    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps(SQUAD))
    settings = Settings(data_dir=tmp_path / "data", llm="extractive", database_url=None)
    header, records = labelled.generate(squad, settings, folds=2)
    store = tmp_path / "labelled.jsonl"
    labelled.write_store(store, header, records)

    read_header, read = labelled.read_store(store)
    assert read_header == header and read == records
    kinds = sorted(r["kind"] for r in records)
    assert kinds == ["answerable"] * 4 + ["unanswerable"] * 4
    # Nothing is right about a question whose article is not indexed.
    assert not any(r["right"] for r in records if r["kind"] == "unanswerable")
    assert any(r["right"] for r in records if r["kind"] == "answerable")
    # Features recompute from the stored evidence exactly as the chain computed them.
    assert labelled.refeaturize(read) == records

    again_header, again = labelled.replay(store, settings)
    assert again_header.dataset_sha256 == header.dataset_sha256
    assert [(r["id"], r["kind"], r["right"]) for r in again] == [
        (r["id"], r["kind"], r["right"]) for r in records
    ]


def test_a_replay_refuses_a_changed_data_set(tmp_path: Path) -> None:
    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps(SQUAD))
    settings = Settings(data_dir=tmp_path / "data", llm="extractive", database_url=None)
    header, records = labelled.generate(squad, settings, folds=2, limit_questions=2)
    store = tmp_path / "labelled.jsonl"
    labelled.write_store(store, header, records)
    squad.write_text(json.dumps({**SQUAD, "version": "changed"}))
    with pytest.raises(ValueError, match="sha256 differs"):
        labelled.replay(store, settings)


def test_features_left_out_of_a_fit_are_not_in_the_calibration(tmp_path: Path) -> None:
    # The shipped Korean fit leaves raw BM25 out: its scale comes from the corpus it was fitted
    # on, and it withheld clear answers from a one-document upload.
    rng = random.Random(5)
    records = []
    for i in range(300):
        answerable = i % 3 != 0
        covered = rng.uniform(0.5, 1.0) if answerable else rng.uniform(0.0, 0.6)
        right = answerable and rng.random() < covered
        records.append(
            {
                "id": f"q{i}",
                "kind": "answerable" if answerable else "unanswerable",
                "article": i // 6,
                "right": right,
                "features": {"question_coverage_cited": covered, "bm25_top": rng.uniform(1, 4)},
            }
        )
    loupe = Loupe(Settings(data_dir=tmp_path / "data", llm="extractive", database_url=None))
    try:
        options = {"dataset": "synthetic", "language": "ko", "training_hash": "h", "install": False}
        kept = loupe.calibrate(records, without=["bm25_top"], **options)  # type: ignore[arg-type]
        assert "bm25_top" not in kept.calibration.features
        assert "question_coverage_cited" in kept.calibration.features
        everything = loupe.calibrate(records, **options)  # type: ignore[arg-type]
        assert "bm25_top" in everything.calibration.features
        with pytest.raises(ValueError, match="No such confidence feature"):
            loupe.calibrate(records, without=["bm25_max"], **options)  # type: ignore[arg-type]
    finally:
        loupe.close()
