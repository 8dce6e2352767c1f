"""Alembic environment: runs migrations on the connection `migrate()` hands over, or, from the
command line, on `Settings().db_url` (so `DATABASE_URL` decides which database is migrated)."""

from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Connection, TypeDecorator

from core.config import Settings
from core.db.models import Base
from core.db.session import make_engine, normalize_url

config = context.config
if config.config_file_name is not None:  # the CLI; the app keeps its own logging setup
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Write our TypeDecorators as their plain SQL type, so migrations never import app code
    (a migration must keep working after the model module changes)."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


OPTIONS: dict[str, Any] = {
    "target_metadata": Base.metadata,
    "render_item": render_item,
    # SQLite cannot ALTER most things; batch mode (copy and move the table) works on both.
    "render_as_batch": True,
    "compare_type": True,
}


def run(connection: Connection) -> None:
    context.configure(connection=connection, **OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():  # `alembic upgrade --sql`: print the SQL for a DBA to run
    context.configure(url=normalize_url(Settings().db_url), literal_binds=True, **OPTIONS)
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    run(connection)
else:
    engine = make_engine(Settings().db_url)
    try:
        with engine.begin() as connection:
            run(connection)
    finally:
        engine.dispose()
