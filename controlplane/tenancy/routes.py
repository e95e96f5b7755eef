"""``/api/v1/tenants``: the tenants a caller may see."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool

from controlplane.auth.dependencies import CurrentUser
from controlplane.database import SessionDep
from controlplane.errors import NotAuthenticatedError, NotFoundError, error_responses
from controlplane.schemas import MAX_ID
from controlplane.tenancy import service
from controlplane.tenancy.schemas import TenantOut

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"])

MAX_PAGE = 1000


@router.get(
    "",
    response_model=list[TenantOut],
    responses=error_responses(NotAuthenticatedError),
    summary="Tenants of the caller's agency and of their groups (all, for platform admins)",
)
async def list_tenants(
    session: SessionDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[TenantOut]:
    # The hottest read: an async route with one explicit thread hop for the query, because a
    # sync route costs a second hop (FastAPI validates a sync route's response in the pool).
    return await run_in_threadpool(service.list_tenants, session, user, limit=limit, offset=offset)


@router.get(
    "/{slug}",
    response_model=TenantOut,
    responses=error_responses(NotAuthenticatedError, NotFoundError),
    summary="One tenant",
)
def get_tenant(
    slug: Annotated[str, Path(max_length=40)], session: SessionDep, user: CurrentUser
) -> TenantOut:
    return service.tenant_out(service.get_tenant(session, user, slug))
