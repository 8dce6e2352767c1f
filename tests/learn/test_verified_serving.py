"""A verified answer is served with its markers renumbered to the passages shown, and is stale
once those passages are no longer in the current version of their documents."""

from __future__ import annotations

from core.db.learning import DocumentVersion
from core.learn.verified import resolve, stale_reason
from core.stores.base import chunk_id

SOURCES = [
    {
        "n": 1,
        "chunk_id": chunk_id("d-md", "h-md", 0),
        "document_id": "d-md",
        "document": "handbook.md",
        "quote": "Travel is booked through the desk.",
        "cited": False,
    },
    {
        "n": 2,
        "chunk_id": chunk_id("d-csv", "h-csv", 1),
        "document_id": "d-csv",
        "document": "limits.csv",
        "quote": "Oslo,Norway,190,70",
        "cited": True,
    },
    {
        "n": 3,
        "chunk_id": chunk_id("d-csv", "h-csv", 5),
        "document_id": "d-csv",
        "document": "limits.csv",
        "quote": "Singapore,Singapore,210,55",
        "cited": True,
    },
]


def test_markers_are_renumbered_to_the_passages_shown() -> None:
    resolved = resolve(
        "The hotel limit in Oslo is 190 euros per night. [2] Not 210 [3][9].", SOURCES
    )
    assert resolved.text == "The hotel limit in Oslo is 190 euros per night. [1] Not 210 [2]."
    assert [(p["n"], p["quote"]) for p in resolved.passages] == [
        (1, "Oslo,Norway,190,70"),
        (2, "Singapore,Singapore,210,55"),
    ]
    assert resolve("No markers at all.", SOURCES).passages == []


def test_stale_when_the_document_changed_or_went() -> None:
    passages = resolve("190 euros [2].", SOURCES).passages
    current = {"d-csv": DocumentVersion("d-csv", "limits.csv", "h-csv", "ready", 7)}
    assert stale_reason(passages, current) is None
    changed = {"d-csv": DocumentVersion("d-csv", "limits.csv", "h-new", "ready", 7)}
    assert "changed" in (stale_reason(passages, changed) or "")
    assert "deleted" in (stale_reason(passages, {}) or "")
    shorter = {"d-csv": DocumentVersion("d-csv", "limits.csv", "h-csv", "ready", 1)}
    assert stale_reason(passages, shorter) is not None  # position 1 no longer exists
