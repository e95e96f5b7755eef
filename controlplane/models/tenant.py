"""Tenants: an approved sandbox and its lifecycle.

Later work hangs the cluster-side Tenant resource, Keycloak groups, members, notebooks and usage
off this record; keep it about identity, ownership, quota and lifecycle.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from controlplane.models.base import Base, UtcDateTime, str_enum, utcnow
from controlplane.models.enums import TenantStatus

if TYPE_CHECKING:
    from controlplane.models.agency import Agency
    from controlplane.models.sandbox_request import SandboxRequest


class Tenant(Base):
    __tablename__ = "tenants"
    __table_args__ = (Index("ix_tenants_gpu_model_status", "gpu_model", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    # Unique: a request yields at most one tenant, whatever races happen above the database.
    request_id: Mapped[int] = mapped_column(
        ForeignKey("sandbox_requests.id", ondelete="RESTRICT"), unique=True
    )
    agency_id: Mapped[int] = mapped_column(
        ForeignKey("agencies.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[TenantStatus] = mapped_column(
        str_enum(TenantStatus, "tenant_status"), default=TenantStatus.PROVISIONING
    )
    gpus: Mapped[int]
    gpu_model: Mapped[str | None] = mapped_column(String(100))
    cpu: Mapped[int]
    memory_gib: Mapped[int]
    storage_gib: Mapped[int]
    expires_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)
    # Set by the status sync when the Tenant resource first reports Ready.
    ready_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    provisioning_seconds: Mapped[float | None]
    # Set by offboarding: when the suspended tenant's resource (and data) may be deleted.
    delete_after: Mapped[datetime | None] = mapped_column(UtcDateTime())

    agency: Mapped[Agency] = relationship(lazy="joined", innerjoin=True)
    request: Mapped[SandboxRequest] = relationship(back_populates="tenant")
