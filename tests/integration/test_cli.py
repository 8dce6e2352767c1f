"""The CLI as a user runs it: real subprocesses over one data directory, checked through
their JSON output, their exit codes and the SQL rows they leave behind."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from fpdf import FPDF
from sqlalchemy import select

from core.config import Settings
from core.db.models import Answer, Feedback
from core.db.session import Database
from tests.cli import cli_env, run_core

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "data")


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_core(list(args), env, timeout=300)


def write_batch(folder: Path) -> None:
    folder.mkdir()
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in (
        "Annual leave: new employees receive 25 days of paid leave per year.",
        "Parental leave: up to 16 weeks, paid at full salary.",
    ):
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    (folder / "handbook.pdf").write_bytes(bytes(pdf.output()))
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 16)
    offices = "office,city,manager\nHQ,Zürich,Renée François\nLab,Genève,José Müller\n"
    (folder / "offices.csv").write_bytes(offices.encode("latin-1"))


def test_cli_flow(tmp_path: Path, env: dict[str, str]) -> None:
    write_batch(tmp_path / "batch")

    ingest = cli(env, "ingest", str(tmp_path / "batch"), "--json")
    assert ingest.returncode == 3, ingest.stderr  # partial: some files failed
    outcomes = {r["name"]: r for r in json.loads(ingest.stdout)}
    assert outcomes["handbook.pdf"]["outcome"] == "indexed"
    assert outcomes["handbook.pdf"]["pages"] == 2
    assert outcomes["offices.csv"]["outcome"] == "indexed"
    for bad in ("corrupt.pdf", "empty.txt", "binary.txt"):
        assert outcomes[bad]["outcome"] == "failed" and outcomes[bad]["error"]

    again = cli(env, "ingest", str(tmp_path / "batch" / "handbook.pdf"), "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)[0]["outcome"] == "duplicate"

    asked = cli(env, "ask", "How many days of paid leave do new employees get?", "--json")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert "25 days" in answer["answer"]
    assert answer["citations"][0]["document"] == "handbook.pdf"
    assert answer["citations"][0]["page"] == 1
    assert {"n", "document", "page", "chunk_id", "quote"} <= set(answer["citations"][0])
    confidence = answer["confidence"]
    assert set(confidence) == {"score", "label", "reasons", "phrase", "calibration", "threshold"}
    assert 0 <= confidence["score"] <= 1 and confidence["reasons"]
    assert confidence["calibration"], "the shipped calibration is what scores a fresh install"
    assert confidence["score"] >= confidence["threshold"]  # it answered, so it cleared the bar
    assert f"{confidence['score']:.0%}" in confidence["phrase"]
    assert answer["generator"] == "extractive"
    assert {"retrieve", "generate", "total"} <= set(answer["timings"])

    manager = json.loads(cli(env, "ask", "Who manages the office in Zürich?", "--json").stdout)
    assert "Renée François" in manager["answer"]

    unknown = json.loads(
        cli(env, "ask", "What is the airspeed of an unladen swallow?", "--json").stdout
    )
    assert unknown["generator"] == "none" and unknown["citations"] == []
    assert unknown["confidence"]["label"] == "low"

    answer_id = answer["answer_id"]
    assert cli(env, "feedback", answer_id, "--up", "--json").returncode == 0
    edited = cli(
        env,
        "feedback",
        answer_id,
        "--down",
        "--comment",
        "too short",
        "--edit",
        "New employees get 25 days [1].",
        "--verdict",
        "1=supports",
        "--role",
        "expert",
        "--json",
    )
    assert edited.returncode == 0, edited.stderr
    bad_verdict = cli(env, "feedback", answer_id, "--verdict", "7=supports")
    assert bad_verdict.returncode != 0 and "error" in bad_verdict.stderr
    missing = cli(env, "feedback", "no-such-answer", "--up")
    assert missing.returncode != 0

    db = Database.from_settings(Settings(data_dir=Path(env["LOUPE_DATA_DIR"])))
    with db.session() as s:
        row = s.get(Answer, answer_id)
        assert row is not None and row.question.startswith("How many days")
        assert row.sources and row.confidence_label == answer["confidence"]["label"]
        feedback = s.scalars(
            select(Feedback).where(Feedback.answer_id == answer_id).order_by(Feedback.id)
        ).all()
        assert [f.rating for f in feedback] == ["up", "down"]
        assert feedback[1].edited_answer == "New employees get 25 days [1]."
        assert feedback[1].citation_verdicts == {"1": "supports"} and feedback[1].role == "expert"
    db.engine.dispose()

    listed = json.loads(cli(env, "documents", "--json").stdout)
    statuses = {d["name"]: d["status"] for d in listed}
    assert statuses == {
        "handbook.pdf": "ready",
        "offices.csv": "ready",
        "corrupt.pdf": "failed",
        "empty.txt": "failed",
        "binary.txt": "failed",
    }
    handbook = next(d for d in listed if d["name"] == "handbook.pdf")
    deleted = cli(env, "delete", handbook["id"], "--json")
    assert deleted.returncode == 0 and json.loads(deleted.stdout)["deleted"] is True
    after = json.loads(
        cli(env, "ask", "How many days of paid leave do new employees get?", "--json").stdout
    )
    assert all(c["document"] != "handbook.pdf" for c in after["sources"])
    assert cli(env, "delete", handbook["id"]).returncode == 1


def test_cli_check_finds_and_repairs_a_mismatch(tmp_path: Path, env: dict[str, str]) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "pumps.txt").write_text("Pumps move water uphill. " * 20)
    (folder / "logo.png").write_bytes(b"\x89PNG not a document")
    ingest = cli(env, "ingest", str(folder))
    assert ingest.returncode == 0, ingest.stderr
    assert "skipped" in ingest.stdout and "1 skipped (unsupported type)" in ingest.stdout

    agree = cli(env, "check", "--json")
    assert agree.returncode == 0, agree.stderr
    assert json.loads(agree.stdout)["ok"] is True

    from core.stores import lancedb_table
    from core.stores.lancedb import LanceDBStore

    settings = Settings(data_dir=tmp_path / "data")
    table = lancedb_table(settings)
    LanceDBStore(settings.lancedb_dir, dimension=384, table=table).delete_document(
        json.loads(cli(env, "documents", "--json").stdout)[0]["id"]
    )
    found = cli(env, "check", "--json")
    assert found.returncode == 3
    assert [m["problem"] for m in json.loads(found.stdout)["mismatches"]] == ["miscounted"]
    repaired = cli(env, "check", "--repair")
    assert repaired.returncode == 3 and "re-indexed" in repaired.stdout
    assert cli(env, "check").returncode == 0
