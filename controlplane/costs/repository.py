"""Queries on price lists, daily usage, budgets and budget alerts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Integer, Select, case, literal, select
from sqlalchemy import func as sql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from controlplane.models import (
    Agency,
    Budget,
    BudgetAlert,
    PriceList,
    Tenant,
    UsageDaily,
    UsageMonthly,
)

# (tenant_id, slug, organisation number, agency name, period index, gpu_model, gpu seconds,
# CPU core-seconds, memory GiB-seconds, storage GiB-seconds)
UsageRow = tuple[int, str, str, str, int, str, float, float, float, float]
# (tenant_id, slug, organisation number, agency name, price_from, gpu_model, gpu seconds,
# CPU core-seconds, memory GiB-seconds, storage GiB-seconds, first day, last day)
MonthlyRow = tuple[int, str, str, str, date, str, float, float, float, float, date, date]


def _rows(session: Session, query: Select[*tuple[Any, ...]]) -> list[Any]:
    # Core rows straight from the connection, fetched at once: a month for every agency is
    # thousands of rows, and the ORM's (or a row-by-row fetch's) work per row costs more than
    # the SQL.
    return list(session.connection().execute(query).all())


class CostRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # Price lists
    def price_lists(self) -> list[PriceList]:
        return list(self.session.scalars(select(PriceList).order_by(PriceList.effective_from)))

    def price_list(self, price_list_id: int) -> PriceList | None:
        return self.session.get(PriceList, price_list_id)

    def price_list_on(self, effective_from: date) -> PriceList | None:
        return self.session.scalars(
            select(PriceList).where(PriceList.effective_from == effective_from)
        ).first()

    def add(self, row: PriceList | Budget | BudgetAlert) -> None:
        self.session.add(row)
        self.session.flush()

    def delete(self, row: PriceList | Budget) -> None:
        self.session.delete(row)
        self.session.flush()

    # Usage
    def usage(
        self,
        periods: Sequence[tuple[date, date]],
        *,
        agency_id: int | None = None,
        tenant_id: int | None = None,
    ) -> list[UsageRow]:
        """usage_daily summed per tenant, period and GPU model, with the tenant's names.

        ``periods`` are consecutive (first, last) day ranges; one grouped scan over all of
        them (the period of a day is a CASE on the day), so a month with a price change costs
        no more than one without.
        """
        first, last = periods[0][0], periods[-1][1]
        whens = [(UsageDaily.day <= end, index) for index, (_, end) in enumerate(periods[:-1])]
        period = (case(*whens, else_=len(periods) - 1) if whens else literal(0, Integer)).label(
            "period"
        )
        sums = (
            select(
                UsageDaily.tenant_id,
                period,
                UsageDaily.gpu_model,
                sql.sum(UsageDaily.gpu_seconds).label("gpu"),
                sql.sum(UsageDaily.cpu_core_seconds).label("cpu"),
                sql.sum(UsageDaily.memory_gib_seconds).label("memory"),
                sql.sum(UsageDaily.storage_gib_seconds).label("storage"),
            )
            .where(UsageDaily.day >= first, UsageDaily.day <= last)
            .group_by(UsageDaily.tenant_id, period, UsageDaily.gpu_model)
        )
        if tenant_id is not None:
            sums = sums.where(UsageDaily.tenant_id == tenant_id)
        if agency_id is not None:
            sums = sums.where(
                UsageDaily.tenant_id.in_(select(Tenant.id).where(Tenant.agency_id == agency_id))
            )
        grouped = sums.subquery()
        query = (
            select(
                grouped.c.tenant_id,
                Tenant.slug,
                Agency.organisation_number,
                Agency.name,
                grouped.c.period,
                grouped.c.gpu_model,
                grouped.c.gpu,
                grouped.c.cpu,
                grouped.c.memory,
                grouped.c.storage,
            )
            .join(Tenant, Tenant.id == grouped.c.tenant_id)
            .join(Agency, Agency.id == Tenant.agency_id)
            # One order, so that the report adds the floats in the same order every time.
            .order_by(grouped.c.tenant_id, grouped.c.period, grouped.c.gpu_model)
        )
        return _rows(self.session, query)

    def monthly_usage(
        self, month: date, *, agency_id: int | None = None, tenant_id: int | None = None
    ) -> list[MonthlyRow]:
        """The month's ``usage_monthly`` rows (one per tenant, price segment and GPU model),
        with the tenant's names: a few thousand rows for every agency."""
        query = (
            select(
                UsageMonthly.tenant_id,
                Tenant.slug,
                Agency.organisation_number,
                Agency.name,
                UsageMonthly.price_from,
                UsageMonthly.gpu_model,
                UsageMonthly.gpu_seconds,
                UsageMonthly.cpu_core_seconds,
                UsageMonthly.memory_gib_seconds,
                UsageMonthly.storage_gib_seconds,
                UsageMonthly.first_day,
                UsageMonthly.last_day,
            )
            .join(Tenant, Tenant.id == UsageMonthly.tenant_id)
            .join(Agency, Agency.id == Tenant.agency_id)
            .where(UsageMonthly.month == month)
            # The same order as usage(): segments (price periods) are in date order.
            .order_by(UsageMonthly.tenant_id, UsageMonthly.price_from, UsageMonthly.gpu_model)
        )
        if tenant_id is not None:
            query = query.where(UsageMonthly.tenant_id == tenant_id)
        if agency_id is not None:
            query = query.where(Tenant.agency_id == agency_id)
        return _rows(self.session, query)

    def agency_by_organisation_number(self, organisation_number: str) -> Agency | None:
        return self.session.scalars(
            select(Agency).where(Agency.organisation_number == organisation_number)
        ).first()

    # Budgets
    def budget(self, tenant_id: int) -> Budget | None:
        return self.session.get(Budget, tenant_id)

    def budgets(self) -> list[Budget]:
        return list(self.session.scalars(select(Budget).order_by(Budget.tenant_id)))

    def alerts(self, tenant_id: int, month: str) -> list[BudgetAlert]:
        return list(
            self.session.scalars(
                select(BudgetAlert)
                .where(BudgetAlert.tenant_id == tenant_id, BudgetAlert.month == month)
                .order_by(BudgetAlert.threshold_percent)
            )
        )

    def record_alert_once(self, values: dict[str, object]) -> int | None:
        """Insert an alert unless its (tenant, month, threshold) exists; its id if inserted.

        ``ON CONFLICT DO NOTHING`` on the unique constraint: two evaluations racing each other
        record one alert, and neither fails.
        """
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = (
            insert(BudgetAlert)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["tenant_id", "month", "threshold_percent"])
            .returning(BudgetAlert.id)
        )
        return self.session.execute(statement).scalar()

    def due_alerts(self, now: datetime, limit: int = 100) -> Sequence[BudgetAlert]:
        """Pending alerts whose next attempt is due, locked (skipping ones another worker has)."""
        return self.session.scalars(
            select(BudgetAlert)
            .where(
                BudgetAlert.delivery_state == "pending",
                (BudgetAlert.next_attempt_at.is_(None)) | (BudgetAlert.next_attempt_at <= now),
            )
            .order_by(BudgetAlert.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=BudgetAlert)
            .execution_options(populate_existing=True)
        ).all()
