"""pricing: price list versions, GPU prices, tenant budgets, budget alerts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 05:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _decimal(precision: int, scale: int) -> sa.types.TypeEngine[object]:
    # NUMERIC on PostgreSQL; exact decimal text on SQLite (see controlplane.models.pricing).
    return sa.Numeric(precision, scale).with_variant(sa.String(precision + 2), "sqlite")


def _price() -> sa.types.TypeEngine[object]:
    return _decimal(14, 4)


def _money() -> sa.types.TypeEngine[object]:
    return _decimal(14, 2)


def upgrade() -> None:
    op.create_table(
        "price_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("cpu_core_hour_sek", _price(), nullable=False),
        sa.Column("memory_gib_hour_sek", _price(), nullable=False),
        sa.Column("storage_gib_month_sek", _price(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_lists")),
        sa.UniqueConstraint("effective_from", name=op.f("uq_price_lists_effective_from")),
    )
    op.create_table(
        "gpu_prices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("price_list_id", sa.Integer(), nullable=False),
        sa.Column("gpu_model", sa.String(length=100), nullable=False),
        sa.Column("gpu_hour_sek", _price(), nullable=False),
        sa.ForeignKeyConstraint(
            ["price_list_id"],
            ["price_lists.id"],
            name=op.f("fk_gpu_prices_price_list_id_price_lists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gpu_prices")),
        sa.UniqueConstraint("price_list_id", "gpu_model", name="uq_gpu_prices_list_model"),
    )
    op.create_table(
        "budgets",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("monthly_sek", _money(), nullable=False),
        sa.Column("enforce", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.CheckConstraint("monthly_sek > 0", name=op.f("ck_budgets_monthly_sek_positive")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_budgets_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_budgets")),
    )
    op.create_table(
        "budget_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("threshold_percent", sa.Integer(), nullable=False),
        sa.Column("budget_sek", _money(), nullable=False),
        sa.Column("spent_sek", _money(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivery_state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "threshold_percent IN (80, 100)", name=op.f("ck_budget_alerts_threshold_known")
        ),
        sa.CheckConstraint(
            "delivery_state IN ('pending', 'delivered', 'failed', 'skipped')",
            name=op.f("ck_budget_alerts_delivery_state_known"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_budget_alerts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_alerts")),
        sa.UniqueConstraint(
            "tenant_id", "month", "threshold_percent", name="uq_budget_alerts_once"
        ),
    )
    with op.batch_alter_table("budget_alerts") as batch:
        batch.create_index(batch.f("ix_budget_alerts_tenant_id"), ["tenant_id"])
        batch.create_index(batch.f("ix_budget_alerts_delivery_state"), ["delivery_state"])


def downgrade() -> None:
    op.drop_table("budget_alerts")
    op.drop_table("budgets")
    op.drop_table("gpu_prices")
    op.drop_table("price_lists")
