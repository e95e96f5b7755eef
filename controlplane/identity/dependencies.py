"""The identity store as a FastAPI dependency (None when Keycloak administration is off)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from controlplane.identity.storage import IdentityStore


async def get_identity(request: Request) -> IdentityStore | None:
    identity: IdentityStore | None = getattr(request.app.state, "identity", None)
    return identity


IdentityDep = Annotated[IdentityStore | None, Depends(get_identity)]
