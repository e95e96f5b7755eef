"""The ``sandlada`` realm on the real local Keycloak: tokens, claims, clients, admin API.

These tests pin what the control plane relies on: who gets a token through which client, what
the tokens carry (issuer, audience, flat group names, realm roles, organisation number), that
the signature verifies against the realm's published keys, and that the control plane's service
account can manage groups and users but nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakError

from infra.keycloak.launcher import KeycloakInfo
from infra.keycloak.realm import (
    API_AUDIENCE,
    CLI_CLIENT_ID,
    DEMO_ADMIN,
    DEMO_REQUESTER,
    DEMO_SCIENTIST,
    DEMO_USERS,
    KIRUNA_ORGANISATION_NUMBER,
    PLATFORM_ADMIN_ROLE,
    PORTAL_CLIENT_ID,
    PORTAL_DEV_SECRET,
    DemoUser,
)
from tests.fixtures.keycloak import TokenRequestError, get_token

pytestmark = pytest.mark.keycloak

PORTAL_REDIRECT = "http://127.0.0.1:8000/auth/callback"


@pytest.fixture(scope="module")
def jwks_client(keycloak: KeycloakInfo) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(keycloak.jwks_uri)


def verified_claims(
    token: str, keycloak: KeycloakInfo, jwks_client: jwt.PyJWKClient
) -> dict[str, Any]:
    """Claims of ``token`` after checking signature, issuer, audience and expiry."""
    key = jwks_client.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        key=key,
        algorithms=["RS256"],
        audience=API_AUDIENCE,
        issuer=keycloak.issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    return claims


def test_discovery_document_names_the_fixed_issuer(keycloak: KeycloakInfo) -> None:
    # Asked through "localhost", the issuer must still be 127.0.0.1: tokens have one issuer.
    response = httpx.get(keycloak.discovery_url.replace("127.0.0.1", "localhost"), timeout=10)
    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == keycloak.issuer
    assert document["jwks_uri"] == keycloak.jwks_uri
    assert "S256" in document["code_challenge_methods_supported"]


@pytest.mark.parametrize("user", DEMO_USERS, ids=lambda user: user.username)
def test_demo_user_gets_a_verifiable_token_through_the_cli_client(
    user: DemoUser,
    keycloak: KeycloakInfo,
    keycloak_token: Callable[..., str],
    jwks_client: jwt.PyJWKClient,
) -> None:
    claims = verified_claims(keycloak_token(user.username, user.password), keycloak, jwks_client)

    assert claims["azp"] == CLI_CLIENT_ID
    assert API_AUDIENCE in (claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]])
    assert claims["preferred_username"] == user.username
    assert claims["email"] == user.email
    assert claims["name"] == f"{user.first_name} {user.last_name}"
    assert uuid.UUID(claims["sub"])
    # Keycloak's access token lifespan of the realm: 5 minutes.
    assert claims["exp"] - claims["iat"] == 300

    roles = set(claims["realm_access"]["roles"])
    assert (PLATFORM_ADMIN_ROLE in roles) == (PLATFORM_ADMIN_ROLE in user.realm_roles)
    assert claims.get("organisation_number") == user.organisation_number
    # Keycloak leaves out an empty groups claim; when there is one it is a list of flat names
    # (the membership test below proves a group shows up).
    assert all("/" not in group for group in claims.get("groups", []))


def test_only_the_admin_is_platform_admin_and_only_kiruna_users_carry_the_number(
    keycloak_token: Callable[..., str],
) -> None:
    claims = {
        user.username: jwt.decode(
            keycloak_token(user.username, user.password), options={"verify_signature": False}
        )
        for user in DEMO_USERS
    }
    admins = {
        name for name, c in claims.items() if PLATFORM_ADMIN_ROLE in c["realm_access"]["roles"]
    }
    assert admins == {DEMO_ADMIN.username}
    assert claims[DEMO_REQUESTER.username]["organisation_number"] == KIRUNA_ORGANISATION_NUMBER
    assert claims[DEMO_SCIENTIST.username]["organisation_number"] == KIRUNA_ORGANISATION_NUMBER
    assert "organisation_number" not in claims[DEMO_ADMIN.username]


def test_wrong_password_is_refused(keycloak: KeycloakInfo) -> None:
    with pytest.raises(TokenRequestError) as refused:
        get_token(keycloak, DEMO_REQUESTER.username, "not-the-password")
    # RFC 6749 5.2: a bad resource-owner credential is invalid_grant with status 400.
    assert refused.value.status_code == 400
    assert refused.value.body["error"] == "invalid_grant"


def test_unknown_user_is_refused(keycloak: KeycloakInfo) -> None:
    with pytest.raises(TokenRequestError) as refused:
        get_token(keycloak, f"nobody-{secrets.token_hex(4)}", "whatever")
    assert refused.value.status_code == 400
    assert refused.value.body["error"] == "invalid_grant"


def test_forged_signature_does_not_verify(
    keycloak: KeycloakInfo, keycloak_token: Callable[..., str], jwks_client: jwt.PyJWKClient
) -> None:
    header, payload, signature = keycloak_token(
        DEMO_REQUESTER.username, DEMO_REQUESTER.password
    ).split(".")
    # Claim to be the admin, keep Keycloak's signature of the original payload.
    claims = jwt.decode(f"{header}.{payload}.{signature}", options={"verify_signature": False})
    claims["realm_access"]["roles"].append(PLATFORM_ADMIN_ROLE)
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(jwt.InvalidSignatureError):
        verified_claims(f"{header}.{forged_payload}.{signature}", keycloak, jwks_client)


def test_portal_client_refuses_the_password_grant(keycloak: KeycloakInfo) -> None:
    response = httpx.post(
        keycloak.token_endpoint,
        data={
            "grant_type": "password",
            "client_id": PORTAL_CLIENT_ID,
            "client_secret": PORTAL_DEV_SECRET,
            "username": DEMO_REQUESTER.username,
            "password": DEMO_REQUESTER.password,
        },
        timeout=30,
    )
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "unauthorized_client"


def _authorize_params(**extra: str) -> dict[str, str]:
    return {
        "client_id": PORTAL_CLIENT_ID,
        "redirect_uri": PORTAL_REDIRECT,
        "response_type": "code",
        "scope": "openid",
        "state": secrets.token_urlsafe(8),
        **extra,
    }


def test_portal_requires_pkce(keycloak: KeycloakInfo) -> None:
    response = httpx.get(
        f"{keycloak.issuer}/protocol/openid-connect/auth", params=_authorize_params(), timeout=30
    )
    # Keycloak sends the error back to the (valid) redirect URI rather than showing a login form.
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_request"]
    assert "code_challenge_method" in query["error_description"][0]


def test_portal_refuses_a_foreign_redirect_uri(keycloak: KeycloakInfo) -> None:
    params = _authorize_params(code_challenge="x" * 43, code_challenge_method="S256")
    params["redirect_uri"] = "http://evil.example/callback"
    response = httpx.get(
        f"{keycloak.issuer}/protocol/openid-connect/auth", params=params, timeout=30
    )
    assert response.status_code == 400
    assert "redirect_uri" in response.text


def _pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _portal_login(keycloak: KeycloakInfo, user: DemoUser, challenge: str) -> str:
    """Sign in through Keycloak's login form as a browser would; returns the authorization code."""
    with httpx.Client(timeout=30) as browser:
        login_page = browser.get(
            f"{keycloak.issuer}/protocol/openid-connect/auth",
            params=_authorize_params(code_challenge=challenge, code_challenge_method="S256"),
        )
        assert login_page.status_code == 200
        action = re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', login_page.text)
        assert action is not None, "no login form on the page"
        # Keycloak marks its session cookies Secure; browsers send those to http://127.0.0.1
        # (a trustworthy origin) but http.cookiejar does not, so send them as a browser would.
        cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in browser.cookies.jar)
        redirected = browser.post(
            html.unescape(action.group(1)),
            data={"username": user.username, "password": user.password},
            headers={"Cookie": cookies},
        )
    assert redirected.status_code == 302, redirected.text[:500]
    location = redirected.headers["location"]
    assert location.startswith(PORTAL_REDIRECT)
    return parse_qs(urlsplit(location).query)["code"][0]


def _exchange(keycloak: KeycloakInfo, code: str, verifier: str) -> httpx.Response:
    return httpx.post(
        keycloak.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": PORTAL_REDIRECT,
            "client_id": PORTAL_CLIENT_ID,
            "client_secret": PORTAL_DEV_SECRET,
            "code_verifier": verifier,
        },
        timeout=30,
    )


def test_portal_authorization_code_flow_with_pkce_gives_an_api_token(
    keycloak: KeycloakInfo, jwks_client: jwt.PyJWKClient
) -> None:
    verifier, challenge = _pkce_pair()
    response = _exchange(keycloak, _portal_login(keycloak, DEMO_SCIENTIST, challenge), verifier)
    assert response.status_code == 200, response.text
    claims = verified_claims(response.json()["access_token"], keycloak, jwks_client)
    assert claims["azp"] == PORTAL_CLIENT_ID
    assert claims["preferred_username"] == DEMO_SCIENTIST.username
    assert claims["organisation_number"] == KIRUNA_ORGANISATION_NUMBER


def test_portal_code_exchange_with_the_wrong_verifier_is_refused(keycloak: KeycloakInfo) -> None:
    _, challenge = _pkce_pair()
    code = _portal_login(keycloak, DEMO_SCIENTIST, challenge)
    wrong_verifier, _ = _pkce_pair()
    response = _exchange(keycloak, code, wrong_verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.fixture
def tenant_group(keycloak_controlplane_admin: KeycloakAdmin) -> Iterator[tuple[str, str]]:
    """A throwaway tenant-style group (name, id), deleted afterwards."""
    name = f"t-kctest-{secrets.token_hex(3)}-members"
    group_id = keycloak_controlplane_admin.create_group({"name": name})
    assert group_id
    try:
        yield name, group_id
    finally:
        keycloak_controlplane_admin.delete_group(group_id)


def test_service_account_puts_a_user_in_a_group_and_the_token_carries_it_flat(
    keycloak: KeycloakInfo,
    keycloak_controlplane_admin: KeycloakAdmin,
    tenant_group: tuple[str, str],
    jwks_client: jwt.PyJWKClient,
) -> None:
    name, group_id = tenant_group
    admin = keycloak_controlplane_admin
    user_id = admin.get_user_id(DEMO_SCIENTIST.username)
    assert user_id
    admin.group_user_add(user_id, group_id)
    try:
        members = {member["username"] for member in admin.get_group_members(group_id)}
        assert members == {DEMO_SCIENTIST.username}
        token = get_token(keycloak, DEMO_SCIENTIST.username, DEMO_SCIENTIST.password)
        assert name in verified_claims(token, keycloak, jwks_client)["groups"]
    finally:
        admin.group_user_remove(user_id, group_id)
    token = get_token(keycloak, DEMO_SCIENTIST.username, DEMO_SCIENTIST.password)
    assert name not in verified_claims(token, keycloak, jwks_client).get("groups", [])


@pytest.fixture
def throwaway_user(keycloak_controlplane_admin: KeycloakAdmin) -> Iterator[tuple[str, str, str]]:
    """A user created through the admin API with an organisation number: (id, name, password)."""
    username = f"kctest-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    user_id = keycloak_controlplane_admin.create_user(
        {
            "username": username,
            "email": f"{username}@lulea.example",
            "firstName": "Test",
            "lastName": "Person",
            "enabled": True,
            "emailVerified": True,
            "attributes": {"organisation_number": ["212000-2692"]},
            "credentials": [{"type": "password", "value": password, "temporary": False}],
        }
    )
    try:
        yield user_id, username, password
    finally:
        keycloak_controlplane_admin.delete_user(user_id)


def test_service_account_sets_the_organisation_number_and_it_reaches_the_token(
    keycloak: KeycloakInfo,
    keycloak_controlplane_admin: KeycloakAdmin,
    throwaway_user: tuple[str, str, str],
    jwks_client: jwt.PyJWKClient,
) -> None:
    user_id, username, password = throwaway_user
    stored = keycloak_controlplane_admin.get_user(user_id)
    assert stored["attributes"]["organisation_number"] == ["212000-2692"]
    claims = verified_claims(get_token(keycloak, username, password), keycloak, jwks_client)
    assert claims["organisation_number"] == "212000-2692"


def test_user_profile_rejects_a_malformed_organisation_number(
    keycloak_controlplane_admin: KeycloakAdmin,
) -> None:
    with pytest.raises(KeycloakError) as refused:
        keycloak_controlplane_admin.create_user(
            {
                "username": f"kctest-{secrets.token_hex(4)}",
                "email": f"kctest-{secrets.token_hex(4)}@example.org",
                "firstName": "Bad",
                "lastName": "Number",
                "enabled": True,
                "attributes": {"organisation_number": ["not-a-number"]},
            }
        )
    assert refused.value.response_code == 400


def test_users_cannot_change_their_own_organisation_number(
    keycloak: KeycloakInfo,
    keycloak_controlplane_admin: KeycloakAdmin,
    throwaway_user: tuple[str, str, str],
) -> None:
    # The number ties a person to an agency, so only administrators may set it.
    user_id, username, password = throwaway_user
    token = get_token(keycloak, username, password)
    account = httpx.Client(
        base_url=f"{keycloak.issuer}/account",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=30,
    )
    with account:
        profile = account.get("/", params={"userProfileMetadata": "true"})
        assert profile.status_code == 200, profile.text
        body = profile.json()
        body.pop("userProfileMetadata", None)
        body["attributes"] = {"organisation_number": ["212000-2742"]}
        changed = account.post("/", json=body)
        # Keycloak refuses the read-only attribute (400); either way the stored value must hold.
        assert changed.status_code in (204, 400), changed.text
    stored = keycloak_controlplane_admin.get_user(user_id)
    assert stored["attributes"]["organisation_number"] == ["212000-2692"]


def test_service_account_cannot_administer_the_realm_beyond_users_and_groups(
    keycloak_controlplane_admin: KeycloakAdmin,
) -> None:
    with pytest.raises(KeycloakError) as refused:
        keycloak_controlplane_admin.create_client(
            {"clientId": f"kctest-{secrets.token_hex(4)}", "publicClient": True}
        )
    assert refused.value.response_code == 403
    with pytest.raises(KeycloakError) as refused_role:
        keycloak_controlplane_admin.create_realm_role({"name": f"kctest-{secrets.token_hex(4)}"})
    assert refused_role.value.response_code == 403
