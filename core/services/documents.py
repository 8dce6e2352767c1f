"""Documents: ingest, list, delete, re-index, tag (admins only)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.auth import Actor, require
from core.config import Settings
from core.db import queries
from core.db.session import Database
from core.ingest.consistency import CheckReport, check
from core.ingest.pipeline import IngestItem, Ingestor, IngestResult, ProgressFn
from core.ingest.samples import SAMPLE_TAG, sample_items
from core.records import DocumentInfo
from core.stores.base import VectorStore
from core.vocab import DocumentStatus, Role


class DocumentService:
    def __init__(
        self, settings: Settings, db: Database, store: VectorStore, ingestor: Ingestor
    ) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self.ingestor = ingestor

    def ingest_paths(
        self,
        paths: Sequence[Path],
        *,
        tags: Sequence[str],
        uploaded_by: str | None,
        progress: ProgressFn | None,
        actor: Actor,
    ) -> list[IngestResult]:
        """Files and folders, each file read only when its turn comes; unsupported files in
        folders come back as `skipped`, with the reason."""
        require(actor, Role.admin)
        return self.ingestor.ingest_paths(
            paths, tags=tags, uploaded_by=uploaded_by, progress=progress
        )

    def ingest(
        self,
        items: Sequence[IngestItem],
        *,
        tags: Sequence[str],
        uploaded_by: str | None,
        progress: ProgressFn | None,
        actor: Actor,
    ) -> list[IngestResult]:
        require(actor, Role.admin)
        return self.ingestor.ingest(items, tags=tags, uploaded_by=uploaded_by, progress=progress)

    def load_samples(self, *, progress: ProgressFn | None, actor: Actor) -> list[IngestResult]:
        """Index the sample documents shipped in `samples/`, tagged `sample`."""
        return self.ingest(
            sample_items(),
            tags=[SAMPLE_TAG],
            uploaded_by=actor.name,
            progress=progress,
            actor=actor,
        )

    def documents(self, status: DocumentStatus | None = None) -> list[DocumentInfo]:
        with self.db.session() as s:
            rows = queries.list_documents(s, self.settings.workspace, status=status)
            return [DocumentInfo.from_row(row) for row in rows]

    def delete(self, document_id: str, *, actor: Actor) -> bool:
        """Chunks go first: a document row without chunks is harmless, the reverse is not."""
        require(actor, Role.admin)
        with self.db.session() as s:
            doc = queries.get_document(s, document_id)
            if doc is None:
                return False
            stored = Path(doc.stored_path) if doc.stored_path else None
        self.store.delete_document(document_id)
        with self.db.session() as s:
            queries.delete_document_row(s, document_id)
            # The original goes too, unless another document has the same bytes.
            shared = stored is not None and any(
                d.stored_path == str(stored)
                for d in queries.list_documents(s, self.settings.workspace)
            )
        if stored is not None and not shared:
            stored.unlink(missing_ok=True)
        return True

    def reindex(
        self, document_id: str, progress: ProgressFn | None, *, actor: Actor
    ) -> IngestResult:
        require(actor, Role.admin)
        return self.ingestor.reindex(document_id, progress)

    def set_tags(
        self, document_id: str, tags: Sequence[str], *, actor: Actor
    ) -> IngestResult | None:
        """Replace a document's tags. Searches filter on the tags stored with each chunk, so a
        ready document is re-indexed from its original to carry the new ones (None when the
        document is not ready and has no chunks to update)."""
        require(actor, Role.admin)
        clean = sorted({tag.strip() for tag in tags if tag.strip()})
        with self.db.session() as s:
            doc = queries.get_document(s, document_id)
            if doc is None:
                raise LookupError(f"No document {document_id}")
            doc.tags = clean
            ready = doc.status == DocumentStatus.ready
        return self.ingestor.reindex(document_id) if ready else None

    def check(self, *, repair: bool, actor: Actor) -> CheckReport:
        """Compare SQL with the vector store (and the originals on disk); repair on request."""
        require(actor, Role.admin)
        return check(self.ingestor, repair=repair)
