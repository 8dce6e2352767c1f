"""The regression gate: `python -m core eval --feedback --fail-below X` (and `make eval`).

The feedback eval set is what experts approved. Replaying it against the current model,
prompt and retrieval settings says how often Loupe still gives the answer they stand by:
*agreement*, the share of replayed answers whose token F1 against the expert's answer is at
least 0.5 (core.evaluation.squad.RIGHT_F1). The gate fails when agreement is below X, or below
the last run that passed on the same eval set, so a change that makes answers worse is caught
before it ships, even when it stays above the floor.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Agreement may wobble this much below the last passing run without failing: replays with an
# LLM are not bit-for-bit repeatable. Extractive replays are, so any real drop shows.
TOLERANCE = 0.005


@dataclass(frozen=True)
class GateResult:
    passed: bool
    agreement: float
    threshold: float
    previous: float | None
    previous_record: str | None
    reasons: list[str]


def agreement(record: dict[str, Any]) -> float:
    """The share of replayed answers agreeing with the approved ones."""
    return float(record["metrics"]["agreement"])


def _previous_pass(record: dict[str, Any]) -> dict[str, Any] | None:
    """The newest earlier feedback record on the same eval set whose gate passed."""
    path = Path(record["path"])
    candidates = sorted(path.parent.glob("*-feedback*.json"), reverse=True)
    for candidate in candidates:
        if candidate == path or candidate.name > path.name:
            continue
        try:
            earlier = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (
            earlier.get("kind") == "feedback"
            and earlier.get("dataset", {}).get("path") == record["dataset"]["path"]
            and earlier.get("gate", {}).get("passed")
        ):
            return earlier
    return None


def check(record: dict[str, Any], threshold: float) -> GateResult:
    """Judge a feedback record, and write the verdict into it (so the next run can find the
    last passing one)."""
    value = agreement(record)
    previous = _previous_pass(record)
    before = agreement(previous) if previous else None
    reasons = []
    if value < threshold:
        reasons.append(f"agreement {value:.1%} is below the floor {threshold:.1%}")
    if before is not None and value < before - TOLERANCE:
        reasons.append(
            f"agreement {value:.1%} is below the last passing run's {before:.1%} "
            f"({previous['path'] if previous else ''})"
        )
    result = GateResult(
        passed=not reasons,
        agreement=round(value, 4),
        threshold=threshold,
        previous=None if before is None else round(before, 4),
        previous_record=previous["path"] if previous else None,
        reasons=reasons,
    )
    record["gate"] = asdict(result)
    Path(record["path"]).write_text(
        json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return result
