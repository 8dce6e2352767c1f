"""The sample document set shipped in `samples/`, for a first run with nothing uploaded yet.

The documents are short and fictional (an employee handbook in Markdown, a CSV of travel limits,
an HTML FAQ, Korean benefits notes), so a new user can ask real questions within a minute and
see citations, confidence and feedback work before uploading their own files.
"""

from __future__ import annotations

from pathlib import Path

from core.ingest.pipeline import IngestItem

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "samples"
SAMPLE_TAG = "sample"
# Questions the samples answer well even without a language model, offered to a new user as a
# starting point (the Korean one shows that Korean documents are searchable too).
SAMPLE_QUESTIONS = (
    "How many days of annual leave do new employees get?",
    "How many days a week can I work remotely?",
    "How long is parental leave?",
    "자기계발비는 얼마인가요?",
)


def sample_items() -> list[IngestItem]:
    """The sample files as ingestible items, in name order."""
    return [
        IngestItem(path.name, path.read_bytes())
        for path in sorted(SAMPLES_DIR.iterdir())
        if path.is_file()
    ]
