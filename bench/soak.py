"""Soak: two ingest processes, a stream of questions and `documents` calls for N minutes, then
`python -m core check` must find SQL and the vector store in agreement.

    .venv/bin/python -m bench.soak --minutes 5 --backend sqlite
    .venv/bin/python -m bench.soak --minutes 5 --backend postgres --postgres-url URL

What runs at once, all on one data directory and database:
- two ingest workers (long-lived processes), each looping over its own folder plus a folder
  both share; every round rewrites some files (updates: a new version of the same name) and
  adds new ones, so there are new documents, updates, duplicates and same-file races;
- a question worker asking a fixed set of questions through the full chain, and checking every
  retrieval result: a document served in two versions at once is counted as `mixed`;
- a `documents` loop: `python -m core documents --json` as new processes, each start running
  recovery (the start-up that once undid other processes' ingests), counting documents that SQL
  calls ready with 0 chunks.
At the end the workers are stopped between files and `python -m core check --json` runs.
Results go to bench/results/soak-<backend>.json; `python -m bench.report` renders them into
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
TOPICS = [
    ("storage", "batteries store surplus solar power for the evening peak"),
    ("hydrogen", "electrolysers split water into hydrogen with spare wind power"),
    ("turbines", "offshore turbines now reach fifteen megawatts per unit"),
    ("heat", "heat pumps move three units of heat per unit of electricity"),
    ("grid", "the grid operator balances supply and demand every second"),
    ("solar", "solar panels convert about a fifth of sunlight into electricity"),
    ("tides", "tidal barrages run on the twice-daily rise and fall of the sea"),
    ("nuclear", "small modular reactors are built in factories and shipped whole"),
]
QUESTIONS = [f"What does the {topic} policy say?" for topic, _ in TOPICS] + [
    "How much power does an offshore turbine make?",
    "How do heat pumps work?",
    "What splits water into hydrogen?",
]


def document_text(topic: str, fact: str, version: int, paragraphs: int = 6) -> str:
    return "\n\n".join(
        f"{topic.title()} policy, version {version}, part {i}: {fact}. " + f"{fact}. " * 12
        for i in range(paragraphs)
    )


def env(data_dir: Path, db_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "LOUPE_DATA_DIR": str(data_dir),
        "DATABASE_URL": db_url,
        "LOUPE_LLM": "extractive",
        "LOUPE_EMBED_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }


# -- workers (run as `python -m bench.soak worker-...` in their own processes) ----------------


def ingest_worker(name: str, root: Path, stop: Path, out: Path) -> None:
    from core.service import Loupe

    loupe = Loupe()
    (stop.parent / f"{name}.ready").write_text("")
    rng = random.Random(name)
    own, shared = root / name, root / "shared"
    outcomes: Counter[str] = Counter()
    errors: list[str] = []
    rounds = 0
    while not stop.exists():
        rounds += 1
        # Update a couple of own files, add a new one now and then; touch a shared file too.
        for i in rng.sample(range(4), 2):
            topic, fact = TOPICS[(i + len(name)) % len(TOPICS)]
            (own / f"{name}-{i}.txt").write_text(document_text(topic, fact, rounds))
        if rounds % 3 == 0:
            topic, fact = rng.choice(TOPICS)
            (own / f"{name}-new-{rounds}.md").write_text(f"# {topic}\n\n{fact}.\n")
        for result in loupe.ingest_paths([own, shared]):
            outcomes[result.outcome] += 1
            if result.outcome == "failed":
                errors.append(f"{result.name}: {result.error}")
    loupe.close()
    out.write_text(json.dumps({"rounds": rounds, "outcomes": outcomes, "errors": errors[:20]}))


def ask_worker(stop: Path, out: Path) -> None:
    from core.service import Loupe

    loupe = Loupe()
    (stop.parent / "ask.ready").write_text("")
    asked = mixed = hits = 0
    generators: Counter[str] = Counter()
    latencies: list[float] = []
    while not stop.exists():
        question = QUESTIONS[asked % len(QUESTIONS)]
        asked += 1
        started = time.perf_counter()
        result = loupe.ask(question)
        latencies.append(time.perf_counter() - started)
        generators[result.generator] += 1
        # What the chain retrieved, with the version of every chunk.
        versions: dict[str, set[str]] = {}
        for hit in loupe.chain.retriever.search(question):
            versions.setdefault(hit.chunk.document_id, set()).add(hit.chunk.content_hash)
            hits += 1
        mixed += sum(len(v) > 1 for v in versions.values())
    loupe.close()
    latencies.sort()
    out.write_text(
        json.dumps(
            {
                "asked": asked,
                "hits": hits,
                "mixed_version_results": mixed,
                "generators": generators,
                "p50_seconds": latencies[len(latencies) // 2] if latencies else None,
            }
        )
    )


# -- the conductor ------------------------------------------------------------------------


def prepare(root: Path) -> None:
    for name in ("a", "b"):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(4):
            topic, fact = TOPICS[(i + len(name)) % len(TOPICS)]
            (root / name / f"{name}-{i}.txt").write_text(document_text(topic, fact, 0))
    (root / "shared").mkdir(parents=True, exist_ok=True)
    for topic, fact in TOPICS[:4]:
        (root / "shared" / f"shared-{topic}.txt").write_text(document_text(topic, fact, 0, 3))


def database_url(backend: str, postgres_url: str | None, root: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{root / 'loupe.db'}"
    if not postgres_url:
        raise SystemExit("--postgres-url is needed for --backend postgres")
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from core.db.session import make_engine

    schema = f"soak_{uuid.uuid4().hex[:12]}"
    engine = make_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def soak(backend: str, minutes: float, postgres_url: str | None, work: Path) -> dict[str, Any]:
    root = work / f"soak-{backend}-{uuid.uuid4().hex[:6]}"
    root.mkdir(parents=True)
    prepare(root / "corpus")
    db_url = database_url(backend, postgres_url, root)
    environment = env(root / "data", db_url)
    stop = root / "stop"
    me = [sys.executable, "-m", "bench.soak"]

    def start(*args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*me, *args], env=environment, cwd=ROOT, stderr=open(root / f"{args[1]}.log", "wb")
        )

    started = time.monotonic()
    # The first process migrates the schema; the rest find it at head.
    subprocess.run(
        [sys.executable, "-m", "core", "documents", "--json"],
        env=environment, cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    workers = [
        start("worker-ingest", "a", str(root / "corpus"), str(stop), str(root / "a.json")),
        start("worker-ingest", "b", str(root / "corpus"), str(stop), str(root / "b.json")),
        start("worker-ask", "ask", str(stop), str(root / "ask.json")),
    ]
    # The clock starts once every worker has loaded its model (a minute on a busy machine).
    while not all((root / f"{n}.ready").exists() for n in ("a", "b", "ask")):
        if any(process.poll() is not None for process in workers):
            raise SystemExit(f"a worker died on start-up; see the logs in {root}")
        time.sleep(0.5)
    startup_seconds = time.monotonic() - started
    listings = zero_chunk_ready = listing_errors = 0
    statuses: Counter[str] = Counter()
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        listed = subprocess.run(
            [sys.executable, "-m", "core", "documents", "--json"],
            env=environment, cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        listings += 1
        if listed.returncode != 0:
            listing_errors += 1
            continue
        for row in json.loads(listed.stdout or "[]"):
            statuses[row["status"]] += 1
            zero_chunk_ready += row["status"] == "ready" and row["chunks"] == 0
    stop.write_text("")
    for process in workers:
        process.wait(timeout=600)
    checked = subprocess.run(
        [sys.executable, "-m", "core", "check", "--json"],
        env=environment, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    report = json.loads(checked.stdout) if checked.stdout.strip() else {"error": checked.stderr}
    ingest = [json.loads((root / f"{n}.json").read_text()) for n in ("a", "b")]
    outcomes: Counter[str] = Counter()
    for part in ingest:
        outcomes.update(part["outcomes"])
    return {
        "backend": backend,
        "minutes": minutes,
        "wall_seconds": round(time.monotonic() - started, 1),
        "startup_seconds": round(startup_seconds, 1),
        "ingest_rounds": [part["rounds"] for part in ingest],
        "ingest_outcomes": dict(outcomes),
        "ingest_errors": [e for part in ingest for e in part["errors"]][:20],
        "questions": json.loads((root / "ask.json").read_text()),
        "documents_calls": listings,
        "documents_call_errors": listing_errors,
        "ready_with_zero_chunks_seen": zero_chunk_ready,
        "statuses_seen": dict(statuses),
        "check_exit_code": checked.returncode,
        "check": report,
        "mismatches": len(report.get("mismatches", [])) if "mismatches" in report else None,
        "load_average_end": list(os.getloadavg()),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker-ingest":
        ingest_worker(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "worker-ask":
        ask_worker(Path(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--postgres-url", default=os.environ.get("LOUPE_TEST_POSTGRES_URL"))
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/loupe-soak"))
    args = parser.parse_args()
    result = soak(args.backend, args.minutes, args.postgres_url, args.work_dir)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"soak-{args.backend}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
