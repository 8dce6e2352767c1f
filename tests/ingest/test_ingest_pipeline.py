"""Ingestion end to end on real parts: loaders, the bundled embedding model, LanceDB, and SQL
(SQLite and Postgres). What matters: bad files fail alone with a reason, nothing is ever left
half-indexed, and SQL and the vector store always agree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fpdf import FPDF

from core.config import Settings
from core.db.models import DocumentStatus
from core.ingest.pipeline import IngestItem, IngestProgress
from core.service import Loupe
from core.stores.lancedb import LanceDBStore


def pdf_bytes(pages: list[str]) -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


GOOD_TXT = IngestItem(
    "turbines.txt",
    b"Wind turbines convert the kinetic energy of wind into electricity. "
    b"A typical onshore turbine has three blades and a rated power of about 3 megawatts.",
)
LATIN1_CSV = IngestItem(
    "cafes.csv",
    (
        "name,city,speciality\n"
        "Caf\u00e9 Central,Wien,M\u00e9lange\n"
        "Caf\u00e9 de Flore,Paris,Cr\u00e8me br\u00fbl\u00e9e\n"
    ).encode("latin-1"),
)


@pytest.fixture
def loupe(tmp_path: Path, db_url: str) -> Iterator[Loupe]:
    engine = Loupe(Settings(data_dir=tmp_path / "data", database_url=db_url, llm="extractive"))
    yield engine
    engine.close()


def chunks_in_store(loupe: Loupe, document_id: str) -> int:
    return loupe.store.count(document_id)


def test_mixed_batch_indexes_good_files_and_explains_bad_ones(loupe: Loupe) -> None:
    good_pdf = IngestItem(
        "report.pdf", pdf_bytes(["Solar capacity grew in 2023.", "Page two on storage batteries."])
    )
    batch = [
        GOOD_TXT,
        IngestItem("broken.pdf", b"%PDF-1.7\n this is not really a pdf"),
        IngestItem("empty.txt", b""),
        IngestItem("binary.txt", bytes(range(256)) * 8),
        LATIN1_CSV,
        good_pdf,
        IngestItem("notes.xyz", b"what is this"),
    ]
    progress: list[IngestProgress] = []
    results = loupe.ingest(batch, progress=progress.append)
    by_name = {r.name: r for r in results}

    assert [r.name for r in results] == [item.name for item in batch]
    for name in ("turbines.txt", "cafes.csv", "report.pdf"):
        assert by_name[name].outcome == "indexed", by_name[name].error
        assert by_name[name].chunks > 0
    assert by_name["report.pdf"].pages == 2
    for name in ("broken.pdf", "empty.txt", "binary.txt", "notes.xyz"):
        assert by_name[name].outcome == "failed"
        assert by_name[name].error and "Traceback" not in by_name[name].error
    assert "PDF" in by_name["broken.pdf"].error
    assert "empty" in by_name["empty.txt"].error.lower()
    assert "Unsupported" in by_name["notes.xyz"].error

    docs = {d.name: d for d in loupe.documents()}
    for name in ("broken.pdf", "empty.txt", "binary.txt"):
        assert docs[name].status == DocumentStatus.failed and docs[name].error
        assert chunks_in_store(loupe, docs[name].id) == 0
    assert "notes.xyz" not in docs  # unsupported types never get a row
    for name in ("turbines.txt", "cafes.csv", "report.pdf"):
        assert docs[name].status == DocumentStatus.ready
        assert chunks_in_store(loupe, docs[name].id) == docs[name].chunk_count

    done = [p for p in progress if p.stage == "done"]
    assert [p.name for p in done] == [item.name for item in batch]
    assert any(p.stage == "embed" and p.total > 0 for p in progress)

    answer = loupe.ask("Which city is Café de Flore in?")
    assert "Paris" in answer.answer
    assert answer.citations and answer.citations[0].document == "cafes.csv"


def test_same_bytes_twice_add_nothing(loupe: Loupe) -> None:
    first = loupe.ingest([GOOD_TXT])[0]
    again = loupe.ingest([GOOD_TXT, IngestItem("copy-of-turbines.txt", GOOD_TXT.data)])
    assert [r.outcome for r in again] == ["duplicate", "duplicate"]
    assert all(r.document_id == first.document_id for r in again)
    assert len(loupe.documents()) == 1
    assert loupe.store.count() == first.chunks


def test_original_is_kept_by_content_hash(loupe: Loupe) -> None:
    result = loupe.ingest([GOOD_TXT])[0]
    doc = loupe.documents()[0]
    stored = Path(doc.stored_path or "")
    assert stored.parent == loupe.settings.files_dir
    assert stored.name == f"{doc.content_hash}.txt"
    assert stored.read_bytes() == GOOD_TXT.data
    assert result.document_id == doc.id


def test_changed_file_replaces_its_old_chunks(loupe: Loupe) -> None:
    first = loupe.ingest([GOOD_TXT])[0]
    newer = IngestItem("turbines.txt", b"Offshore turbines now reach 15 megawatts per unit.")
    second = loupe.ingest([newer])[0]
    assert second.outcome == "updated" and second.document_id == first.document_id
    texts = [c.text for batch in loupe.store.iter_chunks() for c in batch]
    assert texts == [newer.data.decode()]
    doc = loupe.documents()[0]
    assert doc.status == DocumentStatus.ready and doc.chunk_count == 1


class FailingStore(LanceDBStore):
    """A real LanceDB store that writes half of a batch, then fails like a full disk would."""

    fail = True

    def upsert(self, chunks):  # type: ignore[no-untyped-def]
        if self.fail and len(chunks) > 1:
            super().upsert(chunks[: len(chunks) // 2])
            raise OSError("No space left on device")
        super().upsert(chunks)


def _swap_store(loupe: Loupe, store: LanceDBStore) -> None:
    loupe.store = store
    loupe.ingestor.store = store


def long_text(topic: str) -> bytes:
    return "\n\n".join(f"{topic} paragraph {i}: " + "details " * 60 for i in range(6)).encode()


def test_failure_midway_leaves_no_partial_chunks(loupe: Loupe, tmp_path: Path) -> None:
    store = FailingStore(tmp_path / "failing", dimension=384)
    _swap_store(loupe, store)
    result = loupe.ingest([IngestItem("long.txt", long_text("storage"))])[0]
    assert result.outcome == "failed" and "No space left" in (result.error or "")
    doc = loupe.documents()[0]
    assert doc.status == DocumentStatus.failed
    assert store.count() == 0


def test_failed_update_keeps_previous_version(loupe: Loupe, tmp_path: Path) -> None:
    store = FailingStore(tmp_path / "failing", dimension=384)
    store.fail = False
    _swap_store(loupe, store)
    original = loupe.ingest([IngestItem("long.txt", long_text("storage"))])[0]
    store.fail = True
    update = loupe.ingest([IngestItem("long.txt", long_text("hydrogen"))])[0]
    assert update.outcome == "failed"
    doc = loupe.documents()[0]
    assert doc.status == DocumentStatus.ready and "previous one is still served" in (
        doc.error or ""
    )
    texts = [c.text for batch in store.iter_chunks() for c in batch]
    assert len(texts) == original.chunks and all("storage" in t for t in texts)


def test_delete_and_reindex(loupe: Loupe) -> None:
    kept, gone = loupe.ingest([GOOD_TXT, LATIN1_CSV])
    assert loupe.delete_document(gone.document_id or "")
    assert loupe.store.count(gone.document_id) == 0
    assert [d.name for d in loupe.documents()] == ["turbines.txt"]
    assert not loupe.delete_document("no-such-id")

    again = loupe.reindex(kept.document_id or "")
    assert again.outcome == "indexed" and again.chunks == kept.chunks
    assert loupe.store.count(kept.document_id) == kept.chunks


def test_interrupted_indexing_is_recovered_on_start(tmp_path: Path, db_url: str) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url, llm="extractive")
    first = Loupe(settings)
    result = first.ingest([GOOD_TXT])[0]
    with first.db.session() as s:
        from core.db import queries

        doc = queries.get_document(s, result.document_id or "")
        assert doc is not None
        doc.status = DocumentStatus.indexing  # as if the process died mid-way
    first.close()
    second = Loupe(settings)
    doc = second.documents()[0]
    assert doc.status == DocumentStatus.failed and "interrupted" in (doc.error or "")
    assert second.store.count(doc.id) == 0
    second.close()


def test_scanned_pdf_reports_no_text(loupe: Loupe) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(10, 10, 50, 50)
    result = loupe.ingest([IngestItem("scan.pdf", bytes(pdf.output()))])[0]
    assert result.outcome == "failed" and "text" in (result.error or "").lower()


def test_korean_document_is_answerable(loupe: Loupe) -> None:
    text = (
        "서울은 대한민국의 수도이다. 서울의 인구는 약 940만 명이다.\n\n"
        "부산은 대한민국 제2의 도시이다."
    )
    loupe.ingest([IngestItem("도시.txt", text.encode("cp949"))])
    answer = loupe.ask("서울의 인구는 몇 명인가?")
    assert "940만" in answer.answer
    assert answer.citations and answer.citations[0].document == "도시.txt"


def test_delete_removes_the_original_unless_shared(loupe: Loupe) -> None:
    result = loupe.ingest([GOOD_TXT, LATIN1_CSV])
    stored = {d.name: Path(d.stored_path or "") for d in loupe.documents()}
    assert all(p.exists() for p in stored.values())
    loupe.delete_document(result[0].document_id or "")
    assert not stored["turbines.txt"].exists()
    assert stored["cafes.csv"].exists()


def test_a_second_process_sees_new_chunks(loupe: Loupe, tmp_path: Path) -> None:
    # The app keeps its store open while the CLI ingests: reads must see the new version.
    reader = LanceDBStore(
        loupe.settings.lancedb_dir, dimension=384, table=f"chunks_{loupe.settings.workspace}"
    )
    assert reader.count() == 0
    loupe.ingest([GOOD_TXT])
    assert reader.count() > 0
