"""Run Loupe's command line as a user would: `python -m core ...` in a real process, with a
data directory of the test's own and no LLM, database or hybrid setting leaking in from the
developer's environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_LEAKY = ("DATABASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "LOUPE_HYBRID_ALPHA")


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "LOUPE_DATA_DIR": str(data_dir), "LOUPE_LLM": "extractive"}
    for name in _LEAKY:
        env.pop(name, None)
    return {**env, **extra}


def run_core(
    args: list[str], env: dict[str, str], *, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
