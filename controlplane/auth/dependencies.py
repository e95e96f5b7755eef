"""Typed auth dependencies: a route's signature says who may call it.

``CurrentUser`` is any caller with a valid token; ``PlatformAdmin`` additionally needs the
``platform-admin`` realm role. Agency and tenant scoping happen in the services, which receive
the ``User``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controlplane.auth.oidc import OidcVerifier
from controlplane.auth.principal import User
from controlplane.errors import NotAuthenticatedError, PermissionDeniedError
from controlplane.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="OIDC access token from the Sandlåda realm.")


async def get_verifier(request: Request) -> OidcVerifier:
    verifier: OidcVerifier = request.app.state.verifier
    return verifier


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


# Dependencies are ``async`` so that they cost no thread hop per request; the one step that may
# block (verifying a token not seen before, which can fetch the JWKS) goes to the threadpool.
async def get_current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticatedError("a bearer token is required (Authorization: Bearer <token>)")
    verifier: OidcVerifier = request.app.state.verifier
    settings: Settings = request.app.state.settings
    claims = verifier.cached(credentials.credentials)
    if claims is None:
        claims = await run_in_threadpool(verifier.verify, credentials.credentials)
    return User.from_claims(claims, settings.platform_admin_role)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def require_platform_admin(user: CurrentUser) -> User:
    if not user.is_platform_admin:
        raise PermissionDeniedError("this needs the platform-admin role")
    return user


PlatformAdmin = Annotated[User, Depends(require_platform_admin)]
