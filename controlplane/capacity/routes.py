"""``/api/v1/capacity``: GPU capacity per model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from controlplane.audit.service import Actor
from controlplane.auth.dependencies import CurrentUser, PlatformAdmin, SettingsDep
from controlplane.capacity import service
from controlplane.capacity.schemas import CapacityIn, CapacityOut
from controlplane.cluster.dependencies import ClusterDep
from controlplane.cluster.storage import (
    NOT_CONFIGURED_MESSAGE,
    ClusterError,
    ClusterNotConfiguredError,
    ClusterUnavailableError,
)
from controlplane.database import SessionDep
from controlplane.errors import (
    ConflictError,
    NotAuthenticatedError,
    PermissionDeniedError,
    error_responses,
)
from controlplane.schemas import SafeText

router = APIRouter(prefix="/api/v1/capacity", tags=["capacity"])

GpuModelPath = Annotated[
    SafeText,
    Path(min_length=1, max_length=100, description="GPU model as advertised by the nodes."),
]


@router.get(
    "",
    response_model=list[CapacityOut],
    responses=error_responses(NotAuthenticatedError),
    summary="GPUs per model: total, granted, free",
)
def list_capacity(
    session: SessionDep, _user: CurrentUser, settings: SettingsDep
) -> list[CapacityOut]:
    return service.list_capacity(session, settings.gpu_overcommit)


@router.put(
    "/{gpu_model}",
    response_model=CapacityOut,
    responses=error_responses(NotAuthenticatedError, PermissionDeniedError, ConflictError),
    summary="Register or change the number of GPUs of a model",
)
def set_capacity(
    gpu_model: GpuModelPath,
    body: CapacityIn,
    session: SessionDep,
    admin: PlatformAdmin,
    settings: SettingsDep,
) -> CapacityOut:
    return service.set_capacity(
        session, Actor.of(admin), gpu_model, body.total, settings.gpu_overcommit
    )


@router.post(
    "/sync",
    response_model=list[CapacityOut],
    responses=error_responses(
        NotAuthenticatedError,
        PermissionDeniedError,
        ClusterNotConfiguredError,
        ClusterUnavailableError,
        ClusterError,
    ),
    summary="Set each GPU model's total from the cluster's nodes (admin overrides win)",
)
def sync_capacity(
    session: SessionDep, admin: PlatformAdmin, settings: SettingsDep, cluster: ClusterDep
) -> list[CapacityOut]:
    if cluster is None:
        raise ClusterNotConfiguredError(NOT_CONFIGURED_MESSAGE)
    return service.sync_from_nodes(
        session, Actor.of(admin), cluster.gpu_capacity(), settings.gpu_overcommit
    )
