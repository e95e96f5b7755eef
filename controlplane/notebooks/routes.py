"""``/api/v1/notebook-profiles`` and ``/api/v1/tenants/{slug}/notebooks``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from controlplane.auth.dependencies import (
    CurrentUser,
    TenantCaller,
    TenantMember,
    require_tenant_member,
)
from controlplane.cluster.dependencies import ClusterDep
from controlplane.cluster.storage import (
    ClusterError,
    ClusterNotConfiguredError,
    ClusterUnavailableError,
)
from controlplane.database import SessionDep
from controlplane.errors import (
    ConflictError,
    NotAuthenticatedError,
    NotFoundError,
    PermissionDeniedError,
    error_responses,
)
from controlplane.notebooks import service
from controlplane.notebooks.quota import QuotaExceededError
from controlplane.notebooks.schemas import NotebookIn, NotebookOut, ProfileOut
from controlplane.notebooks.storage import NotebookExistsError
from tenants.catalog import Catalog, load_catalog
from tenants.notebook import NAME_MAX_LENGTH

router = APIRouter(tags=["notebooks"])


async def get_catalog(request: Request) -> Catalog:
    """The notebook catalogue: ``app.state.notebook_catalog`` if set, else the packaged one."""
    catalog: Catalog | None = getattr(request.app.state, "notebook_catalog", None)
    return catalog if catalog is not None else load_catalog()


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
NotebookName = Annotated[
    str, Path(min_length=1, max_length=NAME_MAX_LENGTH, description="Notebook name.")
]
_READ_ERRORS = (
    NotAuthenticatedError,
    PermissionDeniedError,
    NotFoundError,
    ClusterNotConfiguredError,
    ClusterUnavailableError,
    ClusterError,
)


@router.get(
    "/api/v1/notebook-profiles",
    response_model=list[ProfileOut],
    responses=error_responses(NotAuthenticatedError, PermissionDeniedError, NotFoundError),
    summary="Notebook profiles; with ?tenant=, only those the caller may launch there",
)
async def list_profiles(
    user: CurrentUser,
    session: SessionDep,
    catalog: CatalogDep,
    tenant: Annotated[
        str | None,
        Query(min_length=1, max_length=40, description="Tenant slug to filter for."),
    ] = None,
) -> list[ProfileOut]:
    caller: TenantCaller | None = None
    if tenant is not None:
        caller = await require_tenant_member(tenant, user, session)
    return service.list_profiles(catalog, caller)


@router.post(
    "/api/v1/tenants/{slug}/notebooks",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=NotebookOut,
    responses=error_responses(
        *_READ_ERRORS, ConflictError, QuotaExceededError, NotebookExistsError
    ),
    summary="Launch a notebook server from a profile (tenant members); 202, then phase → Running",
)
def launch(
    body: NotebookIn,
    caller: TenantMember,
    session: SessionDep,
    cluster: ClusterDep,
    catalog: CatalogDep,
) -> NotebookOut:
    return service.launch(session, cluster, catalog, caller, body)


@router.get(
    "/api/v1/tenants/{slug}/notebooks",
    response_model=list[NotebookOut],
    responses=error_responses(*_READ_ERRORS),
    summary="The tenant's notebooks (tenant members)",
)
async def list_notebooks(caller: TenantMember, cluster: ClusterDep) -> list[NotebookOut]:
    return await run_in_threadpool(service.list_notebooks, cluster, caller)


@router.get(
    "/api/v1/tenants/{slug}/notebooks/{name}",
    response_model=NotebookOut,
    responses=error_responses(*_READ_ERRORS),
    summary="One notebook (tenant members)",
)
async def get_notebook(
    name: NotebookName, caller: TenantMember, cluster: ClusterDep
) -> NotebookOut:
    return await run_in_threadpool(service.get_notebook, cluster, caller, name)


@router.delete(
    "/api/v1/tenants/{slug}/notebooks/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(*_READ_ERRORS),
    summary="Stop a notebook: its pod goes, its home volume stays (owner or tenant admin)",
)
def stop(
    name: NotebookName, caller: TenantMember, session: SessionDep, cluster: ClusterDep
) -> Response:
    service.stop(session, cluster, caller, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
