"""``/api/v1/tenants``: the tenants a caller may see."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from controlplane.audit.service import Actor
from controlplane.auth.dependencies import CurrentUser, PlatformAdmin, SettingsDep
from controlplane.cluster.dependencies import ClusterDep
from controlplane.cluster.storage import (
    NOT_CONFIGURED_MESSAGE,
    ClusterError,
    ClusterNotConfiguredError,
    ClusterUnavailableError,
)
from controlplane.database import DatabaseDep, SessionDep
from controlplane.errors import (
    InvalidTransitionError,
    LanguageDep,
    NotAuthenticatedError,
    NotFoundError,
    PermissionDeniedError,
    error_responses,
)
from controlplane.identity.dependencies import IdentityDep
from controlplane.schemas import MAX_ID
from controlplane.tenancy import lifecycle, service
from controlplane.tenancy.listcache import TenantListCache
from controlplane.tenancy.schemas import SyncOut, TenantDetailOut, TenantOut

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"])

MAX_PAGE = 1000


@router.get(
    "",
    response_model=list[TenantOut],
    responses={
        **error_responses(NotAuthenticatedError),
        304: {"description": "Not modified: the page still has the ETag sent in If-None-Match"},
    },
    summary="Tenants of the caller's agency and of their groups (all, for platform admins)",
)
async def list_tenants(
    request: Request,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> Response:
    # The hottest read. Pages come from the tenant list cache, which renders (in the
    # threadpool) only when tenants or agencies changed since the page was kept; the route
    # returns the JSON document itself (``response_model`` documents it).
    cache: TenantListCache = request.app.state.tenant_list_cache
    page = await cache.page(user, limit, offset)
    headers = {"Cache-Control": "private, no-cache"}
    if page.etag is not None:
        headers["ETag"] = page.etag
        if _matches(request.headers.get("if-none-match"), page.etag):
            return Response(status_code=304, headers=headers)
    return Response(page.content, media_type="application/json", headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in candidates or "*" in candidates


SlugPath = Annotated[str, Path(max_length=40)]
_CHANGE_ERRORS = (
    NotAuthenticatedError,
    PermissionDeniedError,
    NotFoundError,
    InvalidTransitionError,
    ClusterNotConfiguredError,
    ClusterUnavailableError,
    ClusterError,
)


@router.post(
    "/sync",
    response_model=SyncOut,
    responses=error_responses(
        NotAuthenticatedError,
        PermissionDeniedError,
        ClusterNotConfiguredError,
        ClusterUnavailableError,
        ClusterError,
    ),
    summary="Run one tenant status sync pass now (it also runs periodically)",
)
def sync(
    database: DatabaseDep,
    _admin: PlatformAdmin,
    cluster: ClusterDep,
    identity: IdentityDep,
    settings: SettingsDep,
) -> SyncOut:
    if cluster is None:
        raise ClusterNotConfiguredError(NOT_CONFIGURED_MESSAGE)
    retention = timedelta(days=settings.tenant_retention_days)
    report = lifecycle.sync_tenants(database, cluster, retention=retention, identity=identity)
    return SyncOut(**vars(report))


@router.get(
    "/{slug}",
    response_model=TenantDetailOut,
    responses=error_responses(NotAuthenticatedError, NotFoundError),
    summary="One tenant, with the cluster's conditions for it",
)
def get_tenant(
    slug: SlugPath,
    session: SessionDep,
    user: CurrentUser,
    cluster: ClusterDep,
    language: LanguageDep,
) -> TenantDetailOut:
    tenant = service.get_tenant(session, user, slug)
    return TenantDetailOut(
        **service.tenant_out(tenant).model_dump(),
        cluster=lifecycle.cluster_status(cluster, tenant, language),
        setup_pending=[m.render(language) for m in lifecycle.setup_pending(session, tenant)],
    )


@router.post(
    "/{slug}/suspend",
    response_model=TenantOut,
    responses=error_responses(*_CHANGE_ERRORS),
    summary="Suspend: no new pods, running ones stopped, data kept",
)
def suspend(
    slug: SlugPath, session: SessionDep, admin: PlatformAdmin, cluster: ClusterDep
) -> TenantOut:
    tenant = service.get_tenant(session, admin, slug)
    return service.tenant_out(lifecycle.suspend(session, Actor.of(admin), cluster, tenant))


@router.post(
    "/{slug}/resume",
    response_model=TenantOut,
    responses=error_responses(*_CHANGE_ERRORS),
    summary="Resume a suspended tenant",
)
def resume(
    slug: SlugPath, session: SessionDep, admin: PlatformAdmin, cluster: ClusterDep
) -> TenantOut:
    tenant = service.get_tenant(session, admin, slug)
    return service.tenant_out(lifecycle.resume(session, Actor.of(admin), cluster, tenant))


@router.post(
    "/{slug}/offboard",
    response_model=TenantOut,
    responses=error_responses(*_CHANGE_ERRORS),
    summary="Offboard: suspend now, delete namespace and data after the retention period",
)
def offboard(
    slug: SlugPath,
    session: SessionDep,
    admin: PlatformAdmin,
    cluster: ClusterDep,
    settings: SettingsDep,
) -> TenantOut:
    tenant = service.get_tenant(session, admin, slug)
    retention = timedelta(days=settings.tenant_retention_days)
    return service.tenant_out(
        lifecycle.offboard(session, Actor.of(admin), cluster, tenant, retention)
    )
