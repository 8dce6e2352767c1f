"""Shared fixtures.

Database tests run twice, on SQLite and on Postgres: the Postgres run needs a server at
`LOUPE_TEST_POSTGRES_URL` (`make test` starts one with scripts/postgres.sh and sets it) and is
skipped without one. Each test gets an empty database: a new SQLite file, or a new Postgres
schema (put first on the search path through the URL), which is much faster than a new database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import Database, make_engine

POSTGRES_URL_VAR = "LOUPE_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    """A connection to the test server, used to create and drop each test's schema."""
    url = os.environ.get(POSTGRES_URL_VAR)
    if not url:
        pytest.skip(f"{POSTGRES_URL_VAR} is not set (`make test` sets it via scripts/postgres.sh)")
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, not yet migrated."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/loupe.db"
        return
    engine: Engine = request.getfixturevalue("postgres_engine")
    schema = f"test_{uuid.uuid4().hex[:16]}"
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = engine.url.update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with engine.begin() as connection:
        # A test that leaked an open transaction would block the drop: fail instead of hang.
        connection.execute(text("SET LOCAL lock_timeout = '10s'"))
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated database."""
    database = Database.from_url(db_url)
    yield database
    database.dispose()


@pytest.fixture
def session_factory(db: Database) -> sessionmaker[Session]:
    return db.sessionmaker
