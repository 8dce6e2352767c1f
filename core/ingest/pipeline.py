"""Ingestion: file → sections → chunks → vectors → store, with SQL status as the record.

Rules that keep the store and SQL consistent, whatever fails and whenever a process dies:
- Idempotent by content hash: the same bytes twice add nothing.
- A version is identified by its content hash, which every chunk carries. Search serves a chunk
  only while SQL marks its document ready with that hash (`core.ingest.serving`), so chunks of a
  version being written, or left behind by a crash, are never served next to the ready one.
- An ingest holds a lease on its document (`core.ingest.lease`) from the claim to the end; a
  start-up repairs only documents whose lease ran out, never another live process's work.
- The steps, each safe to die after: claim (lease; the row exists), write the new version's
  chunks in bounded batches, publish (one SQL update switches the served version), retire the
  old version's chunks and original, release the lease. Dying before publish serves the old
  version (or nothing for a new document); after it, the new one.
- One bad or oversized file never stops a batch; every refusal says why in plain words.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from langchain_core.embeddings import Embeddings
from sqlalchemy import or_, select

from core.db import queries
from core.db.models import Document, DocumentStatus, utcnow
from core.db.session import Database
from core.ingest.chunking import ChunkDraft, ChunkPlan, chunk_sections
from core.ingest.lease import Leases, lock_claims
from core.ingest.loaders import (
    SUPPORTED_EXTENSIONS,
    LoaderError,
    ZipLimits,
    detect_kind,
    load_bytes,
)
from core.stores.base import Chunk, VectorStore, chunk_id

log = logging.getLogger(__name__)

Outcome = Literal["indexed", "updated", "duplicate", "failed", "skipped"]
Stage = Literal["parse", "embed", "index", "done"]

# The longest file name the documents table keeps (String(512)).
MAX_NAME_CHARS = 512
# Chunks written to the store at once: vectors are held only for this many chunks, so memory
# stays flat however large the file, while each write is big enough to keep the store's
# per-write overhead (a new table version, an index check) small.
WRITE_BATCH = 1024


@dataclass(frozen=True)
class IngestItem:
    """A file to ingest: its bytes, or a path read only when its turn comes (a folder of large
    files is never all in memory at once)."""

    name: str
    data: bytes = b""
    path: Path | None = None

    @classmethod
    def from_path(cls, path: Path) -> IngestItem:
        return cls(path.name, path=path)

    @property
    def size(self) -> int:
        return self.path.stat().st_size if self.path is not None else len(self.data)

    def read(self) -> bytes:
        return self.path.read_bytes() if self.path is not None else self.data


@dataclass(frozen=True)
class IngestLimits:
    max_file_bytes: int = 50 * 1024 * 1024
    max_chunks: int = 50_000
    zip: ZipLimits = field(default_factory=ZipLimits)


@dataclass(frozen=True)
class IngestResult:
    name: str
    outcome: Outcome
    document_id: str | None = None
    chunks: int = 0
    pages: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class IngestProgress:
    name: str
    file_index: int  # 0-based
    file_count: int
    stage: Stage
    done: int = 0
    total: int = 0


ProgressFn = Callable[[IngestProgress], None]
Reporter = Callable[..., None]


@dataclass(frozen=True)
class _Claim:
    """What the claim step decided, for the steps after it."""

    document_id: str
    outcome: Outcome
    old_hash: str | None  # the version served until publish (None: nothing is served)
    old_path: str | None


class _LeaseLost(Exception):
    """Another process recovered this document (our heartbeat stalled past the lease)."""


def _reporter(progress: ProgressFn | None, name: str, index: int, count: int) -> Reporter:
    def report(stage: Stage, done: int = 0, total: int = 0) -> None:
        if progress is not None:
            progress(IngestProgress(name, index, count, stage, done, total))

    return report


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def scan_paths(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """(supported, unsupported) files: files as given, and those inside folders (recursively,
    sorted). Unsupported ones are returned so they can be reported, not silently dropped."""
    supported: list[Path] = []
    unsupported: list[Path] = []
    for path in paths:
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in found:
            if path.is_dir() and file.suffix.lower() not in SUPPORTED_EXTENSIONS:
                unsupported.append(file)
            else:
                supported.append(file)
    return supported, unsupported


def collect_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the supported files inside folders (recursively, sorted)."""
    return scan_paths(paths)[0]


_RUST_PATH = re.compile(r",?\s*(?:/|[A-Za-z]:\\)\S+\.rs:\d+(?::\d+)?")
_SQL_DETAIL = re.compile(r"\s*\[SQL: .*|\s*\(Background on this error at: .*", re.DOTALL)


def plain_error(exc: BaseException) -> str:
    """A failure in words a user can read: no source paths, SQL or tracebacks (those go to the
    log), and the store's write conflicts named for what they are."""
    message = str(exc)
    if "commit conflict" in message.lower():
        return (
            "The vector store was busy with other uploads and did not accept this file's "
            "chunks after several tries. Upload the file again."
        )
    message = _SQL_DETAIL.sub("", _RUST_PATH.sub("", message)).strip()
    first = message.splitlines()[0].strip() if message else ""
    return first[:300] or type(exc).__name__


def check_name(name: str) -> str | None:
    """Why a file name cannot be stored, or None. Postgres refuses NUL in text, and the table
    keeps names up to MAX_NAME_CHARS: say so, instead of a database error."""
    if "\x00" in name:
        return "The file name contains a NUL character. Rename the file and upload it again."
    if len(name) > MAX_NAME_CHARS:
        return (
            f"The file name is {len(name):,} characters long; Loupe keeps names of up to "
            f"{MAX_NAME_CHARS}. Rename the file and upload it again."
        )
    if not name.strip():
        return "The file has no name. Name it and upload it again."
    return None


def _megabytes(size: float) -> str:
    return f"{size / 1024 / 1024:,.1f} MB"


class Ingestor:
    def __init__(
        self,
        *,
        db: Database,
        store: VectorStore,
        embeddings: Embeddings,
        files_dir: Path,
        workspace: str,
        chunking: ChunkPlan,
        embed_batch_size: int,
        limits: IngestLimits | None = None,
        lease_seconds: float = 60.0,
    ) -> None:
        self.db = db
        self.store = store
        self.embeddings = embeddings
        self.files_dir = files_dir
        self.workspace = workspace
        self.chunking = chunking
        self.embed_batch_size = embed_batch_size
        self.limits = limits or IngestLimits()
        self.leases = Leases(db, seconds=lease_seconds)

    # -- entry points ----------------------------------------------------------------------

    def ingest(
        self,
        items: Sequence[IngestItem],
        *,
        tags: Sequence[str] = (),
        uploaded_by: str | None = None,
        progress: ProgressFn | None = None,
    ) -> list[IngestResult]:
        results = []
        with self.leases.heartbeat():
            for index, item in enumerate(items):
                report = _reporter(progress, item.name, index, len(items))
                try:
                    results.append(self._ingest_one(item, tags, uploaded_by, report))
                except Exception as exc:  # noqa: BLE001 - a batch goes on past any one file
                    log.exception("ingest of %s failed", item.name)
                    results.append(
                        IngestResult(
                            item.name, "failed", error=f"Unexpected error: {plain_error(exc)}"
                        )
                    )
                report("done")
        return results

    def ingest_paths(
        self,
        paths: Sequence[Path],
        *,
        tags: Sequence[str] = (),
        uploaded_by: str | None = None,
        progress: ProgressFn | None = None,
    ) -> list[IngestResult]:
        """Files and folders; unsupported files inside folders are reported as skipped."""
        supported, unsupported = scan_paths(paths)
        results = self.ingest(
            [IngestItem.from_path(p) for p in supported],
            tags=tags,
            uploaded_by=uploaded_by,
            progress=progress,
        )
        for path in unsupported:
            try:
                detect_kind(path.name)
                reason = "Not read."
            except LoaderError as exc:
                reason = str(exc)
            results.append(IngestResult(str(path), "skipped", error=reason))
        return results

    def reindex(self, document_id: str, progress: ProgressFn | None = None) -> IngestResult:
        """Rebuild a document's chunks from its stored original (after a chunking or
        embedding change, new tags, or to repair a failed index). The same bytes give the same
        chunk ids, so the document is taken out of search, emptied and rebuilt: a crash
        meanwhile leaves it serving nothing, never a mix of old and new chunks."""
        with self.leases.heartbeat():
            with self.db.session() as s:
                lock_claims(s, self.workspace)
                doc = queries.get_document(s, document_id)
                if doc is None:
                    raise LookupError(f"No document {document_id}")
                if not doc.stored_path or not Path(doc.stored_path).exists():
                    raise FileNotFoundError(f"The original file of {doc.name} is missing")
                if self.leases.held_by_other(doc):
                    return IngestResult(doc.name, "failed", document_id, error=_BUSY)
                name, path, tags = doc.name, Path(doc.stored_path), tuple(doc.tags or ())
                doc.status = DocumentStatus.indexing
                self.leases.take(doc)
            data = path.read_bytes()
            claim = _Claim(document_id, "indexed", None, None)
            report = _reporter(progress, name, 0, 1)
            return self._index(claim, name, data, content_hash(data), tags, path, report)

    # -- one file --------------------------------------------------------------------------

    def _ingest_one(
        self,
        item: IngestItem,
        tags: Sequence[str],
        uploaded_by: str | None,
        report: Reporter,
    ) -> IngestResult:
        problem = check_name(item.name)
        if problem is not None:
            return IngestResult(
                item.name.replace("\x00", "\N{REPLACEMENT CHARACTER}"), "failed", error=problem
            )
        try:
            kind = detect_kind(item.name)
        except LoaderError as exc:
            return IngestResult(item.name, "failed", error=str(exc))
        size = item.size
        if size > self.limits.max_file_bytes:
            return IngestResult(
                item.name,
                "failed",
                error=(
                    f"This file is {_megabytes(size)}, more than the "
                    f"{_megabytes(self.limits.max_file_bytes)} Loupe accepts (LOUPE_MAX_FILE_MB). "
                    "Split it into smaller files, or ask an administrator to raise the limit."
                ),
            )
        data = item.read()
        digest = content_hash(data)
        claimed = self._claim(item.name, kind, data, digest, tags, uploaded_by)
        if isinstance(claimed, IngestResult):
            return claimed
        claim, stored, all_tags = claimed
        return self._index(claim, item.name, data, digest, all_tags, stored, report)

    def _claim(
        self,
        name: str,
        kind: str,
        data: bytes,
        digest: str,
        tags: Sequence[str],
        uploaded_by: str | None,
    ) -> IngestResult | tuple[_Claim, Path, tuple[str, ...]]:
        """Find or create the document and take its lease, one claim at a time."""
        with self.db.session() as s:
            lock_claims(s, self.workspace)
            same = queries.find_document_by_hash(s, self.workspace, digest)
            if same is not None and (
                same.status == DocumentStatus.ready or self.leases.held_by_other(same)
            ):
                busy = same.status != DocumentStatus.ready
                return IngestResult(
                    name,
                    "duplicate",
                    same.id,
                    same.chunk_count,
                    same.pages,
                    error=(
                        f"Same content as '{same.name}', "
                        + ("being indexed by another upload now." if busy else "already indexed.")
                    ),
                )
            doc = same or queries.find_document_by_name(s, self.workspace, name)
            if doc is not None and self.leases.held_by_other(doc):
                return IngestResult(name, "failed", doc.id, error=_BUSY)
            outcome: Outcome = "indexed"
            old_hash: str | None = None
            old_path: str | None = None
            if doc is None:
                doc = Document(workspace=self.workspace, name=name, kind=kind, content_hash=digest)
                s.add(doc)
            elif doc.status == DocumentStatus.ready and doc.content_hash != digest:
                outcome = "updated"
                old_hash, old_path = doc.content_hash, doc.stored_path
            else:
                # A failed or interrupted document tried again, perhaps under another name or
                # type (the same bytes re-uploaded as .md after failing as .pdf): the row takes
                # the new upload's name and kind, so a later re-index reads it the same way.
                old_path = doc.stored_path
                doc.content_hash = digest
                doc.name, doc.kind = name, kind
            doc.size_bytes = len(data)
            doc.tags = sorted(set(doc.tags or ()) | set(tags))
            doc.uploaded_by = uploaded_by or doc.uploaded_by
            stored = self._store_original(name, data, digest)
            if outcome == "indexed":
                doc.stored_path = str(stored)
                doc.status = DocumentStatus.indexing
                doc.error = None
                doc.chunk_count = 0
            self.leases.take(doc)
            doc.lease_cleanup_path = str(stored) if outcome == "updated" else None
            s.flush()
            claim = _Claim(doc.id, outcome, old_hash, old_path)
            all_tags = tuple(doc.tags)
        if outcome == "indexed" and old_path is not None and old_path != str(stored):
            self._discard_original(old_path)
        return claim, stored, all_tags

    def _index(
        self,
        claim: _Claim,
        name: str,
        data: bytes,
        digest: str,
        tags: Sequence[str],
        stored: Path,
        report: Reporter,
    ) -> IngestResult:
        document_id = claim.document_id
        try:
            report("parse")
            loaded = load_bytes(name, data, zip_limits=self.limits.zip)
            pages = loaded.pages
            drafts = chunk_sections(loaded.sections, self.chunking)
            del loaded  # the drafts hold the text now: a large file's text is kept only once
            if not drafts:
                raise LoaderError("No text was found in this file.")
            if len(drafts) > self.limits.max_chunks:
                raise LoaderError(
                    f"This file makes {len(drafts):,} passages, more than the "
                    f"{self.limits.max_chunks:,} Loupe indexes per file "
                    "(LOUPE_MAX_CHUNKS_PER_FILE). Split it into smaller files."
                )
            self._write_version(claim, name, digest, tags, drafts, report)
            self._publish(claim, digest, stored, pages, len(drafts))
        except _LeaseLost:
            self._abandon(document_id, digest)
            return IngestResult(name, "failed", document_id, error=_LOST)
        except Exception as exc:  # noqa: BLE001 - recorded on the document, batch continues
            if not isinstance(exc, LoaderError):
                log.exception("indexing %s failed", name)
            message = (
                str(exc) if isinstance(exc, LoaderError) else f"Indexing failed: {plain_error(exc)}"
            )
            return self._fail(claim, name, digest, stored, message)
        self._retire(claim, digest, stored)
        return IngestResult(name, claim.outcome, document_id, len(drafts), pages)

    # -- the steps -------------------------------------------------------------------------

    def _write_version(
        self,
        claim: _Claim,
        name: str,
        digest: str,
        tags: Sequence[str],
        drafts: Sequence[ChunkDraft],
        report: Reporter,
    ) -> None:
        """Embed and write the new version's chunks in bounded batches, unserved until publish.
        Leftovers of an earlier interrupted attempt go first (they may hold chunks that this
        chunking no longer makes)."""
        self.store.delete_document(claim.document_id, keep_content_hash=claim.old_hash)
        total = len(drafts)
        for start in range(0, total, WRITE_BATCH):
            batch = drafts[start : start + WRITE_BATCH]
            chunks: list[Chunk] = []
            for offset in range(0, len(batch), self.embed_batch_size):
                report("embed", start + offset, total)
                part = batch[offset : offset + self.embed_batch_size]
                vectors = self.embeddings.embed_documents([_embed_text(d) for d in part])
                chunks.extend(
                    _chunk(claim.document_id, digest, name, tags, d, v)
                    for d, v in zip(part, vectors, strict=True)
                )
            report("index", start, total)
            self.store.upsert(chunks)
        report("embed", total, total)
        report("index", total, total)

    def _publish(
        self, claim: _Claim, digest: str, stored: Path, pages: int | None, chunks: int
    ) -> None:
        """The switch: from this commit on, search serves the new version."""
        with self.db.session() as s:
            if not self.leases.holds(s, claim.document_id):
                raise _LeaseLost
            doc = queries.get_document(s, claim.document_id)
            assert doc is not None
            doc.status = DocumentStatus.ready
            doc.error = None
            doc.content_hash = digest
            doc.stored_path = str(stored)
            doc.pages = pages
            doc.chunk_count = chunks
            doc.indexed_at = utcnow()
            doc.lease_cleanup_path = claim.old_path

    def _retire(self, claim: _Claim, digest: str, stored: Path) -> None:
        """Remove the old version (chunks, then its original), then let the document go. The
        new version is served already: if the store fails here, the lease is kept, so the
        next start repairs the leftovers once it runs out (search never serves them)."""
        try:
            self.store.delete_document(claim.document_id, keep_content_hash=digest)
        except Exception:  # noqa: BLE001 - published; leftovers are repaired, not fatal
            log.warning("old chunks of %s stay until recovery", claim.document_id, exc_info=True)
            return
        if claim.old_path is not None and claim.old_path != str(stored):
            self._discard_original(claim.old_path)
        self._release(claim.document_id)

    def _fail(
        self, claim: _Claim, name: str, digest: str, stored: Path, message: str
    ) -> IngestResult:
        """Remove whatever part of the new version reached the store, then record why."""
        self.store.delete_document(claim.document_id, keep_content_hash=claim.old_hash)
        with self.db.session() as s:
            doc = queries.get_document(s, claim.document_id)
            assert doc is not None
            if claim.outcome == "updated":
                doc.error = (
                    "The new version could not be indexed; the previous one is still served. "
                    + message
                )
            else:
                doc.status = DocumentStatus.failed
                doc.error = message
                doc.chunk_count = 0
            self.leases.release(doc)
        if claim.outcome == "updated":
            self._discard_original(str(stored))
        return IngestResult(name, "failed", claim.document_id, error=message)

    def _abandon(self, document_id: str, digest: str) -> None:
        """Our lease was taken over, or the document deleted meanwhile: remove what we wrote,
        unless it is the version SQL serves. While another process holds the document, its
        own first step clears leftovers, so nothing is touched here."""
        with self.db.session() as s:
            doc = queries.get_document(s, document_id)
            if doc is not None and self.leases.held_by_other(doc):
                return
            served = doc.content_hash if doc is not None else None
            ready = doc is not None and doc.status == DocumentStatus.ready
        if doc is None:
            self.store.delete_document(document_id)
        elif not (ready and served == digest):
            self.store.delete_document(document_id, keep_content_hash=served if ready else None)

    def _release(self, document_id: str) -> None:
        with self.db.session() as s:
            doc = queries.get_document(s, document_id)
            if doc is not None:
                self.leases.release(doc)

    # -- originals -------------------------------------------------------------------------

    def _store_original(self, name: str, data: bytes, digest: str) -> Path:
        self.files_dir.mkdir(parents=True, exist_ok=True)
        path = self.files_dir / f"{digest}{Path(name).suffix.lower()}"
        if not path.exists():
            tmp = path.with_name(f"{path.name}.{self.leases.owner.rsplit(':', 1)[-1]}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return path

    def _discard_original(self, stored_path: str) -> None:
        """Delete an original that no document points at any more."""
        with self.db.session() as s:
            used = s.scalar(select(Document.id).where(Document.stored_path == stored_path).limit(1))
        if used is None:
            Path(stored_path).unlink(missing_ok=True)

    # -- recovery --------------------------------------------------------------------------

    def recover_interrupted(self) -> int:
        """Repair documents whose ingest died (its lease ran out, or it predates leases):
        remove the unfinished version's chunks; a new document becomes failed, an update keeps
        serving its previous version. Documents with a live lease are another process's
        ongoing work and are not touched. Returns how many were repaired."""
        with self.leases.heartbeat():
            with self.db.session() as s:
                lock_claims(s, self.workspace)
                now = utcnow()
                candidates = s.scalars(
                    select(Document).where(
                        Document.workspace == self.workspace,
                        or_(
                            Document.status == DocumentStatus.indexing,
                            Document.lease_owner.is_not(None),
                        ),
                    )
                ).all()
                stuck = [d for d in candidates if self.leases.expired(d, now)]
                for doc in stuck:
                    self.leases.take(doc)
                plan = [
                    (
                        d.id,
                        d.content_hash if d.status == DocumentStatus.ready else None,
                        d.lease_cleanup_path,
                    )
                    for d in stuck
                ]
            for document_id, served, leftover in plan:
                self.store.delete_document(document_id, keep_content_hash=served)
                with self.db.session() as s:
                    row = queries.get_document(s, document_id)
                    if row is None:
                        continue
                    if row.status != DocumentStatus.ready:
                        row.status = DocumentStatus.failed
                        row.chunk_count = 0
                        row.error = "Indexing was interrupted; re-index or upload the file again."
                    self.leases.release(row)
                if leftover is not None:
                    self._discard_original(leftover)
        return len(plan)


_BUSY = (
    "This document is being indexed by another upload right now. Try again when that has finished."
)
_LOST = (
    "This upload took too long to report progress and another process took the document "
    "over; upload the file again."
)


def _embed_text(draft: ChunkDraft) -> str:
    return f"{draft.heading}\n{draft.text}" if draft.heading else draft.text


def _chunk(
    document_id: str,
    digest: str,
    name: str,
    tags: Sequence[str],
    draft: ChunkDraft,
    vector: Sequence[float],
) -> Chunk:
    return Chunk(
        id=chunk_id(document_id, digest, draft.position),
        document_id=document_id,
        text=draft.text,
        title=name,
        position=draft.position,
        content_hash=digest,
        page=draft.page,
        heading=draft.heading,
        tags=tuple(tags),
        vector=tuple(vector),
    )
