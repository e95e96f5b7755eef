"""Queries on price lists, daily usage, budgets and budget alerts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func as sql
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from controlplane.models import Agency, Budget, BudgetAlert, PriceList, Tenant, UsageDaily


@dataclass(frozen=True)
class UsageRow:
    """Summed usage_daily of one tenant and GPU model over some days."""

    tenant_id: int
    slug: str
    organisation_number: str
    agency_name: str
    gpu_model: str
    gpu_seconds: float
    cpu_core_seconds: float
    memory_gib_seconds: float
    storage_gib_seconds: float


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
        first: date,
        last: date,
        *,
        agency_id: int | None = None,
        tenant_id: int | None = None,
    ) -> list[UsageRow]:
        """usage_daily summed per tenant and GPU model over ``first``..``last`` (inclusive)."""
        query = (
            select(
                UsageDaily.tenant_id,
                UsageDaily.gpu_model,
                sql.sum(UsageDaily.gpu_seconds),
                sql.sum(UsageDaily.cpu_core_seconds),
                sql.sum(UsageDaily.memory_gib_seconds),
                sql.sum(UsageDaily.storage_gib_seconds),
            )
            .where(UsageDaily.day >= first, UsageDaily.day <= last)
            .group_by(UsageDaily.tenant_id, UsageDaily.gpu_model)
        )
        if tenant_id is not None:
            query = query.where(UsageDaily.tenant_id == tenant_id)
        if agency_id is not None:
            query = query.where(
                UsageDaily.tenant_id.in_(select(Tenant.id).where(Tenant.agency_id == agency_id))
            )
        sums = self.session.execute(query).all()
        names = self._tenant_names({row[0] for row in sums})
        return [
            UsageRow(
                tenant_id,
                *names[tenant_id],
                gpu_model,
                float(gpu or 0),
                float(cpu or 0),
                float(memory or 0),
                float(storage or 0),
            )
            for tenant_id, gpu_model, gpu, cpu, memory, storage in sums
        ]

    def _tenant_names(self, tenant_ids: set[int]) -> dict[int, tuple[str, str, str]]:
        if not tenant_ids:
            return {}
        rows = self.session.execute(
            select(Tenant.id, Tenant.slug, Agency.organisation_number, Agency.name)
            .join(Agency, Agency.id == Tenant.agency_id)
            .where(Tenant.id.in_(sorted(tenant_ids)))
        )
        return {tenant_id: (slug, org, name) for tenant_id, slug, org, name in rows}

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
