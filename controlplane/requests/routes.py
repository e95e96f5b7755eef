"""``/api/v1/sandbox-requests``: submit and decide sandbox requests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from controlplane.audit.service import Actor
from controlplane.auth.dependencies import CurrentUser, PlatformAdmin, SettingsDep
from controlplane.cluster.dependencies import ClusterDep
from controlplane.database import DatabaseDep, SessionDep
from controlplane.errors import (
    CapacityExceededError,
    DatabaseBusyError,
    InvalidTransitionError,
    LanguageDep,
    NotAuthenticatedError,
    NotFoundError,
    PermissionDeniedError,
    error_responses,
)
from controlplane.identity.dependencies import IdentityDep
from controlplane.models import RequestStatus
from controlplane.requests import service
from controlplane.requests.schemas import ApproveIn, RejectIn, SandboxRequestIn, SandboxRequestOut
from controlplane.schemas import MAX_ID
from controlplane.tenancy import lifecycle

router = APIRouter(prefix="/api/v1/sandbox-requests", tags=["sandbox requests"])

RequestId = Annotated[int, Path(ge=1, le=MAX_ID, description="Sandbox request id.")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SandboxRequestOut,
    responses=error_responses(NotAuthenticatedError, PermissionDeniedError),
    summary="Ask for a sandbox",
)
def submit(body: SandboxRequestIn, session: SessionDep, user: CurrentUser) -> SandboxRequestOut:
    return service.request_out(service.submit(session, user, body))


@router.get(
    "",
    response_model=list[SandboxRequestOut],
    responses=error_responses(NotAuthenticatedError),
    summary="Requests of the caller's agency (all, for platform admins), newest first",
)
def list_requests(
    session: SessionDep,
    user: CurrentUser,
    status: RequestStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[SandboxRequestOut]:
    requests = service.list_requests(session, user, status=status, limit=limit, offset=offset)
    return [service.request_out(r) for r in requests]


@router.get(
    "/{request_id}",
    response_model=SandboxRequestOut,
    responses=error_responses(NotAuthenticatedError, NotFoundError),
    summary="One request",
)
def get_request(request_id: RequestId, session: SessionDep, user: CurrentUser) -> SandboxRequestOut:
    return service.request_out(service.get(session, user, request_id))


@router.post(
    "/{request_id}/approve",
    response_model=SandboxRequestOut,
    responses=error_responses(
        NotAuthenticatedError,
        PermissionDeniedError,
        NotFoundError,
        InvalidTransitionError,
        CapacityExceededError,
        DatabaseBusyError,
    ),
    summary="Approve with a granted quota; creates the tenant",
)
def approve(
    request_id: RequestId,
    body: ApproveIn,
    session: SessionDep,
    admin: PlatformAdmin,
    *,
    settings: SettingsDep,
    language: LanguageDep,
    database: DatabaseDep,
    cluster: ClusterDep,
    identity: IdentityDep,
) -> SandboxRequestOut:
    # 1. The decision, the GPU reservation, the tenant row and the audit events in one short
    #    transaction, committed here so that its locks are released before anything slow.
    request = service.approve(session, admin, request_id, body, settings.gpu_overcommit)
    out = service.request_out(request)
    session.commit()
    # 2. The Tenant resource and the identity groups, with no transaction open. A failure
    #    leaves the tenant provisioning, recorded, for the sync to finish (no lost approval).
    assert out.tenant is not None
    pending = lifecycle.complete_setup(
        database, cluster, identity, out.tenant.slug, Actor.of(admin)
    )
    out.setup_pending = [problem.render(language) for problem in pending]
    return out


@router.post(
    "/{request_id}/reject",
    response_model=SandboxRequestOut,
    responses=error_responses(
        NotAuthenticatedError, PermissionDeniedError, NotFoundError, InvalidTransitionError
    ),
    summary="Reject with a reason",
)
def reject(
    request_id: RequestId, body: RejectIn, session: SessionDep, admin: PlatformAdmin
) -> SandboxRequestOut:
    return service.request_out(service.reject(session, admin, request_id, body))


@router.post(
    "/{request_id}/withdraw",
    response_model=SandboxRequestOut,
    responses=error_responses(
        NotAuthenticatedError, PermissionDeniedError, NotFoundError, InvalidTransitionError
    ),
    summary="Withdraw one's own pending request",
)
def withdraw(request_id: RequestId, session: SessionDep, user: CurrentUser) -> SandboxRequestOut:
    return service.request_out(service.withdraw(session, user, request_id))
