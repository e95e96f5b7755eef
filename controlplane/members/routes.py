"""``/api/v1/tenants/{slug}/members``: who belongs to a tenant, managed by its admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from controlplane.auth.dependencies import TenantAdmin, TenantMember
from controlplane.database import SessionDep
from controlplane.errors import (
    ConflictError,
    NotAuthenticatedError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
    error_responses,
)
from controlplane.identity.dependencies import IdentityDep
from controlplane.members import service
from controlplane.members.schemas import MemberIn, MemberOut

router = APIRouter(prefix="/api/v1/tenants/{slug}/members", tags=["tenant members"])

Username = Annotated[str, Path(min_length=1, max_length=255, description="Keycloak username.")]
_ERRORS = (NotAuthenticatedError, PermissionDeniedError, NotFoundError, ServiceUnavailableError)


@router.get(
    "",
    response_model=list[MemberOut],
    responses=error_responses(*_ERRORS),
    summary="The tenant's admins and members (for its members, admins and platform admins)",
)
def list_members(caller: TenantMember, identity: IdentityDep) -> list[MemberOut]:
    return service.list_members(identity, caller)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberOut,
    responses=error_responses(*_ERRORS, ConflictError),
    summary="Add a person by username or e-mail as admin or member (tenant admins only)",
)
def add_member(
    body: MemberIn, caller: TenantAdmin, session: SessionDep, identity: IdentityDep
) -> MemberOut:
    return service.add_member(session, identity, caller, body)


@router.delete(
    "/{username}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(*_ERRORS, ConflictError),
    summary="Remove a person from the tenant (tenant admins only)",
)
def remove_member(
    username: Username, caller: TenantAdmin, session: SessionDep, identity: IdentityDep
) -> Response:
    service.remove_member(session, identity, caller, username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
