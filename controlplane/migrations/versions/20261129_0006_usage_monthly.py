"""usage_monthly: usage per tenant, month, price segment and GPU model (cost report summary)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 08:30:00

The monthly cost report reads this summary instead of a month of ``usage_daily`` rows. The
metering keeps it in the same upsert path as ``usage_daily``; this migration fills it from the
``usage_daily`` rows that exist, in one set-based statement on both dialects. A row's
``price_from`` is the ``effective_from`` of the price list in force on the usage day
('0001-01-01' when none was).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MONTH = {
    "postgresql": "CAST(date_trunc('month', d.day) AS DATE)",
    "sqlite": "date(d.day, 'start of month')",
}

_BACKFILL = """
INSERT INTO usage_monthly (tenant_id, month, price_from, gpu_model, gpu_seconds,
                           cpu_core_seconds, memory_gib_seconds, storage_gib_seconds,
                           first_day, last_day)
SELECT tenant_id, month, price_from, gpu_model, sum(gpu_seconds), sum(cpu_core_seconds),
       sum(memory_gib_seconds), sum(storage_gib_seconds), min(day), max(day)
FROM (
    SELECT d.tenant_id, {month} AS month,
           coalesce((SELECT max(p.effective_from) FROM price_lists p
                     WHERE p.effective_from <= d.day), {sentinel}) AS price_from,
           d.gpu_model, d.day, d.gpu_seconds, d.cpu_core_seconds, d.memory_gib_seconds,
           d.storage_gib_seconds
    FROM usage_daily d
) AS segments
GROUP BY tenant_id, month, price_from, gpu_model
"""


def upgrade() -> None:
    op.create_table(
        "usage_monthly",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("price_from", sa.Date(), nullable=False),
        sa.Column("gpu_model", sa.String(length=100), nullable=False),
        sa.Column("gpu_seconds", sa.Double(), nullable=False),
        sa.Column("cpu_core_seconds", sa.Double(), nullable=False),
        sa.Column("memory_gib_seconds", sa.Double(), nullable=False),
        sa.Column("storage_gib_seconds", sa.Double(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_usage_monthly_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_monthly")),
        sa.UniqueConstraint(
            "tenant_id", "month", "price_from", "gpu_model", name="uq_usage_monthly_segment"
        ),
    )
    with op.batch_alter_table("usage_monthly") as batch:
        batch.create_index("ix_usage_monthly_month", ["month"])
    dialect = op.get_bind().dialect.name
    sentinel = "DATE '0001-01-01'" if dialect == "postgresql" else "'0001-01-01'"
    op.execute(_BACKFILL.format(month=_MONTH[dialect], sentinel=sentinel))


def downgrade() -> None:
    op.drop_table("usage_monthly")
