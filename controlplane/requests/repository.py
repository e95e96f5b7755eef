"""Queries on sandbox requests."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.models import Agency, RequestStatus, SandboxRequest


class SandboxRequestRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, request: SandboxRequest) -> SandboxRequest:
        self.session.add(request)
        self.session.flush()
        return request

    def get(self, request_id: int) -> SandboxRequest | None:
        return self.session.get(SandboxRequest, request_id)

    def get_for_update(self, request_id: int) -> SandboxRequest | None:
        """The request, locked until the transaction ends, so that one decision wins."""
        return self.session.scalars(
            select(SandboxRequest)
            .where(SandboxRequest.id == request_id)
            .with_for_update(of=SandboxRequest)
            .execution_options(populate_existing=True)
        ).first()

    def list(
        self,
        *,
        organisation_number: str | None,
        status: RequestStatus | None,
        limit: int,
        offset: int,
    ) -> list[SandboxRequest]:
        """Requests, newest first; only one agency's when ``organisation_number`` is given."""
        query = select(SandboxRequest)
        if organisation_number is not None:
            query = query.join(SandboxRequest.agency).where(
                Agency.organisation_number == organisation_number
            )
        if status is not None:
            query = query.where(SandboxRequest.status == status)
        query = query.order_by(SandboxRequest.id.desc()).limit(limit).offset(offset)
        return list(self.session.scalars(query))
