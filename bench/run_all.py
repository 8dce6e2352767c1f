"""Run every benchmark, each step in its own process, then write bench/RESULTS.md.

    .venv/bin/python -m bench.run_all            # the full run (`make bench`), < 30 min on 2 cores
    .venv/bin/python -m bench.run_all --quick    # every code path on small sizes, for development

Steps run in a fixed order because later ones reuse what earlier ones cached in the work dir
(`BENCH_WORK_DIR`, default /tmp/loupe-bench): seed vectors, the prepared ArguAna chunks, the
synthetic stores. A failed step is reported and the run goes on; RESULTS.md says what is
missing. Each step's full output goes to the work dir's logs/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from typing import Any

from bench.common import FULL, QUICK, RESULTS_DIR, ROOT, WORK_DIR, machine, save_result


def steps(quick: bool) -> list[tuple[str, list[str]]]:
    s = QUICK if quick else FULL
    plan = [
        ("setup", ["bench.common"]),
        ("ingest", ["bench.ingest"]),
        ("baseline prepare", ["bench.baseline", "prepare"]),
        ("baseline arguana loupe", ["bench.baseline", "arguana", "loupe"]),
        ("baseline arguana langchain", ["bench.baseline", "arguana", "langchain"]),
        ("embedding backends", ["bench.embedding_backends"]),
    ]
    for size in s.query_sizes:
        plan += [
            (f"query build {size}", ["bench.query", "build", str(size)]),
            (f"query run {size}", ["bench.query", "run", str(size)]),
        ]
    plan += [
        ("baseline synthetic loupe", ["bench.baseline", "synthetic", "loupe"]),
        ("baseline synthetic langchain", ["bench.baseline", "synthetic", "langchain"]),
        ("profile", ["bench.profile_query"]),
    ]
    return plan


def run_step(name: str, module: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run one step, echoing its progress lines and keeping the rest in its log file."""
    log_path = WORK_DIR / "logs" / f"{name.replace(' ', '-')}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", *module],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        for line in process.stdout:
            log_file.write(line)
            if line.startswith("[") and line[1:3].isdigit():
                print("   ", line.rstrip(), flush=True)
        code = process.wait()
    seconds = time.perf_counter() - start
    status = "ok" if code == 0 else f"failed (exit {code}, see {log_path})"
    print(f"== {name}: {status} in {seconds:.0f} s", flush=True)
    if code != 0:
        print("".join(log_path.read_text().splitlines(keepends=True)[-15:]), flush=True)
    return {
        "step": name,
        "seconds": seconds,
        "ok": code == 0,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for development")
    parser.add_argument("--keep", action="store_true", help="keep the work dir's stores")
    args = parser.parse_args()

    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        BENCH_QUICK="1" if args.quick else "0",
        BENCH_WORK_DIR=str(WORK_DIR),
        HF_HUB_OFFLINE="1",  # everything runs on the bundled model; nothing may download
        TOKENIZERS_PARALLELISM="false",
    )
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    for old in RESULTS_DIR.glob("*.json"):
        old.unlink()

    started = machine()
    start = time.perf_counter()
    log = [run_step(name, module, env) for name, module in steps(args.quick)]
    total = time.perf_counter() - start
    save_result(
        "run",
        {
            "scale": "quick" if args.quick else "full",
            "started": started,
            "finished": machine(),
            "wall_s": total,
            "steps": log,
        },
    )
    from bench.report import write_report

    path = write_report()
    print(f"== all steps in {total / 60:.1f} min; wrote {path}", flush=True)
    if not args.keep:
        for store in WORK_DIR.glob("query-*"):
            shutil.rmtree(store, ignore_errors=True)
    if not all(step["ok"] for step in log):
        sys.exit(1)


if __name__ == "__main__":
    main()
