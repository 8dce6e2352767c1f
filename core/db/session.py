"""Engines, migrations and sessions: how the rest of Loupe talks to SQL.

The same code runs on an embedded SQLite file (the default) and on Postgres (`DATABASE_URL`),
so backend differences are settled here, once: SQLite gets the pragmas that make it a decent
multi-threaded store, Postgres URLs are pointed at psycopg 3.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from core.config import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_MIGRATION_TIMEOUT_MS = 300_000
# Any constant works: it only has to be the same in every process that migrates.
_PG_MIGRATION_LOCK = zlib.crc32(b"loupe:migrate")
# Alembic installs its `context` as a module-level proxy, so two threads must not migrate at once.
_migrate_lock = threading.Lock()


def normalize_url(url: str | URL) -> URL:
    """Point bare Postgres URLs (as platforms hand them out) at the psycopg 3 driver."""
    url = make_url(url)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def make_engine(url: str | URL) -> Engine:
    """An engine configured for the backend: pragmas for SQLite, pre-ping for Postgres."""
    url = normalize_url(url)
    if url.get_backend_name() != "sqlite":
        # Pre-ping: a server restart or idle timeout must not surface as an error in the UI.
        return create_engine(url, pool_pre_ping=True)

    database = url.database or ":memory:"
    in_memory = database == ":memory:"
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        # Streamlit runs each session in its own thread; the pool hands connections between them.
        connect_args={"check_same_thread": False},
        # A memory database lives in its connection: share one, or each thread sees an empty DB.
        **({"poolclass": StaticPool} if in_memory else {}),
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection settings: SQLite forgets all but journal_mode when a connection closes."""
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while one writer writes; NORMAL sync is safe with WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Off by default in SQLite; needed for ON DELETE CASCADE (feedback goes with its answer).
    cursor.execute("PRAGMA foreign_keys=ON")
    # Wait for a concurrent writer instead of failing at once with "database is locked".
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def alembic_config() -> Config:
    """Alembic configured in code, so the app can migrate without an ini file on disk."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


def migrate(engine_or_url: Engine | str | URL) -> None:
    """Upgrade the schema to the newest revision; a no-op when it is already there.

    Called on every start, possibly by several processes at once, so the whole upgrade runs in
    one transaction behind a lock (an advisory lock on Postgres, the write lock on SQLite):
    the second process waits, then finds the schema at head and does nothing.
    """
    owns_engine = not isinstance(engine_or_url, Engine)
    engine = engine_or_url if isinstance(engine_or_url, Engine) else make_engine(engine_or_url)
    try:
        with _migrate_lock, engine.connect() as connection:
            _lock_schema(connection)
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
            if connection.dialect.name == "sqlite":  # back to the pool with the usual timeout
                connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        if owns_engine:
            engine.dispose()


def _lock_schema(connection: Connection) -> None:
    """Take a lock, held until commit, that every migrating process must take first."""
    if connection.dialect.name == "sqlite":
        # pysqlite does not open a transaction before DDL; IMMEDIATE opens one and takes the
        # write lock now (waiting up to busy_timeout), so the DDL is atomic and serialized.
        # Another process may be migrating: wait for it as long as a migration can take
        # (a table rebuild on a loaded machine), not the short timeout for ordinary writes.
        connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_MIGRATION_TIMEOUT_MS}")
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})


class Database:
    """An engine and its session factory: what the service layer holds on to."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Objects stay readable after commit: pages render them after the session has closed.
        self.sessionmaker = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str | URL) -> Database:
        """Connect and bring the schema up to date."""
        engine = make_engine(url)
        migrate(engine)
        return cls(engine)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """Connect to `settings.db_url` and bring the schema up to date."""
        return cls.from_url(settings.db_url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block succeeds, rolled back when it raises."""
        with self.sessionmaker.begin() as session:
            yield session

    def dispose(self) -> None:
        """Close pooled connections (tests, and before a process forks)."""
        self.engine.dispose()
