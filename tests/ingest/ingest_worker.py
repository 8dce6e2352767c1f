"""An ingest in its own process that can stop at a chosen step of the pipeline: SIGKILL itself
(a crash: no cleanup, no exception handler runs) or wait for a signal file (an ingest that is
still running while the test starts other processes).

Run as `python tests/integration/ingest_worker.py '<json>'` with keys data_dir, db_url, paths,
lease_seconds, and optionally stage (claimed | writing | written | published | retired), action
(kill | pause) and signal_dir. Prints the results as JSON on its last line.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import core.ingest.pipeline as pipeline  # noqa: E402
from core.config import Settings  # noqa: E402
from core.service import Loupe  # noqa: E402


def main() -> None:
    args = json.loads(sys.argv[1])
    # Two chunks per store write, so "writing" stops with part of the version written.
    pipeline.WRITE_BATCH = 2
    settings = Settings(
        data_dir=Path(args["data_dir"]),
        database_url=args["db_url"],
        llm="extractive",
        ingest_lease_seconds=args["lease_seconds"],
        embed_threads=1,
    )
    loupe = Loupe(settings)
    stage, action = args.get("stage"), args.get("action")
    signals = Path(args.get("signal_dir") or ".")

    def stop() -> None:
        (signals / "reached").write_text(str(stage))
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        while not (signals / "go").exists():
            time.sleep(0.05)

    def before(method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*a: Any, **kw: Any) -> Any:
            stop()
            return method(*a, **kw)

        return wrapped

    ingestor = loupe.ingestor
    if stage == "claimed":
        ingestor._write_version = before(ingestor._write_version)  # type: ignore[method-assign]
    elif stage == "written":
        ingestor._publish = before(ingestor._publish)  # type: ignore[method-assign]
    elif stage == "published":
        ingestor._retire = before(ingestor._retire)  # type: ignore[method-assign]
    elif stage == "retired":
        ingestor._release = before(ingestor._release)  # type: ignore[method-assign]
    elif stage == "writing":
        upsert = ingestor.store.upsert

        def first_batch_then_stop(chunks: Any) -> None:
            upsert(chunks)
            stop()

        ingestor.store.upsert = first_batch_then_stop  # type: ignore[method-assign]
    results = loupe.ingest_paths([Path(p) for p in args["paths"]])
    print(json.dumps([r.__dict__ for r in results]))


if __name__ == "__main__":
    main()
