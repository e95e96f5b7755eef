"""API shapes of tenants."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from controlplane.models import TenantStatus
from controlplane.schemas import AgencyOut
from tenants.quota import Quota


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
