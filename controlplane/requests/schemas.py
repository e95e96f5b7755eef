"""API shapes of sandbox requests (the JSON names are a public contract)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from controlplane.models import AiActRisk, DataClassification, RequestStatus
from controlplane.schemas import AgencyIn, AgencyOut, SafeText
from controlplane.tenancy.schemas import TenantOut
from tenants.quota import Quota

# Far enough for any pilot; further is almost certainly a typo (2207 for 2027).
MAX_YEARS_AHEAD = 5


class SandboxRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        SafeText,
        Field(
            min_length=1,
            max_length=100,
            description="Project name; the tenant's slug is derived from it.",
            examples=["kiruna-ai-pilot"],
        ),
    ]
    agency: AgencyIn
    purpose: Annotated[SafeText, Field(min_length=1, max_length=4000)]
    legal_basis: Annotated[SafeText, Field(min_length=1, max_length=2000)]
    data_classification: DataClassification
    ai_act_risk: AiActRisk = Field(
        description="Self-assessment under the EU AI Act; 'unacceptable' is refused."
    )
    quota: Quota
    end_date: date = Field(
        description=f"Last day of the sandbox; after today, at most {MAX_YEARS_AHEAD} years ahead."
    )


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quota: Quota | None = Field(
        None, description="The granted quota; defaults to the requested one."
    )
    comment: Annotated[SafeText | None, Field(max_length=2000)] = None


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[SafeText, Field(min_length=1, max_length=2000)]


class RequesterOut(BaseModel):
    subject: str
    name: str
    email: str | None


class DecisionOut(BaseModel):
    by: str
    at: datetime
    comment: str | None
    quota: Quota | None = Field(description="The granted quota (approvals only).")


class SandboxRequestOut(BaseModel):
    id: int
    name: str
    status: RequestStatus
    agency: AgencyOut
    requester: RequesterOut
    purpose: str
    legal_basis: str
    data_classification: DataClassification
    ai_act_risk: AiActRisk
    quota: Quota
    end_date: date
    created_at: datetime
    decision: DecisionOut | None
    tenant: TenantOut | None
    setup_pending: list[str] = Field(
        default_factory=list,
        description="Approval only: set-up steps (Tenant resource, identity groups) that could "
        "not be done yet; the approval stands and the status sync retries them.",
    )
