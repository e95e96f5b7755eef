"""Portal plumbing: its state on the app, the signed-in person as a dependency, rendering.

``install_portal(app)`` is the one call ``create_app`` makes. Pages are plain FastAPI routes
(excluded from the OpenAPI document, which describes the JSON API only) that render Jinja2
templates with the request's :class:`~controlplane.portal.i18n.Language`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import structlog
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData

from controlplane.auth.principal import User
from controlplane.errors import (
    NotAuthenticatedError,
    PermissionDeniedError,
    SandladaError,
)
from controlplane.portal.i18n import LANGUAGES, Language, negotiate
from controlplane.portal.oidc import PortalOidcClient
from controlplane.portal.session import (
    CSRF_FIELD,
    LANGUAGE_COOKIE,
    PortalSession,
    SessionCodec,
    csrf_valid,
    session_fresh,
)
from controlplane.settings import (
    Settings,
)
from tenants.quota import Quota

log = structlog.get_logger(__name__)

PREFIX = "/portal"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
HERE = Path(__file__).parent


class LoginRequiredError(Exception):
    """Raised by page dependencies when nobody (or an expired session) is signed in."""


class CsrfError(SandladaError):
    status_code = 403
    code = "csrf_failed"


@dataclass
class PortalState:
    settings: Settings
    codec: SessionCodec
    oidc: PortalOidcClient
    templates: Environment


def portal_state(request: Request) -> PortalState:
    state: PortalState = request.app.state.portal
    return state


def language_of(request: Request) -> Language:
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return Language(chosen)
    return Language(negotiate(request.headers.get("accept-language")))


LanguageDep = Annotated[Language, Depends(language_of)]


@dataclass(frozen=True)
class Viewer:
    """The person looking at a page: who they are and their session."""

    user: User
    session: PortalSession


async def _session_of(request: Request) -> PortalSession | None:
    state = portal_state(request)
    session = state.codec.read_session(request)
    if session is None:
        return None
    if not session_fresh(session):
        try:
            tokens = await run_in_threadpool(state.oidc.refresh, session.refresh_token)
        except NotAuthenticatedError:
            return None  # the Keycloak session ended; sign in again
        session = PortalSession(
            PortalSession.from_token_claims(tokens.claims, tokens.refresh_token).claims,
            tokens.refresh_token,
            session.csrf,
        )
        request.state.new_portal_session = session
    return session


async def optional_viewer(request: Request) -> Viewer | None:
    session = await _session_of(request)
    if session is None:
        return None
    settings = portal_state(request).settings
    return Viewer(User.from_claims(session.claims, settings.platform_admin_role), session)


async def require_viewer(viewer: Annotated[Viewer | None, Depends(optional_viewer)]) -> Viewer:
    if viewer is None:
        raise LoginRequiredError
    return viewer


async def require_admin(viewer: Annotated[Viewer, Depends(require_viewer)]) -> Viewer:
    if not viewer.user.is_platform_admin:
        raise PermissionDeniedError("this page needs the platform-admin role")
    return viewer


MaybeViewer = Annotated[Viewer | None, Depends(optional_viewer)]
SignedIn = Annotated[Viewer, Depends(require_viewer)]
AdminViewer = Annotated[Viewer, Depends(require_admin)]


async def refresh_viewer(request: Request, viewer: Viewer) -> Viewer:
    """The viewer with claims fetched now (e.g. groups gained since the last token)."""
    state = portal_state(request)
    try:
        tokens = await run_in_threadpool(state.oidc.refresh, viewer.session.refresh_token)
    except NotAuthenticatedError:
        return viewer
    session = PortalSession(
        PortalSession.from_token_claims(tokens.claims, tokens.refresh_token).claims,
        tokens.refresh_token,
        viewer.session.csrf,
    )
    request.state.new_portal_session = session
    return Viewer(User.from_claims(session.claims, state.settings.platform_admin_role), session)


async def checked_form(request: Request, viewer: Viewer) -> FormData:
    """The posted form, after checking its CSRF token against the session."""
    form = await request.form()
    if not csrf_valid(viewer.session, form.get(CSRF_FIELD)):
        raise CsrfError(
            "the form's security token is missing or stale; reload the page and try again"
        )
    return form


def error_text(exc: SandladaError, language: Language) -> str:
    """An error's message in the page's language, where the error catalogue has it."""
    rendered = getattr(exc, "render", None)
    if callable(rendered):
        return str(rendered(language.code))
    return exc.detail


def finish(request: Request, response: Response) -> Response:
    """Write a refreshed session, if this request refreshed one, onto the response."""
    session = getattr(request.state, "new_portal_session", None)
    if session is not None:
        portal_state(request).codec.write_session(response, session)
    response.headers.setdefault("Cache-Control", "no-store")
    # Every script and style is a same-origin file, so the page needs nothing else; forms post
    # only to the portal, and no other site may frame it.
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def render(
    request: Request,
    template: str,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    state = portal_state(request)
    language = language_of(request)
    page = state.templates.get_template(template)
    html = page.render(
        request=request,
        viewer=viewer,
        user=viewer.user if viewer else None,
        csrf_token=viewer.session.csrf if viewer else "",
        csrf_field=CSRF_FIELD,
        path=request.url.path,
        full_path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        prefix=PREFIX,
        now=time.time(),
        **language.template_globals(),
        **context,
    )
    return finish(request, HTMLResponse(html, status_code=status_code))


def redirect(request: Request, url: str) -> Response:
    return finish(request, RedirectResponse(url, status_code=303))


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # gettext/ngettext come from each render's context (the request's language); these
    # placeholders only satisfy the extension.
    env.install_null_translations(newstyle=False)  # type: ignore[attr-defined]
    env.filters["quota_of"] = Quota.model_validate
    env.filters["pairs"] = lambda values: [(value, value) for value in values]
    env.filters["profile_options"] = lambda profiles, lang: [
        (p.slug, p.display_name.get(lang) or p.slug) for p in profiles
    ]
    return env


def is_portal(request: Request) -> bool:
    return request.url.path == PREFIX or request.url.path.startswith(PREFIX + "/")


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = PREFIX + "/"
    return RedirectResponse(f"{PREFIX}/auth/login?next={quote(target)}", status_code=303)
