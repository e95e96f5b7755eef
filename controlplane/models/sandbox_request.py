"""Sandbox requests: what an agency asked for and what was decided."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from controlplane.models.base import Base, UtcDateTime, str_enum, utcnow
from controlplane.models.enums import AiActRisk, DataClassification, RequestStatus

if TYPE_CHECKING:
    from controlplane.models.agency import Agency
    from controlplane.models.tenant import Tenant


class SandboxRequest(Base):
    __tablename__ = "sandbox_requests"
    __table_args__ = (Index("ix_sandbox_requests_agency_status", "agency_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="RESTRICT"))
    requester_subject: Mapped[str] = mapped_column(String(255))
    requester_name: Mapped[str] = mapped_column(String(255))
    requester_email: Mapped[str | None] = mapped_column(String(320))
    purpose: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    data_classification: Mapped[DataClassification] = mapped_column(
        str_enum(DataClassification, "data_classification")
    )
    ai_act_risk: Mapped[AiActRisk] = mapped_column(str_enum(AiActRisk, "ai_act_risk"))
    # Quotas as asked and as granted are historical records, kept as the contract's JSON shape;
    # the tenant's live quota is in columns because capacity sums over it.
    requested_quota: Mapped[dict[str, Any]] = mapped_column(JSON)
    end_date: Mapped[date] = mapped_column(Date)
    status: Mapped[RequestStatus] = mapped_column(
        str_enum(RequestStatus, "request_status"), default=RequestStatus.PENDING
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(255))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decision_comment: Mapped[str | None] = mapped_column(Text)
    granted_quota: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    agency: Mapped[Agency] = relationship(lazy="joined", innerjoin=True)
    tenant: Mapped[Tenant | None] = relationship(back_populates="request", lazy="selectin")
