"""Price lists, tenant budgets and budget alerts.

A price list is a version with the calendar day (in the report time zone) from which it is in
force; it stays in force until the next version's day. Versions that are in force or were in
force are never changed, so a report for a past month always prices usage as it was priced then.

Money is exact: amounts are ``Decimal`` in Python and ``NUMERIC`` on PostgreSQL. SQLite has no
exact decimal type (pysqlite would go through ``float``), so there the same columns are stored
as canonical decimal text.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    Dialect,
    ForeignKey,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeEngine

from controlplane.models.base import Base, UtcDateTime, utcnow

if TYPE_CHECKING:
    from controlplane.models.tenant import Tenant


class ExactDecimal(TypeDecorator[Decimal]):
    """``NUMERIC(precision, scale)`` on PostgreSQL; exact decimal text on SQLite."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(self.precision + 2))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        quantized = Decimal(value).quantize(Decimal(1).scaleb(-self.scale))
        return str(quantized) if dialect.name == "sqlite" else quantized

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-self.scale))


# Prices: SEK with four decimals (öre fractions matter for per-hour prices); budgets and
# recorded amounts: SEK with two decimals.
PRICE_PRECISION, PRICE_SCALE = 14, 4
MONEY_PRECISION, MONEY_SCALE = 14, 2


def Price() -> ExactDecimal:  # noqa: N802 - reads like a column type
    return ExactDecimal(PRICE_PRECISION, PRICE_SCALE)


def Money() -> ExactDecimal:  # noqa: N802 - reads like a column type
    return ExactDecimal(MONEY_PRECISION, MONEY_SCALE)


class PriceList(Base):
    __tablename__ = "price_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    # First calendar day (report time zone) on which these prices apply; one version per day.
    effective_from: Mapped[date] = mapped_column(Date, unique=True)
    cpu_core_hour_sek: Mapped[Decimal] = mapped_column(Price())
    memory_gib_hour_sek: Mapped[Decimal] = mapped_column(Price())
    # Per GiB and month of MONTH_DAYS days (see controlplane.costs.pricing).
    storage_gib_month_sek: Mapped[Decimal] = mapped_column(Price())
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255))

    gpu_prices: Mapped[list[GpuPrice]] = relationship(
        back_populates="price_list",
        lazy="selectin",
        cascade="all, delete-orphan",
        order_by="GpuPrice.gpu_model",
    )


class GpuPrice(Base):
    __tablename__ = "gpu_prices"
    __table_args__ = (
        UniqueConstraint("price_list_id", "gpu_model", name="uq_gpu_prices_list_model"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    price_list_id: Mapped[int] = mapped_column(ForeignKey("price_lists.id", ondelete="CASCADE"))
    gpu_model: Mapped[str] = mapped_column(String(100))
    gpu_hour_sek: Mapped[Decimal] = mapped_column(Price())

    price_list: Mapped[PriceList] = relationship(back_populates="gpu_prices")


class Budget(Base):
    """A tenant's monthly budget; ``enforce`` refuses new notebook launches once it is spent."""

    __tablename__ = "budgets"
    __table_args__ = (CheckConstraint("monthly_sek > 0", name="monthly_sek_positive"),)

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    monthly_sek: Mapped[Decimal] = mapped_column(Money())
    enforce: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(255))

    tenant: Mapped[Tenant] = relationship(lazy="joined", innerjoin=True)


class BudgetAlert(Base):
    """A budget threshold reached in a month: recorded once, then delivered to the webhook.

    ``delivery_state``: ``pending`` (to be sent; ``next_attempt_at`` says when), ``delivered``
    (the webhook answered 2xx), ``failed`` (gave up after the last attempt), ``skipped`` (no
    webhook was configured when it was recorded). The row is the event; delivery never removes it.
    """

    __tablename__ = "budget_alerts"
    __table_args__ = (
        # Exactly once per tenant, month and threshold, whatever evaluates concurrently.
        UniqueConstraint("tenant_id", "month", "threshold_percent", name="uq_budget_alerts_once"),
        CheckConstraint("threshold_percent IN (80, 100)", name="threshold_known"),
        CheckConstraint(
            "delivery_state IN ('pending', 'delivered', 'failed', 'skipped')",
            name="delivery_state_known",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    threshold_percent: Mapped[int]
    budget_sek: Mapped[Decimal] = mapped_column(Money())
    spent_sek: Mapped[Decimal] = mapped_column(Money())
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    delivery_state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    tenant: Mapped[Tenant] = relationship(lazy="joined", innerjoin=True)
