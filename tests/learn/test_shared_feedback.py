"""Feedback given in one process changes what another process on the same database does,
within one question: verified answers and retrieval boosts live in SQL, not in memory.
Two real Loupe processes, on SQLite and on Postgres."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
POLICY = (
    "New employees receive 25 days of paid annual leave.\n\n"
    "Unused leave can be carried over until the end of March of the following year."
)
QUESTION = "How many days of paid annual leave do new employees get?"


class Worker:
    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.learn.loupe_worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.read() == {"ready": True}

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the worker process died"
        reply: dict[str, Any] = json.loads(line)
        assert "error" not in reply, reply["error"]
        return reply

    def __call__(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        assert self.process.stdin is not None
        if self.process.poll() is None:
            self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.process.stdin.close()
            self.process.wait(timeout=60)


@pytest.fixture
def workers(tmp_path: Path, db_url: str) -> Iterator[tuple[Worker, Worker]]:
    env = {
        **os.environ,
        "LOUPE_DATA_DIR": str(tmp_path / "data"),
        "LOUPE_DATABASE_URL": db_url,
        "LOUPE_LLM": "extractive",
    }
    env.pop("DATABASE_URL", None)
    first = Worker(env)
    started = [first]
    try:
        assert first("ingest", name="policy.txt", text=POLICY)["outcome"] == "indexed"
        second = Worker(env)  # starts after ingestion, so its vector store sees the chunks
        started.append(second)
        yield first, second
    finally:
        for worker in started:
            worker.close()


def test_an_approval_in_one_process_is_served_by_the_other(
    workers: tuple[Worker, Worker],
) -> None:
    app, cli = workers
    asked = app("ask", question=QUESTION)
    assert asked["verified"] is None
    assert cli("ask", question=QUESTION)["verified"] is None  # the other process has looked once

    cli("review", answer_id=asked["answer_id"], decision="approve")
    assert app("ask", question=QUESTION)["verified"] == QUESTION  # the very next question

    app("review", answer_id=asked["answer_id"], decision="reject", reason="outdated")
    assert cli("ask", question=QUESTION)["verified"] is None


def test_verdicts_in_one_process_boost_retrieval_in_the_other(
    workers: tuple[Worker, Worker],
) -> None:
    app, cli = workers
    asked = app("ask", question=QUESTION)
    assert cli("boosts")["boosts"] == {}
    cited = [(n, chunk) for n, chunk, is_cited in asked["sources"] if is_cited]
    n, chunk = cited[0]
    app("review", answer_id=asked["answer_id"], decision="approve", verdicts={str(n): "supports"})
    boosts = cli("boosts")["boosts"]
    assert boosts[chunk] > 0
