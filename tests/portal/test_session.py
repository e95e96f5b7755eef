"""The portal's cookies and CSRF tokens without a browser: tampering, secrets, redirects."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from controlplane.portal.oidc import pkce_pair
from controlplane.portal.session import (
    SESSION_COOKIE,
    PortalSession,
    SessionCodec,
    csrf_valid,
    safe_next,
)


def _request_with(cookie: str) -> Request:
    header = f"{SESSION_COOKIE}={cookie}".encode()
    return Request({"type": "http", "headers": [(b"cookie", header)]})


def _cookie_value(response: Response) -> str:
    raw = response.headers["set-cookie"]
    return raw.split(";", 1)[0].split("=", 1)[1].strip('"')


def _session() -> PortalSession:
    claims = {"sub": "abc", "preferred_username": "anna", "exp": 2_000_000_000, "aud": "x"}
    return PortalSession.from_token_claims(claims, "refresh-token")


def test_the_session_round_trips_and_keeps_only_the_claims_a_user_needs() -> None:
    codec = SessionCodec("secret-one", secure=True)
    response = Response()
    codec.write_session(response, _session())
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    assert "refresh-token" not in cookie  # encrypted, not just signed
    read = codec.read_session(_request_with(_cookie_value(response)))
    assert read is not None
    assert read.claims == {"sub": "abc", "preferred_username": "anna", "exp": 2_000_000_000}
    assert read.refresh_token == "refresh-token"


def test_a_changed_cookie_or_another_secret_is_no_session() -> None:
    codec = SessionCodec("secret-one", secure=False)
    response = Response()
    codec.write_session(response, _session())
    value = _cookie_value(response)
    tampered = value[:-6] + ("A" if value[-6] != "A" else "B") + value[-5:]
    assert codec.read_session(_request_with(tampered)) is None
    assert SessionCodec("secret-two", secure=False).read_session(_request_with(value)) is None
    assert codec.read_session(_request_with("not-a-token")) is None


def test_csrf_tokens_are_per_session_and_compared_exactly() -> None:
    one, two = _session(), _session()
    assert one.csrf != two.csrf
    assert csrf_valid(one, one.csrf)
    assert not csrf_valid(one, two.csrf)
    assert not csrf_valid(one, None)
    assert not csrf_valid(one, "")


def test_only_local_paths_are_followed_after_sign_in() -> None:
    assert safe_next("/portal/tenants/x?y=1", "/portal/") == "/portal/tenants/x?y=1"
    for bad in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "", None):
        assert safe_next(bad, "/portal/") == "/portal/"


def test_pkce_challenge_is_the_s256_of_the_verifier() -> None:
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    assert challenge != verifier and "=" not in challenge
    assert pkce_pair()[0] != verifier
