"""Leases: an ingest owns the documents it is writing, and says so in SQL while it lives.

Without them a process starting up could not tell a crashed ingest from one still running in
another process, and "repairing" the running one lost its chunks while SQL went on to call it
ready. A lease is an owner id and a deadline; the owner's heartbeat thread moves the deadline
forward every third of the lease time, so a deadline in the past means the owner is gone
(killed, crashed, its machine lost) and its documents may be repaired by anyone.

Claims (looking a document up, then taking its lease or creating its row) run one at a time per
workspace behind a short database lock, so two processes never both take a document or both
create a row for the same new file.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import text, update
from sqlalchemy.orm import Session

from core.db.models import Document, utcnow
from core.db.session import Database

log = logging.getLogger(__name__)


def new_owner_id() -> str:
    """Host, process and a random part: unique even when a pid is reused after a crash."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def lock_claims(s: Session, workspace: str) -> None:
    """Serialize claims in a workspace until the session's transaction ends.

    Postgres takes a transaction-scoped advisory lock. On SQLite a write statement that changes
    nothing takes the database's write lock at once (waiting up to busy_timeout); taking it
    before reading also means no later write in the transaction can fail on a stale snapshot.
    """
    if s.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"loupe:ingest:{workspace}".encode())
        s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        s.execute(update(Document).where(Document.id == "").values(lease_owner=None))


class Leases:
    """This process's leases: taking, checking, renewing and releasing them."""

    def __init__(self, db: Database, *, seconds: float, owner: str | None = None) -> None:
        self.db = db
        self.seconds = seconds
        self.owner = owner or new_owner_id()
        self._beats = 0  # heartbeat() blocks open; the thread runs while any is open
        self._beats_lock = threading.Lock()
        self._stop: threading.Event | None = None

    def expired(self, doc: Document, now: datetime | None = None) -> bool:
        """Nobody holds the document: no lease, or its owner stopped renewing it."""
        if doc.lease_owner is None or doc.lease_expires_at is None:
            return True
        return doc.lease_expires_at <= (now or utcnow())

    def held_by_other(self, doc: Document) -> bool:
        return doc.lease_owner != self.owner and not self.expired(doc)

    def take(self, doc: Document) -> None:
        """Claim the document (inside a session that called `lock_claims`)."""
        now = utcnow()
        doc.lease_owner = self.owner
        doc.lease_heartbeat_at = now
        doc.lease_expires_at = now + timedelta(seconds=self.seconds)

    def holds(self, s: Session, document_id: str) -> bool:
        """Whether this process still owns the document (nobody recovered it meanwhile)."""
        doc = s.get(Document, document_id, populate_existing=True)
        return doc is not None and doc.lease_owner == self.owner

    def release(self, doc: Document) -> None:
        if doc.lease_owner == self.owner:
            doc.lease_owner = None
            doc.lease_heartbeat_at = None
            doc.lease_expires_at = None
            doc.lease_cleanup_path = None

    def renew(self) -> int:
        """Push the deadline of every lease this process holds forward; how many there were."""
        now = utcnow()
        with self.db.session() as s:
            result = s.execute(
                update(Document)
                .where(Document.lease_owner == self.owner)
                .values(
                    lease_heartbeat_at=now,
                    lease_expires_at=now + timedelta(seconds=self.seconds),
                )
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        """Keep this process's leases alive while the block runs (a daemon thread, so a
        process that dies stops renewing and its leases run out)."""
        with self._beats_lock:
            self._beats += 1
            if self._beats == 1:
                self._stop = threading.Event()
                threading.Thread(
                    target=self._beat, args=(self._stop,), name="ingest-heartbeat", daemon=True
                ).start()
        try:
            yield
        finally:
            with self._beats_lock:
                self._beats -= 1
                if self._beats == 0 and self._stop is not None:
                    self._stop.set()
                    self._stop = None

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.seconds / 3):
            try:
                self.renew()
            except Exception:  # noqa: BLE001 - a missed beat is retried; the lease is 3 beats long
                log.warning("could not renew ingest leases", exc_info=True)
