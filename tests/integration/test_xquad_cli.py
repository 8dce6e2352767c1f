"""Retrieval quality through the real CLI on public data (XQuAD English, 240 paragraphs,
1,190 questions): the paragraph holding the gold answer must be among the passages Loupe
retrieves or cites for at least 90% of questions, with the extractive answerer.

Each article becomes one Markdown file with a heading per paragraph, so a passage's heading
says exactly which paragraph it came from.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.cli import cli_env, run_core

ROOT = Path(__file__).resolve().parents[2]
XQUAD = (
    Path(os.environ.get("LOUPE_SHARED_DATA", ROOT.parent / "shared" / "data"))
    / "xquad-en"
    / "xquad.en.json"
)
OUTPUT = ROOT / "test-output"


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_core(args, env, timeout=1800)


@pytest.mark.slow
def test_gold_paragraph_is_retrieved_for_90_percent(tmp_path: Path) -> None:
    if not XQUAD.exists():
        pytest.skip(f"{XQUAD} not found (set LOUPE_SHARED_DATA to the shared data folder)")
    articles = json.loads(XQUAD.read_text(encoding="utf-8"))["data"]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    questions: list[str] = []
    gold: list[tuple[str, str]] = []  # (file name, paragraph heading)
    for a, article in enumerate(articles):
        name = f"article-{a:02d}.md"
        parts = [f"# {article['title']}"]
        for p, paragraph in enumerate(article["paragraphs"]):
            heading = f"Paragraph {p + 1}"
            parts.append(f"## {heading}\n\n{paragraph['context']}")
            for qa in paragraph["qas"]:
                questions.append(qa["question"].replace("\n", " ").strip())
                gold.append((name, heading))
        (corpus / name).write_text("\n\n".join(parts), encoding="utf-8")
    assert len(questions) == 1190

    env = cli_env(tmp_path / "data")
    ingest = run_cli(["ingest", str(corpus), "--json"], env)
    assert ingest.returncode == 0, ingest.stderr
    outcomes = json.loads(ingest.stdout)
    assert [o["outcome"] for o in outcomes] == ["indexed"] * len(articles)

    questions_file = tmp_path / "questions.txt"
    questions_file.write_text("\n".join(questions), encoding="utf-8")
    asked = run_cli(["ask", "--questions-file", str(questions_file), "--json"], env)
    assert asked.returncode == 0, asked.stderr
    answers = [json.loads(line) for line in asked.stdout.splitlines()]
    assert len(answers) == len(questions)

    retrieved = cited = 0
    for answer, (name, heading) in zip(answers, gold, strict=True):
        assert answer["answer_id"] and answer["confidence"]["label"] in ("high", "medium", "low")

        hits = [
            s
            for s in answer["sources"]
            if s["document"] == name and (s["heading"] or "").endswith(heading)
        ]
        retrieved += bool(hits)
        cited += any(s["cited"] for s in hits)
    share = retrieved / len(questions)
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "xquad-cli.json").write_text(
        json.dumps(
            {
                "questions": len(questions),
                "gold_retrieved": share,
                "gold_cited": cited / len(questions),
            },
            indent=2,
        )
    )
    assert share >= 0.90, f"gold paragraph retrieved for only {share:.1%} of questions"
