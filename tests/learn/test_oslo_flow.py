"""Issue #11's Oslo flow, end to end on the sample documents: an expert corrects the answer to
the Oslo hotel limit citing the CSV row; asking again returns that verified answer itself, with
its citation on the CSV row; re-indexing the CSV with a changed limit makes it stale, so a
fresh answer is served and the verified one is back in the review queue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.auth import Actor
from core.config import Settings
from core.ingest.pipeline import IngestItem
from core.ingest.samples import SAMPLES_DIR
from core.service import Loupe

CSV = "travel-expense-limits.csv"
VERIFIED = "The hotel limit in Oslo is 190 euros per night. [{n}]"
DANA = Actor("dana", "expert")


@pytest.fixture
def loupe(tmp_path: Path, db_url: str) -> Iterator[Loupe]:
    engine = Loupe(Settings(data_dir=tmp_path / "data", database_url=db_url, llm="extractive"))
    engine.load_samples()
    yield engine
    engine.close()


def test_oslo_flow(loupe: Loupe) -> None:
    first = loupe.ask("What is the hotel limit in Oslo?", actor=Actor("uma", "user"))
    row = next(s for s in first.sources if s.document == CSV and "Oslo" in s.quote)
    loupe.review(
        first.answer_id or "",
        "edit",
        edited_answer=VERIFIED.format(n=row.n),
        citation_verdicts={row.n: "supports"},
        actor=DANA,
    )

    again = loupe.ask("what's the hotel limit in Oslo", actor=Actor("ursula", "user"))
    assert again.generator == "verified"
    assert again.answer == VERIFIED.format(n=1)  # numbered as shown: [1] is the first passage
    [source] = again.sources
    assert (source.n, source.document, source.chunk_id) == (1, CSV, row.chunk_id)
    assert "city: Oslo; country: Norway; hotel_per_night_eur: 190" in source.quote and source.cited
    assert again.verified is not None and again.verified.expert == "dana"
    assert "Verified by dana" in again.confidence.reasons[0]
    # Another city is not the same question.
    assert loupe.ask("What is the hotel limit in Singapore?").generator != "verified"
    # The verified question has left the queue.
    assert first.answer_id not in {i.answer.answer_id for i in loupe.review_queue(reviewed=False)}

    changed = (SAMPLES_DIR / CSV).read_text().replace("Oslo,Norway,190", "Oslo,Norway,205")
    [result] = loupe.ingest([IngestItem(CSV, changed.encode())])
    assert result.outcome in {"indexed", "updated"}, result

    stale = loupe.ask("What is the hotel limit in Oslo?")
    assert stale.generator != "verified"
    assert "out of date" in (stale.notice or "") and CSV in (stale.notice or "")
    assert any("205" in s.quote for s in stale.sources)
    queue = {i.answer.answer_id: i for i in loupe.review_queue(reviewed=False)}
    back = queue[first.answer_id or ""]
    assert back.stale and "changed" in back.stale
    assert back.decision is not None and back.decision.kind == "corrected"
