"""Evaluation records: the settings, machine and versions behind each run, saved as JSON
under `<data_dir>/evals/` so two runs can be compared later and a figure traced back to what
produced it; plus the helpers every runner shares (isolated settings, progress)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from core.config import Settings

if TYPE_CHECKING:
    pass

Progress = Callable[[str, int, int], None]
Record = dict[str, Any]
_VERSIONED_PACKAGES = ("lancedb", "sentence-transformers", "langchain-core")
_REPO = Path(__file__).resolve().parents[2]


def mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return sum(items) / len(items) if items else None


def report_progress(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


def isolated_settings(settings: Settings, data_dir: Path, alpha: float | None) -> Settings:
    """The configured models and retrieval settings over an empty, private data directory
    (SQLite and LanceDB), so evaluation documents never reach the user's index."""
    update: dict[str, Any] = {"data_dir": data_dir, "database_url": None, "vector_store": "lancedb"}
    if alpha is not None:
        update["hybrid_alpha"] = alpha
    return settings.model_copy(update=update)


def round_or_none(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def run_config(settings: Settings, embedding_model: str, alpha: float | None) -> dict[str, Any]:
    return {
        "embeddings": settings.embeddings,
        "embedding_model": embedding_model,
        "hybrid_alpha": settings.hybrid_alpha if alpha is None else alpha,
        "retrieval_k": settings.retrieval_k,
        "llm": settings.llm,
        "llm_model": settings.llm_model if settings.llm_enabled else "extractive",
        "llm_base_url": settings.openai_base_url if settings.llm_enabled else None,
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "min_vector_similarity": settings.min_vector_similarity,
    }


def package_versions(packages: Sequence[str] = _VERSIONED_PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _cpu_model() -> str:
    model = platform.processor() or "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return model
    for line in lscpu.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return model


def machine_info() -> dict[str, Any]:
    """Where a run happened, for `core eval` records and `bench/` alike. Load average and
    torch's thread count are kept because speed figures on a shared machine mean little without
    them (an oversubscribed torch can be ten times slower per query)."""
    torch = sys.modules.get("torch")
    pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "ram_gib": round(pages * page_size / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def git_info() -> dict[str, Any]:
    """The commit the code ran at, and whether the tree had uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=_REPO, capture_output=True, text=True, timeout=5
        )
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=_REPO,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if commit.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def save_record(
    kind: str,
    settings: Settings,
    *,
    dataset: dict[str, Any],
    config: dict[str, Any],
    metrics: dict[str, Any],
    notes: list[str],
    started: float,
) -> Record:
    now = datetime.now(UTC)
    folder = settings.data_dir / "evals"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{now:%Y%m%dT%H%M%SZ}-{kind}"
    path = folder / f"{stem}.json"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.json"
    record: Record = {
        "kind": kind,
        "created_at": now.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "dataset": dataset,
        "config": config,
        "metrics": metrics,
        "notes": notes,
        "versions": package_versions(),
        "machine": machine_info(),
        "git": git_info(),
        "path": str(path),
    }
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return record


def load_record(path: Path) -> Record:
    record: Record = json.loads(path.read_text(encoding="utf-8"))
    if "metrics" not in record:
        raise ValueError(f"{path} is not an evaluation record")
    return record


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


@dataclass(frozen=True)
class Difference:
    key: str
    a: Any
    b: Any
    delta: float | None  # b - a, for numbers


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def compare_records(a: Record, b: Record) -> tuple[list[Difference], list[Difference]]:
    """(metric rows, config rows that differ): every numeric metric of either record with
    B − A, and the settings that changed between the runs, which usually explain the rest."""
    metrics_a, metrics_b = _flatten(a["metrics"]), _flatten(b["metrics"])
    rows = []
    for key in dict.fromkeys([*metrics_a, *metrics_b]):
        va, vb = metrics_a.get(key), metrics_b.get(key)
        if not (_number(va) or _number(vb)):
            continue
        delta = round(vb - va, 4) if _number(va) and _number(vb) else None
        rows.append(Difference(key, va, vb, delta))
    config_a, config_b = _flatten(a.get("config", {})), _flatten(b.get("config", {}))
    changed = [
        Difference(key, config_a.get(key), config_b.get(key), None)
        for key in dict.fromkeys([*config_a, *config_b])
        if config_a.get(key) != config_b.get(key)
    ]
    return rows, changed
