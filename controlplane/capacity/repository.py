"""Queries on GPU capacity and the GPUs granted against it."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controlplane.models import GpuCapacity, Tenant, TenantStatus

# Tenants hold their GPUs until they are gone; a tenant being deleted still runs pods.
HOLDS_CAPACITY = tuple(s for s in TenantStatus if s is not TenantStatus.DELETED)


class CapacityRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def list(self) -> list[GpuCapacity]:
        return list(self.session.scalars(select(GpuCapacity).order_by(GpuCapacity.gpu_model)))

    def get(self, gpu_model: str) -> GpuCapacity | None:
        return self.session.get(GpuCapacity, gpu_model)

    def get_for_update(self, gpu_model: str) -> GpuCapacity | None:
        """The row, locked until the transaction ends (FOR UPDATE on PostgreSQL).

        Every approval that grants GPUs of this model takes this lock before it sums what is
        granted, so two approvals can never both see the same free GPUs.
        """
        return self.session.scalars(
            select(GpuCapacity)
            .where(GpuCapacity.gpu_model == gpu_model)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()

    def add(self, capacity: GpuCapacity) -> GpuCapacity:
        self.session.add(capacity)
        self.session.flush()
        return capacity

    def granted_by_model(self) -> dict[str, int]:
        rows = self.session.execute(
            select(Tenant.gpu_model, func.coalesce(func.sum(Tenant.gpus), 0))
            .where(Tenant.gpu_model.is_not(None), Tenant.status.in_(HOLDS_CAPACITY))
            .group_by(Tenant.gpu_model)
        )
        return {model: int(total) for model, total in rows if model is not None}

    def granted(self, gpu_model: str) -> int:
        total = self.session.scalar(
            select(func.coalesce(func.sum(Tenant.gpus), 0)).where(
                Tenant.gpu_model == gpu_model, Tenant.status.in_(HOLDS_CAPACITY)
            )
        )
        return int(total or 0)
