"""Typed auth dependencies: a route's signature says who may call it.

``CurrentUser`` is any caller with a valid token; ``PlatformAdmin`` additionally needs the
``platform-admin`` realm role. Agency and tenant scoping happen in the services, which receive
the ``User``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controlplane.auth.oidc import OidcVerifier
from controlplane.auth.principal import User
from controlplane.errors import NotAuthenticatedError, PermissionDeniedError
from controlplane.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="OIDC access token from the Sandlåda realm.")


def get_verifier(request: Request) -> OidcVerifier:
    verifier: OidcVerifier = request.app.state.verifier
    return verifier


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticatedError("a bearer token is required (Authorization: Bearer <token>)")
    claims = get_verifier(request).verify(credentials.credentials)
    return User.from_claims(claims, get_settings_dep(request).platform_admin_role)


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_platform_admin(user: CurrentUser) -> User:
    if not user.is_platform_admin:
        raise PermissionDeniedError("this needs the platform-admin role")
    return user


PlatformAdmin = Annotated[User, Depends(require_platform_admin)]
