"""API shapes of tenants."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from controlplane.models import TenantStatus
from controlplane.schemas import AgencyOut
from tenants.quota import Quota
from tenants.resource import Condition, Phase


class TenantOut(BaseModel):
    slug: str = Field(examples=["kiruna-ai-pilot"])
    namespace: str = Field(examples=["t-kiruna-ai-pilot"])
    agency: AgencyOut
    status: TenantStatus
    quota: Quota
    expires_on: date
    request_id: int
    created_at: datetime
    updated_at: datetime
    ready_at: datetime | None = Field(None, description="When the cluster first reported Ready.")
    provisioning_seconds: float | None = Field(
        None, description="Approval to Ready, in seconds.", examples=[0.8]
    )
    delete_after: datetime | None = Field(
        None, description="For an offboarded tenant: when its namespace and data are deleted."
    )


class ClusterStatusOut(BaseModel):
    """The Tenant resource's status as the operator reports it (read live)."""

    reachable: bool
    phase: Phase | None = None
    conditions: list[Condition] = Field(default_factory=list)
    gpus_used: int | None = None


class TenantDetailOut(TenantOut):
    cluster: ClusterStatusOut
    setup_pending: list[str] = Field(
        default_factory=list,
        description="Set-up steps an approval could not finish yet (the status sync retries "
        "them), with the last error.",
    )


class SyncOut(BaseModel):
    """Tenant slugs each step of one sync pass touched."""

    created: list[str]
    expired: list[str]
    ready: list[str]
    deleting: list[str]
    deleted: list[str]
    groups: list[str] = Field(default_factory=list, description="Identity groups set up late.")
    reapplied: list[str] = Field(
        default_factory=list, description="Resources whose spec was re-applied to match SQL."
    )
