"""usage metering: pod and storage intervals, daily rollups

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 05:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_intervals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pod_uid", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("namespace", sa.String(length=63), nullable=False),
        sa.Column("pod_name", sa.String(length=253), nullable=False),
        sa.Column("node_name", sa.String(length=253), nullable=False),
        sa.Column("gpu_model", sa.String(length=100), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("cpu_cores", sa.Double(), nullable=False),
        sa.Column("memory_gib", sa.Double(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_source", sa.String(length=16), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rolled_up_to", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_usage_intervals_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_intervals")),
        sa.UniqueConstraint("pod_uid", name=op.f("uq_usage_intervals_pod_uid")),
    )
    with op.batch_alter_table("usage_intervals") as batch:
        batch.create_index("ix_usage_intervals_tenant_started", ["tenant_id", "started_at"])
        batch.create_index("ix_usage_intervals_ended_at", ["ended_at"])

    op.create_table(
        "storage_intervals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pvc_uid", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("namespace", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("size_gib", sa.Double(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rolled_up_to", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_storage_intervals_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storage_intervals")),
        sa.UniqueConstraint("pvc_uid", name=op.f("uq_storage_intervals_pvc_uid")),
    )
    with op.batch_alter_table("storage_intervals") as batch:
        batch.create_index("ix_storage_intervals_tenant_started", ["tenant_id", "started_at"])
        batch.create_index("ix_storage_intervals_ended_at", ["ended_at"])

    op.create_table(
        "usage_daily",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("gpu_model", sa.String(length=100), nullable=False),
        sa.Column("gpu_seconds", sa.Double(), nullable=False),
        sa.Column("cpu_core_seconds", sa.Double(), nullable=False),
        sa.Column("memory_gib_seconds", sa.Double(), nullable=False),
        sa.Column("storage_gib_seconds", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_usage_daily_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_daily")),
        sa.UniqueConstraint(
            "tenant_id", "day", "gpu_model", name="uq_usage_daily_tenant_day_model"
        ),
    )
    with op.batch_alter_table("usage_daily") as batch:
        batch.create_index("ix_usage_daily_day", ["day"])


def downgrade() -> None:
    op.drop_table("usage_daily")
    op.drop_table("storage_intervals")
    op.drop_table("usage_intervals")
