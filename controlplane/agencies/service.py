"""Agency records: one per organisation number, created on an agency's first request."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.agencies.repository import AgencyRepository
from controlplane.models import Agency
from controlplane.schemas import AgencyIn, AgencyOut, format_organisation_number


def ensure_agency(session: Session, agency: AgencyIn) -> Agency:
    """The agency with this organisation number, registered now if it is new.

    The first request registers the agency's name and kind; later requests do not rename it,
    so one person's typo cannot relabel an agency for everyone.
    """
    repository = AgencyRepository(session)
    existing = repository.get_by_organisation_number(agency.organisation_number)
    if existing is not None:
        return existing
    try:
        # A savepoint, so that losing a race with another first request leaves the outer
        # transaction usable and we read the winner's row.
        with session.begin_nested():
            return repository.add(
                Agency(
                    organisation_number=agency.organisation_number,
                    name=agency.name,
                    kind=agency.kind,
                )
            )
    except IntegrityError:
        winner = repository.get_by_organisation_number(agency.organisation_number)
        if winner is None:
            raise
        return winner


def agency_out(agency: Agency) -> AgencyOut:
    return AgencyOut(
        name=agency.name,
        organisation_number=format_organisation_number(agency.organisation_number),
        kind=agency.kind,
    )
