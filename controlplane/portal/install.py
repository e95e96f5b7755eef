"""``install_portal(app, settings, verifier)``: the one call ``create_app`` makes for the portal."""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from controlplane.auth.oidc import OidcVerifier
from controlplane.errors import NotAuthenticatedError, SandladaError
from controlplane.portal import labels
from controlplane.portal.i18n import N_
from controlplane.portal.oidc import PortalOidcClient
from controlplane.portal.routes import root_router, router
from controlplane.portal.session import SessionCodec
from controlplane.portal.web import (
    HERE,
    PREFIX,
    LoginRequiredError,
    PortalState,
    environment,
    error_text,
    is_portal,
    language_of,
    login_redirect,
    optional_viewer,
    render,
)
from controlplane.settings import DEV_PORTAL_CLIENT_SECRET, DEV_PORTAL_SESSION_SECRET, Settings


def install_portal(app: FastAPI, settings: Settings, access_verifier: OidcVerifier) -> None:
    """Mount the portal's pages and static files on ``app`` (called by ``create_app``)."""

    if settings.environment == "production":
        problems = []
        if settings.portal_session_secret.get_secret_value() == DEV_PORTAL_SESSION_SECRET:
            problems.append("SANDLADA_PORTAL_SESSION_SECRET is the development secret")
        if settings.portal_client_secret.get_secret_value() == DEV_PORTAL_CLIENT_SECRET:
            problems.append("SANDLADA_PORTAL_CLIENT_SECRET is the dev realm's secret")
        if problems:
            raise RuntimeError("refusing to serve the portal: " + "; ".join(problems))
    state = PortalState(
        settings=settings,
        codec=SessionCodec(
            settings.portal_session_secret.get_secret_value(),
            secure=settings.environment != "development",
        ),
        oidc=PortalOidcClient(
            settings.oidc_issuer,
            settings.portal_client_id,
            settings.portal_client_secret.get_secret_value(),
            access_verifier,
            timeout=settings.oidc_http_timeout_seconds,
        ),
        templates=environment(),
    )
    app.state.portal = state
    app.include_router(router)
    app.include_router(root_router)
    app.mount(PREFIX + "/static", StaticFiles(directory=HERE / "static"), name="portal-static")

    json_handler = app.exception_handlers.get(SandladaError)

    async def sandlada_error(request: Request, exc: Exception) -> Response:
        if not is_portal(request) and json_handler is not None:
            result = json_handler(request, exc)
            return await result if inspect.isawaitable(result) else result
        assert isinstance(exc, SandladaError)
        if isinstance(exc, NotAuthenticatedError):
            return login_redirect(request)
        viewer = None
        try:
            viewer = await optional_viewer(request)
        except SandladaError:
            viewer = None
        title = labels.ERROR_TITLES.get(exc.status_code, N_("Something went wrong"))
        return render(
            request,
            "error.html",
            viewer,
            status_code=exc.status_code,
            error=exc,
            error_title=title,
            error_detail=error_text(exc, language_of(request)),
        )

    async def login_required(request: Request, _: Exception) -> Response:
        return login_redirect(request)

    app.add_exception_handler(SandladaError, sandlada_error)
    app.add_exception_handler(LoginRequiredError, login_required)
