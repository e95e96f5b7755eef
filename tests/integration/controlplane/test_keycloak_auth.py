"""Real Keycloak tokens against the API: every demo user is accepted, bad tokens are 401.

The app verifies tokens from the local realm (issuer ``http://127.0.0.1:8080/realms/sandlada``,
audience ``sandlada-controlplane``) exactly as in production: discovery, JWKS, RS256.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane.app import create_app
from controlplane.database import Database
from controlplane.settings import Settings
from infra.keycloak.launcher import KeycloakInfo
from infra.keycloak.realm import API_AUDIENCE, DEMO_USERS, DemoUser
from tests.fixtures.tokens import TestIssuer

pytestmark = pytest.mark.keycloak

ME = "/api/v1/tenants"


@pytest.fixture
def settings(engine: Engine, keycloak: KeycloakInfo) -> Settings:
    return Settings(
        environment="test",
        database_url=engine.url.render_as_string(hide_password=False),
        oidc_issuer=keycloak.issuer,
        oidc_audience=API_AUDIENCE,
    )


def status(client: TestClient, token: str) -> tuple[int, str]:
    response = client.get(ME, headers={"Authorization": f"Bearer {token}"})
    return response.status_code, "" if response.status_code == 200 else response.json()["detail"]


def test_the_issuer_is_the_local_realm(keycloak: KeycloakInfo) -> None:
    assert keycloak.issuer == "http://127.0.0.1:8080/realms/sandlada"


@pytest.mark.parametrize("user", DEMO_USERS, ids=lambda u: u.username)
def test_each_demo_user_gets_a_token_the_api_accepts(
    client: TestClient, keycloak_token: Callable[..., str], user: DemoUser
) -> None:
    token = keycloak_token(user.username, user.password)
    assert status(client, token) == (200, "")
    me = client.get("/api/v1/sandbox-requests", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text


def test_forged_signature_is_401(client: TestClient, keycloak_token: Callable[..., str]) -> None:
    real = keycloak_token("requester", "requester-dev")
    claims = jwt.decode(real, options={"verify_signature": False})
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        claims, stranger, algorithm="RS256", headers={"kid": jwt.get_unverified_header(real)["kid"]}
    )
    code, detail = status(client, forged)
    assert code == 401
    assert "signature" in detail.lower()


def test_tampered_payload_is_401(client: TestClient, keycloak_token: Callable[..., str]) -> None:
    header, _, signature = keycloak_token("requester", "requester-dev").split(".")
    admin_payload = keycloak_token("admin", "admin-dev").split(".")[1]
    assert status(client, f"{header}.{admin_payload}.{signature}")[0] == 401


def test_token_of_another_issuer_is_401(client: TestClient, oidc_issuer: TestIssuer) -> None:
    assert status(client, oidc_issuer.mint())[0] == 401


def test_wrong_audience_is_401(
    engine: Engine,
    keycloak: KeycloakInfo,
    database: Database,
    keycloak_token: Callable[..., str],
) -> None:
    # Keycloak puts sandlada-controlplane (and account) in the CLI's tokens; an API that
    # expects another audience must refuse them.
    other = Settings(
        environment="test",
        database_url=engine.url.render_as_string(hide_password=False),
        oidc_issuer=keycloak.issuer,
        oidc_audience="some-other-api",
    )
    with TestClient(create_app(other, database), raise_server_exceptions=False) as client:
        code, detail = status(client, keycloak_token("requester", "requester-dev"))
    assert code == 401
    assert "audience" in detail


@pytest.fixture
def test_issuer_client(
    engine: Engine, oidc_issuer: TestIssuer, database: Database
) -> Iterator[TestClient]:
    minted = Settings(
        environment="test",
        database_url=engine.url.render_as_string(hide_password=False),
        oidc_issuer=oidc_issuer.url,
    )
    with TestClient(create_app(minted, database), raise_server_exceptions=False) as client:
        yield client


def test_expired_token_is_401(test_issuer_client: TestClient, oidc_issuer: TestIssuer) -> None:
    # Keycloak's tokens live 5 minutes; the test issuer mints one that expired 2 minutes ago.
    assert status(test_issuer_client, oidc_issuer.mint())[0] == 200
    code, detail = status(test_issuer_client, oidc_issuer.mint(expires_in=-120))
    assert code == 401
    assert "expired" in detail


def test_keycloak_token_is_401_where_another_issuer_is_trusted(
    test_issuer_client: TestClient, keycloak_token: Callable[..., str]
) -> None:
    assert status(test_issuer_client, keycloak_token("admin", "admin-dev"))[0] == 401
