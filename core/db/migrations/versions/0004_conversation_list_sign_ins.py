"""Conversations can be deleted softly (hidden from their owner, kept for audit); local
sign-ins last across reloads through server-side sign-in records.

Revision ID: 0004
Revises: 0003_ingest_lease
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003_ingest_lease"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deleted_by", sa.String(128), nullable=True))

    op.create_table(
        "sign_ins",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("password_fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_sign_ins")),
    )
    op.create_index(op.f("ix_sign_ins_user"), "sign_ins", ["user"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sign_ins_user"), table_name="sign_ins")
    op.drop_table("sign_ins")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("deleted_by")
        batch.drop_column("deleted_at")
