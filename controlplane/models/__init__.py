"""ORM models of the control plane, all in one package so Alembic sees one metadata."""

from controlplane.models.agency import Agency
from controlplane.models.audit import AuditEvent
from controlplane.models.base import Base
from controlplane.models.capacity import GpuCapacity
from controlplane.models.changes import ChangeCounter
from controlplane.models.enums import (
    AgencyKind,
    AiActRisk,
    DataClassification,
    RequestStatus,
    TenantStatus,
)
from controlplane.models.pricing import Budget, BudgetAlert, GpuPrice, PriceList
from controlplane.models.sandbox_request import SandboxRequest
from controlplane.models.tenant import Tenant
from controlplane.models.usage import StorageInterval, UsageDaily, UsageInterval, UsageMonthly

__all__ = [
    "Agency",
    "AgencyKind",
    "AiActRisk",
    "AuditEvent",
    "Base",
    "Budget",
    "BudgetAlert",
    "ChangeCounter",
    "DataClassification",
    "GpuCapacity",
    "GpuPrice",
    "PriceList",
    "RequestStatus",
    "SandboxRequest",
    "StorageInterval",
    "Tenant",
    "TenantStatus",
    "UsageDaily",
    "UsageInterval",
    "UsageMonthly",
]
