"""Queries on agencies."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.models import Agency


class AgencyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_by_organisation_number(self, organisation_number: str) -> Agency | None:
        return self.session.scalars(
            select(Agency).where(Agency.organisation_number == organisation_number)
        ).first()

    def add(self, agency: Agency) -> Agency:
        self.session.add(agency)
        self.session.flush()
        return agency
