"""`python -m core check [--repair]`: does the vector store hold exactly what SQL says?

SQL is the record; the store should hold, for every ready document, `chunk_count` chunks of its
ready version (`content_hash`) and nothing else; for every other document, nothing; and no
chunk of a document SQL does not know. Documents under a live lease are another process's work
in progress and are only counted. Originals on disk are checked too: every ready document's
original exists, and no file is left that no document points at.

Repairs, with `repair=True`: interrupted ingests are recovered as at start-up; other versions'
chunks, chunks of documents that are not ready and chunks of unknown documents are deleted; a
ready document whose chunks are missing or miscounted is re-indexed from its original (marked
failed when the original is gone); unreferenced originals are deleted once older than a lease.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select

from core.db import queries
from core.db.models import Document, DocumentStatus
from core.ingest.pipeline import Ingestor

Problem = Literal[
    "miscounted",  # ready, but the store holds another number of chunks of its version
    "other_version",  # ready, and the store also holds chunks of another version
    "unready_chunks",  # not ready (failed, pending, interrupted), yet chunks are stored
    "unknown_document",  # chunks of a document SQL does not know
    "interrupted",  # left `indexing` (or leased) by an ingest whose lease ran out
    "missing_original",  # ready, but its original file is gone (it cannot be re-indexed)
    "orphan_file",  # an original no document points at
]


@dataclass(frozen=True)
class Mismatch:
    problem: Problem
    document_id: str | None
    name: str | None
    detail: str
    repair: str | None = None  # what --repair did about it

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckReport:
    documents: int = 0
    ready: int = 0
    chunks: int = 0
    in_progress: int = 0  # under a live lease: not judged
    mismatches: list[Mismatch] = field(default_factory=list)
    repaired: bool = False

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "documents": self.documents,
            "ready": self.ready,
            "chunks": self.chunks,
            "in_progress": self.in_progress,
            "repaired": self.repaired,
            "mismatches": [m.as_dict() for m in self.mismatches],
        }


def check(ingestor: Ingestor, *, repair: bool = False) -> CheckReport:
    """Compare SQL with the store and the files directory; with `repair`, fix what differs
    and report what was done. A mismatch is reported only if a second look finds it too, so a
    document that an ingest finished between the two reads is not reported."""
    if repair:
        ingestor.recover_interrupted()
    first = _find(ingestor)
    if first.ok:
        return first
    second = _find(ingestor)
    seen = {(m.problem, m.document_id, m.detail) for m in first.mismatches}
    second.mismatches = [
        m for m in second.mismatches if (m.problem, m.document_id, m.detail) in seen
    ]
    if repair and second.mismatches:
        second.mismatches = [_repair(ingestor, m) for m in second.mismatches]
        second.repaired = True
    return second


def _find(ingestor: Ingestor) -> CheckReport:
    report = CheckReport()
    with ingestor.db.session() as s:
        docs = list(s.scalars(select(Document).where(Document.workspace == ingestor.workspace)))
        known_ids = set(s.scalars(select(Document.id)))
        stored_paths = {p for p in s.scalars(select(Document.stored_path)) if p}
    counts: Counter[tuple[str, str]] = ingestor.store.version_counts()
    by_document: dict[str, Counter[str]] = {}
    for (document_id, digest), n in counts.items():
        by_document.setdefault(document_id, Counter())[digest] += n
    report.documents = len(docs)
    report.chunks = sum(counts.values())
    found = report.mismatches
    for doc in docs:
        versions = by_document.pop(doc.id, Counter())
        if not ingestor.leases.expired(doc):
            report.in_progress += 1
            continue
        if doc.status == DocumentStatus.indexing or doc.lease_owner is not None:
            found.append(
                Mismatch("interrupted", doc.id, doc.name, "its ingest stopped without finishing")
            )
            continue
        if doc.status != DocumentStatus.ready:
            if versions:
                found.append(
                    Mismatch(
                        "unready_chunks",
                        doc.id,
                        doc.name,
                        f"{doc.status}, yet {sum(versions.values())} chunks are stored",
                    )
                )
            continue
        report.ready += 1
        held = versions.pop(doc.content_hash, 0)
        if held != doc.chunk_count:
            found.append(
                Mismatch(
                    "miscounted",
                    doc.id,
                    doc.name,
                    f"SQL says {doc.chunk_count} chunks, the store holds {held}",
                )
            )
        if versions:
            found.append(
                Mismatch(
                    "other_version",
                    doc.id,
                    doc.name,
                    f"{sum(versions.values())} chunks of {len(versions)} other version(s)",
                )
            )
        if not doc.stored_path or not Path(doc.stored_path).exists():
            found.append(
                Mismatch("missing_original", doc.id, doc.name, f"{doc.stored_path} is missing")
            )
    for document_id, versions in by_document.items():
        if document_id not in known_ids:
            found.append(
                Mismatch(
                    "unknown_document",
                    document_id,
                    None,
                    f"{sum(versions.values())} chunks of a document SQL does not know",
                )
            )
    found.extend(_orphan_files(ingestor, stored_paths))
    return report


def _orphan_files(ingestor: Ingestor, stored_paths: set[str]) -> list[Mismatch]:
    """Files no document points at, once older than a lease (younger ones may belong to an
    ingest that has written the file and is about to commit its row)."""
    if not ingestor.files_dir.exists():
        return []
    referenced = {str(Path(p).resolve()) for p in stored_paths}
    cutoff = time.time() - ingestor.leases.seconds
    orphans = []
    for path in sorted(ingestor.files_dir.iterdir()):
        if not path.is_file() or str(path.resolve()) in referenced:
            continue
        if path.stat().st_mtime > cutoff:
            continue
        orphans.append(Mismatch("orphan_file", None, path.name, f"{path} is not referenced"))
    return orphans


def _repair(ingestor: Ingestor, mismatch: Mismatch) -> Mismatch:
    store, document_id = ingestor.store, mismatch.document_id
    done: str
    if mismatch.problem == "orphan_file":
        (ingestor.files_dir / (mismatch.name or "")).unlink(missing_ok=True)
        done = "deleted the file"
    elif document_id is None:
        done = "nothing to do"
    elif mismatch.problem in ("unready_chunks", "unknown_document"):
        store.delete_document(document_id)
        done = "deleted the chunks"
    elif mismatch.problem == "other_version":
        with ingestor.db.session() as s:
            doc = queries.get_document(s, document_id)
            served = doc.content_hash if doc is not None else None
        if served is None:
            done = "the document is gone"
        else:
            store.delete_document(document_id, keep_content_hash=served)
            done = "deleted the other versions' chunks"
    elif mismatch.problem == "miscounted":
        done = _reindex_or_fail(ingestor, document_id)
    else:  # interrupted (recovered before the check) or missing_original: nothing to rebuild from
        done = "not repairable here: upload the file again"
    return Mismatch(mismatch.problem, document_id, mismatch.name, mismatch.detail, done)


def _reindex_or_fail(ingestor: Ingestor, document_id: str) -> str:
    try:
        result = ingestor.reindex(document_id)
    except FileNotFoundError:
        ingestor.store.delete_document(document_id)
        with ingestor.db.session() as s:
            doc = queries.get_document(s, document_id)
            if doc is not None:
                doc.status = DocumentStatus.failed
                doc.chunk_count = 0
                doc.error = "Its chunks were lost and its original is missing: upload it again."
        return "marked failed (its original is missing)"
    if result.outcome == "failed":
        return f"re-index failed: {result.error}"
    return f"re-indexed ({result.chunks} chunks)"
