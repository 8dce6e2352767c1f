"""Ingest leases: which process is indexing a document, and until when its claim holds.

An ingest claims a document by writing its owner id and a lease deadline that a heartbeat keeps
pushing forward; recovery at start-up repairs only documents whose lease has run out, so a
process starting up never undoes another process's ingest that is still running.

Revision ID: 0003_ingest_lease
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_ingest_lease"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("lease_heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lease_cleanup_path", sa.String(length=1024), nullable=True))
        batch.create_index("ix_documents_lease_owner", ["lease_owner"])


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_index("ix_documents_lease_owner")
        batch.drop_column("lease_cleanup_path")
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_heartbeat_at")
        batch.drop_column("lease_owner")
