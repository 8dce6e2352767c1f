"""Versions, recovery, `check`, limits and the smaller ingest defects of issue 9, in one process
on real parts (SQLite and Postgres, LanceDB, the bundled embedding model)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from core.config import Settings
from core.db import queries
from core.db.models import DocumentStatus, utcnow
from core.ingest.consistency import check
from core.ingest.pipeline import IngestItem, IngestLimits, plain_error
from core.ingest.serving import ReadyVersions
from core.service import Loupe
from core.stores.base import Chunk, chunk_id
from core.stores.lancedb import retry_conflicts

STORAGE = IngestItem(
    "policy.txt",
    "\n\n".join(
        f"Energy storage rule {i}: batteries " + "store power. " * 50 for i in range(4)
    ).encode(),
)
QUERY = "What are the energy storage rules for batteries?"


@pytest.fixture
def loupe(tmp_path: Path, db_url: str) -> Iterator[Loupe]:
    engine = Loupe(Settings(data_dir=tmp_path / "data", database_url=db_url, llm="extractive"))
    yield engine
    engine.close()


def stray_version(loupe: Loupe, document_id: str, digest: str, n: int = 3) -> None:
    """Chunks of another version of a document, as an unfinished or crashed ingest leaves."""
    vectors = loupe.embeddings.embed_documents([f"energy storage batteries {i}" for i in range(n)])
    loupe.store.upsert(
        [
            Chunk(
                id=chunk_id(document_id, digest, i),
                document_id=document_id,
                text=f"Energy storage batteries, stray version {i}.",
                title="policy.txt",
                position=i,
                content_hash=digest,
                vector=tuple(vector),
            )
            for i, vector in enumerate(vectors)
        ]
    )


def search(loupe: Loupe, k: int = 5) -> list[Chunk]:
    ready = ReadyVersions(loupe.store, loupe.db, loupe.settings.workspace)
    hits = ready.search(QUERY, loupe.embeddings.embed_query(QUERY), k=k, alpha=0.5)
    return [hit.chunk for hit in hits]


def test_search_serves_only_the_version_sql_marks_ready(loupe: Loupe) -> None:
    [result] = loupe.ingest([STORAGE])
    doc = loupe.documents()[0]
    stray_version(loupe, doc.id, "f" * 64, n=8)
    # The raw store returns the stray version (it matches the query better)...
    raw = loupe.store.search(QUERY, loupe.embeddings.embed_query(QUERY), k=5, alpha=0.5)
    assert any(hit.chunk.content_hash == "f" * 64 for hit in raw)
    # ...search through SQL's ready versions never does, and still fills k.
    served = search(loupe, k=4)
    assert len(served) == min(4, result.chunks)
    assert {c.content_hash for c in served} == {doc.content_hash}
    # A document that is not ready is not served at all.
    with loupe.db.session() as s:
        row = queries.get_document(s, doc.id)
        assert row is not None
        row.status = DocumentStatus.indexing
    assert search(loupe) == []


def expire_lease(loupe: Loupe, document_id: str, status: DocumentStatus) -> None:
    with loupe.db.session() as s:
        doc = queries.get_document(s, document_id)
        assert doc is not None
        doc.status = status
        doc.lease_owner = "host:1:dead"
        doc.lease_heartbeat_at = utcnow() - timedelta(minutes=5)
        doc.lease_expires_at = utcnow() - timedelta(minutes=4)


def test_recovery_repairs_an_interrupted_update_and_spares_live_leases(
    loupe: Loupe, tmp_path: Path, db_url: str
) -> None:
    """Before: recovery looked only at `indexing`, so a crashed update kept both versions."""
    [result] = loupe.ingest([STORAGE])
    doc_id = result.document_id or ""
    served = loupe.documents()[0].content_hash
    stray_version(loupe, doc_id, "e" * 64)
    expire_lease(loupe, doc_id, DocumentStatus.ready)
    other = loupe.ingest([IngestItem("other.txt", b"Wind turbines make electricity.")])[0]
    stray_version(loupe, other.document_id or "", "d" * 64)
    with loupe.db.session() as s:  # a live ingest in another process
        row = queries.get_document(s, other.document_id or "")
        assert row is not None
        row.lease_owner = "host:2:alive"
        row.lease_expires_at = utcnow() + timedelta(minutes=5)

    again = Loupe(loupe.settings)
    counts = again.store.version_counts()
    assert counts[(doc_id, served)] == result.chunks and counts[(doc_id, "e" * 64)] == 0
    with again.db.session() as s:
        row = queries.get_document(s, doc_id)
        assert row is not None
        assert row.status == DocumentStatus.ready and row.lease_owner is None
    assert counts[(other.document_id or "", "d" * 64)] == 3  # not touched
    again.close()


def test_check_finds_and_repairs_every_kind_of_mismatch(loupe: Loupe) -> None:
    kept, emptied, failed = loupe.ingest(
        [
            STORAGE,
            IngestItem("wind.txt", b"Wind turbines make electricity from wind."),
            IngestItem("broken.pdf", b"%PDF-1.7 not really"),
        ]
    )
    assert failed.outcome == "failed"
    assert check(loupe.ingestor).ok
    stray_version(loupe, kept.document_id or "", "c" * 64)  # other version of a ready doc
    stray_version(loupe, failed.document_id or "", "b" * 64)  # chunks of a failed doc
    stray_version(loupe, "0" * 32, "a" * 64)  # chunks of a document SQL does not know
    loupe.store.delete_document(emptied.document_id or "")  # a ready doc lost its chunks
    orphan = loupe.settings.files_dir / ("9" * 64 + ".txt")
    orphan.write_text("left behind")
    old = time.time() - 3600
    os.utime(orphan, (old, old))

    report = check(loupe.ingestor)
    problems = sorted((m.problem, m.document_id) for m in report.mismatches)
    assert problems == sorted(
        [
            ("other_version", kept.document_id),
            ("unready_chunks", failed.document_id),
            ("unknown_document", "0" * 32),
            ("miscounted", emptied.document_id),
            ("orphan_file", None),
        ]
    )
    repaired = check(loupe.ingestor, repair=True)
    assert repaired.repaired and all(m.repair for m in repaired.mismatches)
    after = check(loupe.ingestor)
    assert after.ok, after.as_dict()
    assert loupe.store.count(emptied.document_id) == emptied.chunks
    assert not orphan.exists()


def test_commit_conflicts_are_retried_and_errors_read_plainly() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError(
                "lance error: Retryable commit conflict for version 7: This Rewrite transaction "
                "was preempted by concurrent transaction Delete at version 7. Please retry., "
                "/home/runner/work/lance/lance/rust/lance/src/io/commit.rs:1031:29"
            )
        return "done"

    assert retry_conflicts(flaky, what="test") == "done" and len(calls) == 3
    message = plain_error(
        RuntimeError("lance error: Not found: x, /root/lance/rust/lance-io/src/local.rs:12:5")
    )
    assert ".rs" not in message and "/root" not in message
    conflict = plain_error(RuntimeError("Retryable commit conflict for version 3, /a/b.rs:1:2"))
    assert "busy" in conflict and ".rs" not in conflict


def test_file_over_the_size_limit_is_refused_unread(loupe: Loupe, tmp_path: Path) -> None:
    loupe.ingestor.limits = IngestLimits(max_file_bytes=1024 * 1024, max_chunks=3)
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * (2 * 1024 * 1024))
    small = tmp_path / "small.txt"
    small.write_text("Pumps move water uphill.")
    result, rest = loupe.ingestor.ingest_paths([big, small])
    assert result.outcome == "failed" and "LOUPE_MAX_FILE_MB" in (result.error or "")
    assert "2.0 MB" in (result.error or "")
    assert rest.outcome == "indexed"  # the rest of the batch goes on
    assert [d.name for d in loupe.documents()] == ["small.txt"]
    loupe.delete_document(rest.document_id or "")
    [many] = loupe.ingest([STORAGE])
    assert many.outcome == "failed" and "LOUPE_MAX_CHUNKS_PER_FILE" in (many.error or "")
    assert loupe.store.count() == 0


def test_same_bytes_under_another_type_take_the_new_name(loupe: Loupe) -> None:
    """Before: a failed notes.pdf re-uploaded as notes.md kept kind pdf and name notes.pdf,
    and its next re-index failed."""
    data = b"# Notes\n\nThe canteen opens at 11:30 on weekdays."
    [first] = loupe.ingest([IngestItem("notes.pdf", data)])
    assert first.outcome == "failed"
    [second] = loupe.ingest([IngestItem("notes.md", data)])
    assert second.outcome == "indexed" and second.document_id == first.document_id
    [doc] = loupe.documents()
    assert (doc.name, doc.kind) == ("notes.md", "md")
    assert (doc.stored_path or "").endswith(".md")
    again = loupe.reindex(doc.id)
    assert again.outcome == "indexed", again.error
    assert list(loupe.settings.files_dir.iterdir()) == [Path(doc.stored_path or "")]


def test_originals_of_replaced_and_failed_versions_are_removed(loupe: Loupe) -> None:
    first = loupe.ingest([IngestItem("rules.txt", b"Rule one: wear a helmet on site.")])[0]
    loupe.ingest([IngestItem("rules.txt", b"Rule one: wear a helmet and boots on site.")])
    [doc] = loupe.documents()
    assert doc.id == first.document_id
    assert list(loupe.settings.files_dir.iterdir()) == [Path(doc.stored_path or "")]
    failed = loupe.ingest([IngestItem("rules.txt", b"\x00\x01\x02 binary now")])[0]
    assert failed.outcome == "failed"
    assert list(loupe.settings.files_dir.iterdir()) == [Path(doc.stored_path or "")]


@pytest.mark.parametrize(
    ("name", "words"),
    [("bad\x00name.txt", "NUL character"), ("n" * 600 + ".txt", "604 characters")],
)
def test_unstorable_file_names_are_refused_in_words(loupe: Loupe, name: str, words: str) -> None:
    """Before, on Postgres: "Unexpected error ... [SQL: INSERT INTO documents ...]"."""
    [result] = loupe.ingest([IngestItem(name, b"Some text.")])
    assert result.outcome == "failed" and words in (result.error or "")
    assert "SQL" not in (result.error or "") and loupe.documents() == []


def test_folder_ingest_reports_the_files_it_skips(loupe: Loupe, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("Alpha text about pumps.")
    (folder / "b.md").write_text("# Beta\n\nBeta text about valves.")
    (folder / "logo.png").write_bytes(b"\x89PNG...")
    (folder / "data.xlsx").write_bytes(b"PK...")
    results = loupe.ingestor.ingest_paths([folder])
    outcomes = sorted((Path(r.name).name, r.outcome) for r in results)
    assert outcomes == [
        ("a.txt", "indexed"),
        ("b.md", "indexed"),
        ("data.xlsx", "skipped"),
        ("logo.png", "skipped"),
    ]
    assert all("Unsupported" in (r.error or "") for r in results if r.outcome == "skipped")
