"""`make eval` (the regression gate from expert feedback) passes on the default settings and
fails on a deliberately worse one, and a run below the last passing one fails even above the
floor. Real `make`, real CLI processes, the sample documents and the bundled model."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from core.config import Settings
from core.ingest.samples import SAMPLE_QUESTIONS
from core.service import Loupe

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A data directory where an expert approved the answers to the English sample questions."""
    data = tmp_path / "data"
    loupe = Loupe(Settings(data_dir=data, llm="extractive"))
    try:
        loupe.load_samples()
        for question in SAMPLE_QUESTIONS[:3]:
            answer = loupe.ask(question)
            loupe.review(answer.answer_id or "", "approve")
    finally:
        loupe.close()
    env = {**os.environ, "LOUPE_DATA_DIR": str(data), "LOUPE_LLM": "extractive"}
    for name in ("DATABASE_URL", "LOUPE_DATABASE_URL", "LOUPE_MIN_VECTOR_SIMILARITY"):
        env.pop(name, None)
    return env


def make_eval(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "eval", f"VENV={ROOT / '.venv'}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def gate_of(env: dict[str, str]) -> dict[str, object]:
    newest = sorted((Path(env["LOUPE_DATA_DIR"]) / "evals").glob("*-feedback*.json"))[-1]
    gate: dict[str, object] = json.loads(newest.read_text())["gate"]
    return gate


def test_make_eval_passes_by_default_and_fails_on_a_worse_setting(env: dict[str, str]) -> None:
    passed = make_eval(env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "-> PASSED" in passed.stdout
    assert gate_of(env)["agreement"] == 1.0

    # Deliberately worse: a similarity floor no passage reaches, so nothing is answered.
    worse = make_eval({**env, "LOUPE_MIN_VECTOR_SIMILARITY": "0.99"})
    assert worse.returncode != 0
    assert "FAILED" in worse.stdout and "below the floor" in worse.stdout

    # Below the last passing run fails even when the floor is met.
    floorless = make_eval({**env, "LOUPE_MIN_VECTOR_SIMILARITY": "0.99"}, "EVAL_FAIL_BELOW=0")
    assert floorless.returncode != 0
    assert "below the last passing run" in floorless.stdout
    assert gate_of(env)["previous"] == 1.0
