"""Worst-case answer time with a dead or faulty LLM, per fault kind.

    python -m bench.llm_deadline [--budget 20] [--duration 150] [--json out.json]

Loupe answers questions through an OpenAI-compatible server on loopback that fails on purpose
(bench/faulty_llm.py), with the default settings except the server address: the read timeout
(`LOUPE_LLM_TIMEOUT`, 60 s) and one retry. Each fault is asked once on a fresh engine (so the
circuit breaker starts closed), with a wall clock around `ask`; `breaker open` is the question
after `LOUPE_LLM_BREAKER_FAILURES` failures. The target: every row within budget + 2 s.

The server gives up on a fault after `--duration` seconds, so a client without a deadline
(the code before the budget) still ends, and its time shows as at least that long.
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.faulty_llm import FaultyLLM, faulty_llm
from core.config import Settings
from core.ingest.pipeline import IngestItem
from core.service import Loupe

DOCUMENT = IngestItem(
    "leave-policy.txt",
    b"New employees receive 25 days of paid annual leave.\n\n"
    b"Unused leave can be carried over until the end of March of the following year.",
)
QUESTION = "How many days of paid annual leave do new employees get?"
FOLLOW_UP = "And how long can it be carried over?"
FAULTS = ["ok", "keepalive", "drip", "hang", "retry_after", "truncated", "length", "error"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def engine(base_url: str, **overrides: Any) -> Iterator[Loupe]:
    with tempfile.TemporaryDirectory(prefix="loupe-llm-bench-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=f"sqlite:///{tmp}/loupe.db",
            llm="openai",
            llm_model="faulty",
            openai_base_url=base_url,
            **overrides,
        )
        loupe = Loupe(settings)
        try:
            loupe.ingest([DOCUMENT])
            yield loupe
        finally:
            loupe.close()


def timed(loupe: Loupe, question: str, **kwargs: Any) -> dict[str, Any]:
    start = time.perf_counter()
    result = loupe.ask(question, **kwargs)
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "generator": result.generator,
        "notice": (result.notice or "")[:110],
    }


def measure(server: FaultyLLM, overrides: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for fault in FAULTS:
        with engine(server.base_url, **overrides) as loupe:
            server.fault = "ok"
            loupe.ask(QUESTION)  # warm: the embedding model and the connection pool
            server.fault = fault
            rows.append({"fault": fault, **timed(loupe, QUESTION)})
    with engine(server.base_url, **overrides) as loupe:
        server.fault = "ok"
        conversation = loupe.new_conversation()
        loupe.ask(QUESTION, conversation_id=conversation)
        server.fault = "hang"
        rows.append(
            {"fault": "hang, follow-up", **timed(loupe, FOLLOW_UP, conversation_id=conversation)}
        )
    with engine(f"http://127.0.0.1:{free_port()}/v1", **overrides) as loupe:
        rows.append({"fault": "server down", **timed(loupe, QUESTION)})
    with engine(server.base_url, **overrides) as loupe:
        server.fault = "error"
        failures = int(getattr(loupe.settings, "llm_breaker_failures", 0) or 0)
        for _ in range(failures):
            loupe.ask(QUESTION)
        if failures:
            rows.append({"fault": "breaker open", **timed(loupe, QUESTION)})
    server.fault = "ok"
    return rows


def table(rows: list[dict[str, Any]], budget: float) -> str:
    lines = [
        f"| fault | generator | answer time (s) | within {budget:g} + 2 s | notice |",
        "|---|---|---:|---|---|",
    ]
    for row in rows:
        ok = "yes" if row["seconds"] <= budget + 2 else "**no**"
        notice = row["notice"].replace("|", "\\|")
        lines.append(
            f"| {row['fault']} | {row['generator']} | {row['seconds']:.2f} | {ok} | {notice} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=None, help="LOUPE_LLM_BUDGET (s)")
    parser.add_argument("--duration", type=float, default=150.0, help="when the server gives up")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    overrides: dict[str, Any] = {} if args.budget is None else {"llm_budget": args.budget}
    budget = float(Settings(**overrides).model_dump().get("llm_budget", 20.0))
    with faulty_llm(interval=0.5, duration=args.duration) as server:
        rows = measure(server, overrides)
    print(table(rows, budget))
    if args.json:
        args.json.write_text(json.dumps({"budget": budget, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
