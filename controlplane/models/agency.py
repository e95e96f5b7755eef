"""Agencies: the public-sector organisations that ask for sandboxes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from controlplane.models.base import Base, UtcDateTime, str_enum, utcnow
from controlplane.models.enums import AgencyKind


class Agency(Base):
    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Ten digits without the dash (stdnum's compact form); formatted as NNNNNN-NNNN on output.
    organisation_number: Mapped[str] = mapped_column(String(10), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[AgencyKind] = mapped_column(str_enum(AgencyKind, "agency_kind"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
