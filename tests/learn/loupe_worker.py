"""A Loupe process driven over stdin/stdout, one JSON command a line, for tests that need two
real processes on one database (two app replicas, or the app and the CLI).

Commands: {"op": "ingest", "name", "text"}, {"op": "ask", "question"}, {"op": "review",
"answer_id", "decision", "reason"?, "verdicts"?}, {"op": "boosts"}, {"op": "quit"}.
Settings come from the environment (LOUPE_DATA_DIR, LOUPE_DATABASE_URL, LOUPE_LLM).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from core.ingest.pipeline import IngestItem
from core.service import Loupe


def handle(loupe: Loupe, command: dict[str, Any]) -> dict[str, Any]:
    op = command["op"]
    if op == "ingest":
        results = loupe.ingest([IngestItem(command["name"], command["text"].encode())])
        return {"outcome": results[0].outcome}
    if op == "ask":
        result = loupe.ask(command["question"])
        return {
            "answer_id": result.answer_id,
            "answer": result.answer,
            "generator": result.generator,
            "verified": None if result.verified is None else result.verified.question,
            "sources": [[s.n, s.chunk_id, s.cited] for s in result.sources],
        }
    if op == "review":
        loupe.review(
            command["answer_id"],
            command["decision"],
            reason=command.get("reason"),
            citation_verdicts=command.get("verdicts"),
        )
        return {"ok": True}
    if op == "boosts":
        loupe.ask("boosts probe")  # boosts are brought up to date before a question
        return {"boosts": dict(loupe.chain.retriever.boosts)}
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    loupe = Loupe()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "quit":
            break
        try:
            reply = handle(loupe, command)
        except Exception as exc:  # reported to the test, which fails on it
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)
    loupe.close()


if __name__ == "__main__":
    main()
