"""Ingestion: file → sections → chunks → vectors → store, with SQL status as the record.

Rules that keep the store and SQL consistent:
- Idempotent by content hash: the same bytes twice add nothing.
- A file with a known name but new bytes replaces its old version, and the old chunks go
  only after the new ones are in, so the document never disappears from search.
- A failure leaves no partial chunks behind: the document is `failed` with the reason in
  plain words (or, for a failed update, the previous version keeps serving).
- One bad file never stops a batch.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from langchain_core.embeddings import Embeddings

from core.db import queries
from core.db.models import Document, DocumentStatus, utcnow
from core.db.session import Database
from core.ingest.chunking import ChunkPlan, chunk_sections
from core.ingest.loaders import SUPPORTED_EXTENSIONS, LoaderError, detect_kind, load_bytes
from core.stores.base import Chunk, VectorStore, chunk_id

log = logging.getLogger(__name__)

Outcome = Literal["indexed", "updated", "duplicate", "failed"]
Stage = Literal["parse", "embed", "index", "done"]


@dataclass(frozen=True)
class IngestItem:
    name: str
    data: bytes


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


def _reporter(progress: ProgressFn | None, name: str, index: int, count: int) -> Reporter:
    def report(stage: Stage, done: int = 0, total: int = 0) -> None:
        if progress is not None:
            progress(IngestProgress(name, index, count, stage, done, total))

    return report


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def collect_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the supported files inside folders (recursively, sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS
            )
        else:
            found.append(path)
    return found


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
    ) -> None:
        self.db = db
        self.store = store
        self.embeddings = embeddings
        self.files_dir = files_dir
        self.workspace = workspace
        self.chunking = chunking
        self.embed_batch_size = embed_batch_size

    def ingest(
        self,
        items: Sequence[IngestItem],
        *,
        tags: Sequence[str] = (),
        uploaded_by: str | None = None,
        progress: ProgressFn | None = None,
    ) -> list[IngestResult]:
        results = []
        for index, item in enumerate(items):
            report = _reporter(progress, item.name, index, len(items))
            try:
                results.append(self._ingest_one(item, tags, uploaded_by, report))
            except Exception as exc:  # noqa: BLE001 - a batch goes on past any one file
                log.exception("ingest of %s failed", item.name)
                results.append(IngestResult(item.name, "failed", error=f"Unexpected error: {exc}"))
            report("done")
        return results

    def reindex(self, document_id: str, progress: ProgressFn | None = None) -> IngestResult:
        """Rebuild a document's chunks from its stored original (after a chunking or
        embedding change, or to repair a failed index)."""
        with self.db.session() as s:
            doc = queries.get_document(s, document_id)
            if doc is None:
                raise LookupError(f"No document {document_id}")
            if not doc.stored_path or not Path(doc.stored_path).exists():
                raise FileNotFoundError(f"The original file of {doc.name} is missing")
            name, path, tags = doc.name, Path(doc.stored_path), tuple(doc.tags or ())
            doc.status = DocumentStatus.indexing
        data = path.read_bytes()
        # Same bytes give the same chunk ids, but a changed chunker may give fewer chunks:
        # start from an empty slate so no stale chunk survives.
        self.store.delete_document(document_id)
        report = _reporter(progress, name, 0, 1)
        return self._index(
            document_id, name, data, content_hash(data), tags, path, report, "indexed"
        )

    def _ingest_one(
        self,
        item: IngestItem,
        tags: Sequence[str],
        uploaded_by: str | None,
        report: Reporter,
    ) -> IngestResult:
        try:
            kind = detect_kind(item.name)
        except LoaderError as exc:
            return IngestResult(item.name, "failed", error=str(exc))
        digest = content_hash(item.data)
        with self.db.session() as s:
            same = queries.find_document_by_hash(s, self.workspace, digest)
            if same is not None and same.status == DocumentStatus.ready:
                return IngestResult(
                    item.name,
                    "duplicate",
                    same.id,
                    same.chunk_count,
                    same.pages,
                    error=f"Same content as '{same.name}', already indexed.",
                )
            doc = same or queries.find_document_by_name(s, self.workspace, item.name)
            outcome: Outcome = "indexed"
            if doc is None:
                doc = Document(
                    workspace=self.workspace, name=item.name, kind=kind, content_hash=digest
                )
                s.add(doc)
            elif doc.content_hash != digest and doc.status == DocumentStatus.ready:
                outcome = "updated"
            else:
                doc.content_hash = digest
            doc.size_bytes = len(item.data)
            doc.tags = sorted(set(doc.tags or ()) | set(tags))
            doc.uploaded_by = uploaded_by or doc.uploaded_by
            stored = self._store_original(item, digest)
            if outcome == "indexed":
                doc.stored_path = str(stored)
                doc.status = DocumentStatus.indexing
                doc.error = None
            s.flush()
            document_id = doc.id
            all_tags = tuple(doc.tags)
        return self._index(
            document_id, item.name, item.data, digest, all_tags, stored, report, outcome
        )

    def _index(
        self,
        document_id: str,
        name: str,
        data: bytes,
        digest: str,
        tags: Sequence[str],
        stored: Path,
        report: Reporter,
        outcome: Outcome,
    ) -> IngestResult:
        pages: int | None = None
        try:
            report("parse")
            loaded = load_bytes(name, data)
            pages = loaded.pages
            drafts = chunk_sections(
                loaded.sections,
                size=self.chunking.size,
                overlap=self.chunking.overlap,
                length=self.chunking.length,
            )
            if not drafts:
                raise LoaderError("No text was found in this file.")
            texts = [f"{d.heading}\n{d.text}" if d.heading else d.text for d in drafts]
            vectors: list[list[float]] = []
            for start in range(0, len(texts), self.embed_batch_size):
                report("embed", start, len(texts))
                vectors.extend(
                    self.embeddings.embed_documents(texts[start : start + self.embed_batch_size])
                )
            report("embed", len(texts), len(texts))
            chunks = [
                Chunk(
                    id=chunk_id(document_id, digest, d.position),
                    document_id=document_id,
                    text=d.text,
                    title=name,
                    position=d.position,
                    content_hash=digest,
                    page=d.page,
                    heading=d.heading,
                    tags=tuple(tags),
                    vector=tuple(v),
                )
                for d, v in zip(drafts, vectors, strict=True)
            ]
            report("index", 0, len(chunks))
            self.store.upsert(chunks)
            # Only now that the new version is searchable does the old one go.
            self.store.delete_document(document_id, keep_content_hash=digest)
            report("index", len(chunks), len(chunks))
        except Exception as exc:  # noqa: BLE001 - recorded on the document, batch continues
            self._rollback(document_id, digest)
            message = str(exc) if isinstance(exc, LoaderError) else f"Indexing failed: {exc}"
            return self._mark_failed(document_id, name, message, outcome)
        with self.db.session() as s:
            doc = queries.get_document(s, document_id)
            assert doc is not None
            doc.status = DocumentStatus.ready
            doc.error = None
            doc.content_hash = digest
            doc.stored_path = str(stored)
            doc.pages = pages
            doc.chunk_count = len(chunks)
            doc.indexed_at = utcnow()
        return IngestResult(name, outcome, document_id, len(chunks), pages)

    def _rollback(self, document_id: str, digest: str) -> None:
        """Remove whatever part of this version reached the store."""
        with self.db.session() as s:
            doc = queries.get_document(s, document_id)
            old_hash = doc.content_hash if doc is not None else None
        if old_hash is not None and old_hash != digest:
            # Keep the previous version: delete only chunks that are not of it.
            self.store.delete_document(document_id, keep_content_hash=old_hash)
        else:
            self.store.delete_document(document_id)

    def _mark_failed(
        self, document_id: str, name: str, message: str, outcome: Outcome
    ) -> IngestResult:
        with self.db.session() as s:
            doc = queries.get_document(s, document_id)
            assert doc is not None
            if outcome == "updated":
                doc.error = (
                    "The new version could not be indexed; the previous one is still served. "
                    + message
                )
            else:
                doc.status = DocumentStatus.failed
                doc.error = message
                doc.chunk_count = 0
        return IngestResult(name, "failed", document_id, error=message)

    def _store_original(self, item: IngestItem, digest: str) -> Path:
        self.files_dir.mkdir(parents=True, exist_ok=True)
        path = self.files_dir / f"{digest}{Path(item.name).suffix.lower()}"
        if not path.exists():
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(item.data)
            tmp.replace(path)
        return path

    def recover_interrupted(self) -> int:
        """Documents left `indexing` by a crash: remove their partial chunks, mark failed."""
        with self.db.session() as s:
            stuck = queries.list_documents(s, self.workspace, status=DocumentStatus.indexing)
            ids = [d.id for d in stuck]
            for doc in stuck:
                doc.status = DocumentStatus.failed
                doc.error = "Indexing was interrupted; re-index or upload the file again."
        for document_id in ids:
            self.store.delete_document(document_id)
        return len(ids)
