"""Fitted confidence calibrations (data, out-of-fold scores, whether each was installed), and
each answer's calibration version and answer threshold.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("embedding_model", sa.String(128), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("training_hash", sa.String(64), nullable=False),
        sa.Column("cv_auroc", sa.Float(), nullable=True),
        sa.Column("cv_ece", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("installed", sa.Boolean(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calibrations")),
    )
    op.create_index(op.f("ix_calibrations_workspace"), "calibrations", ["workspace"])
    op.create_index(op.f("ix_calibrations_created_at"), "calibrations", ["created_at"])
    with op.batch_alter_table("answers") as batch:
        batch.add_column(sa.Column("calibration_version", sa.String(128), nullable=True))
        batch.add_column(sa.Column("answer_threshold", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("answers") as batch:
        batch.drop_column("answer_threshold")
        batch.drop_column("calibration_version")
    op.drop_index(op.f("ix_calibrations_created_at"), table_name="calibrations")
    op.drop_index(op.f("ix_calibrations_workspace"), table_name="calibrations")
    op.drop_table("calibrations")
