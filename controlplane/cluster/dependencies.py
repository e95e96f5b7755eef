"""The cluster as a FastAPI dependency (None when the control plane runs without one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from controlplane.cluster.storage import TenantCluster


async def get_cluster(request: Request) -> TenantCluster | None:
    cluster: TenantCluster | None = getattr(request.app.state, "cluster", None)
    return cluster


ClusterDep = Annotated[TenantCluster | None, Depends(get_cluster)]
