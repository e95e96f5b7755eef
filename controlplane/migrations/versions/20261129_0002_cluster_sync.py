"""cluster sync: tenant readiness and offboarding times, capacity admin override

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 03:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("provisioning_seconds", sa.Double(), nullable=True))
        batch.add_column(sa.Column("delete_after", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("gpu_capacity") as batch:
        batch.add_column(
            sa.Column("admin_override", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("gpu_capacity") as batch:
        batch.drop_column("admin_override")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("delete_after")
        batch.drop_column("provisioning_seconds")
        batch.drop_column("ready_at")
