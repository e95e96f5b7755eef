"""Typed auth dependencies: a route's signature says who may call it.

``CurrentUser`` is any caller with a valid token; ``PlatformAdmin`` additionally needs the
``platform-admin`` realm role. ``TenantMember`` / ``TenantAdmin`` admit callers in a tenant's
identity groups (or platform admins) to routes with a ``{slug}`` path parameter. Other agency and
tenant scoping happens in the services, which receive the ``User``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer

from controlplane.auth.oidc import OidcVerifier
from controlplane.auth.principal import User
from controlplane.database import SessionDep
from controlplane.errors import NotAuthenticatedError, PermissionDeniedError
from controlplane.messages import message
from controlplane.models import Tenant
from controlplane.settings import Settings
from controlplane.tenancy import service as tenancy
from tenants.names import tenant_group


async def get_verifier(request: Request) -> OidcVerifier:
    verifier: OidcVerifier = request.app.state.verifier
    return verifier


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


class _BearerUser(HTTPBearer):
    """The caller, from the request's bearer token.

    A subclass of ``HTTPBearer`` so that OpenAPI documents the security scheme, resolving to the
    ``User`` itself: one dependency instead of a credentials dependency under a user dependency
    (each level costs FastAPI's dependency resolution on every request).

    ``async`` so that it costs no thread hop; the one step that may block (verifying a token
    not seen before, which can fetch the JWKS) goes to the threadpool.
    """

    async def __call__(self, request: Request) -> User:  # type: ignore[override]
        credentials = await super().__call__(request)  # auto_error=False: None when absent
        if credentials is None:
            raise NotAuthenticatedError(message("auth.bearer_required"))
        verifier: OidcVerifier = request.app.state.verifier
        settings: Settings = request.app.state.settings
        claims = verifier.cached(credentials.credentials)
        if claims is None:
            claims = await run_in_threadpool(verifier.verify, credentials.credentials)
        return User.from_claims(claims, settings.platform_admin_role)


get_current_user = _BearerUser(
    auto_error=False, description="OIDC access token from the Sandlåda realm."
)
CurrentUser = Annotated[User, Depends(get_current_user)]


async def require_platform_admin(user: CurrentUser) -> User:
    if not user.is_platform_admin:
        raise PermissionDeniedError(message("auth.platform_admin_required"))
    return user


PlatformAdmin = Annotated[User, Depends(require_platform_admin)]


@dataclass(frozen=True)
class TenantCaller:
    """A caller admitted to one tenant, and that tenant."""

    user: User
    tenant: Tenant

    @property
    def is_admin(self) -> bool:
        return self.user.is_platform_admin or (
            tenant_group(self.tenant.slug, "admin") in self.user.groups
        )


TenantSlug = Annotated[str, Path(min_length=1, max_length=63, description="Tenant slug.")]


async def require_tenant_member(
    slug: TenantSlug, user: CurrentUser, session: SessionDep
) -> TenantCaller:
    # 404 for a tenant the caller cannot see at all (other agencies learn nothing), 403 for one
    # they can see (their agency's) but do not belong to. Membership is read from the token's
    # groups, so a change takes effect with the person's next token.
    tenant = await run_in_threadpool(tenancy.get_tenant, session, user, slug)
    if not (user.is_platform_admin or tenant.slug in user.tenant_slugs()):
        raise PermissionDeniedError(message("auth.not_tenant_member", slug=slug))
    return TenantCaller(user, tenant)


TenantMember = Annotated[TenantCaller, Depends(require_tenant_member)]


async def require_tenant_admin(caller: TenantMember) -> TenantCaller:
    if not caller.is_admin:
        raise PermissionDeniedError(
            message(
                "auth.tenant_admin_required",
                slug=caller.tenant.slug,
                group=tenant_group(caller.tenant.slug, "admin"),
            )
        )
    return caller


TenantAdmin = Annotated[TenantCaller, Depends(require_tenant_admin)]
