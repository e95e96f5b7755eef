"""``/api/v1/audit``: the audit trail, for platform admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from controlplane.audit import service
from controlplane.audit.schemas import AuditEventOut
from controlplane.auth.dependencies import PlatformAdmin
from controlplane.database import SessionDep
from controlplane.errors import NotAuthenticatedError, PermissionDeniedError, error_responses
from controlplane.schemas import MAX_ID, SafeText

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get(
    "",
    response_model=list[AuditEventOut],
    responses=error_responses(NotAuthenticatedError, PermissionDeniedError),
    summary="Audit events in chain order",
)
def list_audit_events(
    session: SessionDep,
    _admin: PlatformAdmin,
    subject_type: Annotated[SafeText | None, Query(max_length=64)] = None,
    subject_id: Annotated[SafeText | None, Query(max_length=255)] = None,
    after_id: Annotated[
        int, Query(ge=0, le=MAX_ID, description="Return events after this id.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEventOut]:
    events = service.list_events(
        session, subject_type=subject_type, subject_id=subject_id, after_id=after_id, limit=limit
    )
    return [AuditEventOut.model_validate(event) for event in events]
