"""The portal's session: an encrypted, authenticated cookie, and CSRF tokens.

The cookie holds the verified claims of the person's access token (what a ``User`` is built
from), the refresh token and a CSRF token, encrypted and authenticated with Fernet under a key
derived from ``SANDLADA_PORTAL_SESSION_SECRET``. Nothing is stored on the server, so any
replica can serve any request and a restart signs nobody out; a changed cookie does not
decrypt and is treated as no session. The raw access token is not kept: pages call the
services in-process with the claims, and the refresh token gets fresh claims when they expire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "sandlada_session"
LOGIN_COOKIE = "sandlada_login"
LANGUAGE_COOKIE = "sandlada_lang"
CSRF_FIELD = "csrf_token"
# Keycloak's SSO session idle timeout is 30 minutes; the cookie outlives it a little and the
# refresh token decides whether the session is still alive.
SESSION_MAX_AGE = 12 * 3600
LOGIN_MAX_AGE = 600
# Claims a User is built from; everything else in the token is left out to keep the cookie small.
KEPT_CLAIMS = (
    "sub",
    "preferred_username",
    "name",
    "email",
    "realm_access",
    "groups",
    "organisation_number",
    "exp",
)


@dataclass
class PortalSession:
    """A signed-in person's session as stored in the cookie."""

    claims: dict[str, Any]
    refresh_token: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def expires_at(self) -> float:
        return float(self.claims.get("exp", 0))

    @classmethod
    def from_token_claims(cls, claims: dict[str, Any], refresh_token: str) -> PortalSession:
        return cls({k: claims[k] for k in KEPT_CLAIMS if k in claims}, refresh_token)


@dataclass(frozen=True)
class LoginState:
    """What the callback needs to finish a login this browser started."""

    state: str
    nonce: str
    verifier: str
    next: str


class SessionCodec:
    """Encrypts and decrypts the portal's cookies."""

    def __init__(self, secret: str, *, secure: bool) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())
        self._fernet = Fernet(key)
        self.secure = secure

    def _dump(self, payload: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(payload, separators=(",", ":")).encode()).decode()

    def _load(self, value: str | None, max_age: int) -> dict[str, Any] | None:
        if not value:
            return None
        try:
            payload = json.loads(self._fernet.decrypt(value.encode(), ttl=max_age))
        except (InvalidToken, ValueError):
            return None
        return payload if isinstance(payload, dict) else None

    def read_session(self, request: Request) -> PortalSession | None:
        payload = self._load(request.cookies.get(SESSION_COOKIE), SESSION_MAX_AGE)
        if payload is None:
            return None
        try:
            return PortalSession(**payload)
        except TypeError:
            return None

    def write_session(self, response: Response, session: PortalSession) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            self._dump(asdict(session)),
            max_age=SESSION_MAX_AGE,
            path="/",
            httponly=True,
            secure=self.secure,
            samesite="lax",
        )

    def clear_session(self, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE, path="/", httponly=True, secure=self.secure, samesite="lax"
        )

    def read_login(self, request: Request) -> LoginState | None:
        payload = self._load(request.cookies.get(LOGIN_COOKIE), LOGIN_MAX_AGE)
        if payload is None:
            return None
        try:
            return LoginState(**payload)
        except TypeError:
            return None

    def write_login(self, response: Response, login: LoginState) -> None:
        # SameSite=Lax still sends it on the top-level redirect back from Keycloak.
        response.set_cookie(
            LOGIN_COOKIE,
            self._dump(asdict(login)),
            max_age=LOGIN_MAX_AGE,
            path="/",
            httponly=True,
            secure=self.secure,
            samesite="lax",
        )

    def clear_login(self, response: Response) -> None:
        response.delete_cookie(
            LOGIN_COOKIE, path="/", httponly=True, secure=self.secure, samesite="lax"
        )


def csrf_valid(session: PortalSession, submitted: object) -> bool:
    """Whether a form's CSRF token is this session's (constant-time comparison)."""
    return isinstance(submitted, str) and hmac.compare_digest(submitted, session.csrf)


def session_fresh(session: PortalSession, leeway: float = 15.0) -> bool:
    return session.expires_at - leeway > time.time()


def safe_next(target: str | None, default: str) -> str:
    """A local path to go to after login or a language switch; anything else is ``default``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
