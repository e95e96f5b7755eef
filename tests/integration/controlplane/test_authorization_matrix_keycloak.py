"""Who may call what, with real Keycloak tokens, over every endpoint of the API.

The endpoints come from the app's own OpenAPI document, so a new endpoint without a row in
``MATRIX`` fails ``test_every_endpoint_has_a_row``. Callers: anonymous, a user of another agency
(``556036-0793``), a member and an admin of one Kiruna tenant (users created for this run in
the realm and deleted afterwards) and the demo platform admin. The app runs in-process on a
migrated SQLite file with no cluster configured, so the cluster actions an admin may call
answer 409 ``cluster_not_configured`` (authorized, but nothing to act on).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from keycloak import KeycloakAdmin, KeycloakGetError

from controlplane import migrate
from controlplane.app import create_app
from controlplane.settings import Settings
from infra.keycloak.launcher import KeycloakInfo
from infra.keycloak.realm import API_AUDIENCE
from tests.fixtures.tokens import KIRUNA
from tests.integration.controlplane.conftest import request_body

pytestmark = [pytest.mark.keycloak, pytest.mark.timeout(600)]

RUN = secrets.token_hex(4)
PASSWORD = f"pw-{secrets.token_hex(8)}"
OTHER_AGENCY = "556036-0793"

CALLERS = ("anonymous", "other_agency", "member", "tenant_admin", "platform_admin")
DOCS = {("GET", "/docs"), ("GET", "/redoc"), ("GET", "/openapi.json")}


@dataclass
class World:
    """What the matrix acts on: one tenant, pending requests, people and their tokens."""

    client: TestClient
    slug: str
    request_ids: dict[str, int]
    people: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)

    def call(
        self, caller: str, method: str, path: str, body: dict[str, Any] | None
    ) -> tuple[int, str]:
        headers = {}
        if caller != "anonymous":
            headers["Authorization"] = f"Bearer {self.tokens[caller]}"
        response = self.client.request(method, path, headers=headers, json=body)
        return response.status_code, response.text[:300]


# Per endpoint: how to build (path, body) for a caller, and the expected status per caller in
# CALLERS order. Calls run endpoint by endpoint, callers in that order, so an allowed change by
# the tenant admin comes before the platform admin's.
Build = Callable[[World, str], tuple[str, dict[str, Any] | None]]


def _fixed(path: str, body: dict[str, Any] | None = None) -> Build:
    return lambda _world, _caller: (path, body)


def _request(action: str, key: str) -> Build:
    return lambda w, _c: (f"/api/v1/sandbox-requests/{w.request_ids[key]}{action}", None)


def _request_with_body(action: str, key: str, body: dict[str, Any]) -> Build:
    return lambda w, _c: (f"/api/v1/sandbox-requests/{w.request_ids[key]}{action}", body)


def _tenant(suffix: str = "") -> Build:
    return lambda w, _c: (f"/api/v1/tenants/{w.slug}{suffix}", None)


def _invite(w: World, caller: str) -> tuple[str, dict[str, Any] | None]:
    # Each caller invites their own invitee, so each allowed caller's removal has a target.
    invitee = w.people["invitee_of_admin" if caller == "platform_admin" else "invitee"]
    return f"/api/v1/tenants/{w.slug}/members", {"username": invitee, "role": "member"}


def _remove(w: World, caller: str) -> tuple[str, dict[str, Any] | None]:
    invitee = w.people["invitee_of_admin" if caller == "platform_admin" else "invitee"]
    return f"/api/v1/tenants/{w.slug}/members/{invitee}", None


def _submit(_w: World, _caller: str) -> tuple[str, dict[str, Any] | None]:
    return "/api/v1/sandbox-requests", _small_request(f"mx-{RUN}-{secrets.token_hex(3)}")


PRICE_LIST = {
    "effective_from": (datetime.now(UTC).date() + timedelta(days=30)).isoformat(),
    "gpu_hour_sek": {"NVIDIA-L4": "12.00"},
    "cpu_core_hour_sek": "0.50",
    "memory_gib_hour_sek": "0.05",
    "storage_gib_month_sek": "3.00",
}
ANYONE = (200, 200, 200, 200, 200)
ANYONE_SIGNED_IN = (401, 200, 200, 200, 200)
ADMIN_ONLY = (401, 403, 403, 403, 200)
ADMIN_ONLY_NO_CLUSTER = (401, 403, 403, 403, 409)

MATRIX: dict[tuple[str, str], tuple[Build, tuple[int, ...]]] = {
    ("GET", "/healthz"): (_fixed("/healthz"), ANYONE),
    ("GET", "/readyz"): (_fixed("/readyz"), ANYONE),
    ("GET", "/metrics"): (_fixed("/metrics"), ANYONE),
    ("GET", "/docs"): (_fixed("/docs"), ANYONE),
    ("GET", "/redoc"): (_fixed("/redoc"), ANYONE),
    ("GET", "/openapi.json"): (_fixed("/openapi.json"), ANYONE),
    # A Kiruna request: the other agency may not submit for Kiruna.
    ("POST", "/api/v1/sandbox-requests"): (_submit, (401, 403, 201, 201, 201)),
    ("GET", "/api/v1/sandbox-requests"): (
        _fixed("/api/v1/sandbox-requests"),
        (401, 200, 200, 200, 200),
    ),
    ("GET", "/api/v1/sandbox-requests/{request_id}"): (
        _request("", "approve"),
        (401, 404, 200, 200, 200),
    ),
    ("POST", "/api/v1/sandbox-requests/{request_id}/approve"): (
        _request_with_body("/approve", "approve", {}),
        ADMIN_ONLY,
    ),
    ("POST", "/api/v1/sandbox-requests/{request_id}/reject"): (
        _request_with_body("/reject", "reject", {"reason": "Not this time."}),
        ADMIN_ONLY,
    ),
    # Only the submitter (the tenant admin here) withdraws; a colleague and the platform admin 403.
    ("POST", "/api/v1/sandbox-requests/{request_id}/withdraw"): (
        _request("/withdraw", "withdraw"),
        (401, 404, 403, 200, 403),
    ),
    ("GET", "/api/v1/tenants"): (_fixed("/api/v1/tenants"), (401, 200, 200, 200, 200)),
    ("POST", "/api/v1/tenants/sync"): (_fixed("/api/v1/tenants/sync"), ADMIN_ONLY_NO_CLUSTER),
    ("GET", "/api/v1/tenants/{slug}"): (_tenant(), (401, 404, 200, 200, 200)),
    ("POST", "/api/v1/tenants/{slug}/suspend"): (_tenant("/suspend"), ADMIN_ONLY_NO_CLUSTER),
    ("POST", "/api/v1/tenants/{slug}/resume"): (_tenant("/resume"), ADMIN_ONLY_NO_CLUSTER),
    ("POST", "/api/v1/tenants/{slug}/offboard"): (_tenant("/offboard"), ADMIN_ONLY_NO_CLUSTER),
    ("GET", "/api/v1/capacity"): (_fixed("/api/v1/capacity"), (401, 200, 200, 200, 200)),
    ("PUT", "/api/v1/capacity/{gpu_model}"): (
        _fixed("/api/v1/capacity/NVIDIA-L4", {"total": 4}),
        ADMIN_ONLY,
    ),
    ("POST", "/api/v1/capacity/sync"): (_fixed("/api/v1/capacity/sync"), ADMIN_ONLY_NO_CLUSTER),
    ("GET", "/api/v1/audit"): (_fixed("/api/v1/audit"), ADMIN_ONLY),
    ("GET", "/api/v1/tenants/{slug}/members"): (_tenant("/members"), (401, 404, 200, 200, 200)),
    ("POST", "/api/v1/tenants/{slug}/members"): (_invite, (401, 404, 403, 201, 201)),
    ("DELETE", "/api/v1/tenants/{slug}/members/{username}"): (_remove, (401, 404, 403, 204, 204)),
    # Costs (issue 7): prices are readable by everyone signed in, published by platform admins;
    # a report covers the caller's own agency; budgets belong to the tenant (set by its admins).
    ("GET", "/api/v1/price-lists"): (_fixed("/api/v1/price-lists"), (401, 200, 200, 200, 200)),
    ("POST", "/api/v1/price-lists"): (
        _fixed("/api/v1/price-lists", PRICE_LIST),
        (401, 403, 403, 403, 201),
    ),
    # No such version: authorized, nothing to withdraw.
    ("DELETE", "/api/v1/price-lists/{price_list_id}"): (
        _fixed("/api/v1/price-lists/999999"),
        (401, 403, 403, 403, 404),
    ),
    ("GET", "/api/v1/reports/costs"): (
        _fixed("/api/v1/reports/costs?month=2026-10"),
        (401, 200, 200, 200, 200),
    ),
    ("PUT", "/api/v1/tenants/{slug}/budget"): (
        lambda w, _c: (f"/api/v1/tenants/{w.slug}/budget", {"monthly_sek": 1000}),
        (401, 404, 403, 200, 200),
    ),
    ("GET", "/api/v1/tenants/{slug}/budget"): (_tenant("/budget"), (401, 404, 200, 200, 200)),
    # Usage series (issue 7): the tenant's members and platform admins.
    ("GET", "/api/v1/tenants/{slug}/usage"): (
        _tenant("/usage?from=2026-11-01&to=2026-11-30"),
        (401, 404, 200, 200, 200),
    ),
    # The tenant admin removes it first, so the platform admin finds none.
    ("DELETE", "/api/v1/tenants/{slug}/budget"): (_tenant("/budget"), (401, 404, 403, 204, 404)),
    # Notebooks (issue 6): the tenant here is still provisioning (no cluster), so an admitted
    # launch is 409 tenant_not_ready and the cluster reads 409 cluster_not_configured.
    ("GET", "/api/v1/notebook-profiles"): (_fixed("/api/v1/notebook-profiles"), ANYONE_SIGNED_IN),
    ("POST", "/api/v1/tenants/{slug}/notebooks"): (
        lambda w, _c: (
            f"/api/v1/tenants/{w.slug}/notebooks",
            {"name": "mx", "profile": "cpu-small"},
        ),
        (401, 404, 409, 409, 409),
    ),
    ("GET", "/api/v1/tenants/{slug}/notebooks"): (_tenant("/notebooks"), (401, 404, 409, 409, 409)),
    ("GET", "/api/v1/tenants/{slug}/notebooks/{name}"): (
        _tenant("/notebooks/mx"),
        (401, 404, 409, 409, 409),
    ),
    ("DELETE", "/api/v1/tenants/{slug}/notebooks/{name}"): (
        _tenant("/notebooks/mx"),
        (401, 404, 409, 409, 409),
    ),
}


def _small_request(name: str, organisation_number: str = KIRUNA) -> dict[str, Any]:
    agency = {"name": "Kiruna kommun", "organisation_number": organisation_number}
    return request_body(
        name=name,
        agency={**agency, "kind": "municipality"},
        quota={"gpus": 0, "cpu": 4, "memory_gib": 16, "storage_gib": 50},
    )


def _group_id(admin: KeycloakAdmin, name: str) -> str | None:
    try:
        return str(admin.get_group_by_path(f"/{name}")["id"])
    except KeycloakGetError as exc:
        if exc.response_code == 404:
            return None
        raise


@pytest.fixture(scope="module")
def people(keycloak_controlplane_admin: KeycloakAdmin) -> Iterator[dict[str, str]]:
    """Users for this run: the other agency's, the tenant's admin and member, two invitees."""
    created: list[str] = []
    people: dict[str, str] = {}
    roles = (
        ("other_agency", OTHER_AGENCY),
        ("tenant_admin", KIRUNA),
        ("member", KIRUNA),
        ("invitee", KIRUNA),
        ("invitee_of_admin", KIRUNA),
    )
    try:
        for role, org in roles:
            username = f"mx-{RUN}-{role.replace('_', '-')}"
            created.append(
                keycloak_controlplane_admin.create_user(
                    {
                        "username": username,
                        "email": f"{username}@example.se",
                        "emailVerified": True,
                        "firstName": role.title(),
                        "lastName": "Matrix",
                        "enabled": True,
                        "attributes": {"organisation_number": [org]},
                        "credentials": [
                            {"type": "password", "value": PASSWORD, "temporary": False}
                        ],
                    }
                )
            )
            people[role] = username
        yield people
    finally:
        for user_id in created:
            keycloak_controlplane_admin.delete_user(user_id)


@pytest.fixture(scope="module")
def world(
    keycloak: KeycloakInfo,
    keycloak_token: Callable[..., str],
    keycloak_controlplane_admin: KeycloakAdmin,
    people: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('matrix')) / 'sandlada.db'}"
    migrate.upgrade(url)
    settings = Settings(
        environment="test",
        database_url=url,
        oidc_issuer=keycloak.issuer,
        oidc_audience=API_AUDIENCE,
        keycloak_url=keycloak.base_url,
    )
    app = create_app(settings)
    names = {key: f"mx-{RUN}-{key}" for key in ("tenant", "approve", "reject", "withdraw")}
    try:
        with TestClient(app, raise_server_exceptions=False) as client:

            def as_(person: str, password: str = PASSWORD) -> dict[str, str]:
                return {"Authorization": f"Bearer {keycloak_token(person, password)}"}

            owner = as_(people["tenant_admin"])
            admin = as_("admin", "admin-dev")
            ids: dict[str, int] = {}
            for key, name in names.items():
                response = client.post(
                    "/api/v1/sandbox-requests", headers=owner, json=_small_request(name)
                )
                assert response.status_code == 201, response.text
                ids[key] = response.json()["id"]
            # The other agency has a request of its own: seeing only that is the point.
            other = client.post(
                "/api/v1/sandbox-requests",
                headers=as_(people["other_agency"]),
                json=_small_request(f"mx-{RUN}-other", OTHER_AGENCY),
            )
            assert other.status_code == 201, other.text
            approved = client.post(
                f"/api/v1/sandbox-requests/{ids['tenant']}/approve", headers=admin, json={}
            )
            assert approved.status_code == 200, approved.text
            slug = approved.json()["tenant"]["slug"]
            invited = client.post(
                f"/api/v1/tenants/{slug}/members",
                headers=as_(people["tenant_admin"]),  # a new token, carrying the admins group
                json={"username": people["member"], "role": "member"},
            )
            assert invited.status_code == 201, invited.text
            world = World(client, slug, ids, people)
            # Tokens taken now carry the groups (they live 5 minutes, longer than this module).
            world.tokens = {
                "other_agency": keycloak_token(people["other_agency"], PASSWORD),
                "member": keycloak_token(people["member"], PASSWORD),
                "tenant_admin": keycloak_token(people["tenant_admin"], PASSWORD),
                "platform_admin": keycloak_token("admin", "admin-dev"),
            }
            yield world
    finally:
        app.state.database.dispose()
        for name in names.values():
            for suffix in ("admins", "members"):
                gid = _group_id(keycloak_controlplane_admin, f"t-{name}-{suffix}")
                if gid is not None:
                    keycloak_controlplane_admin.delete_group(gid)


def _openapi_operations(world: World) -> set[tuple[str, str]]:
    document = world.client.get("/openapi.json").json()
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"get", "put", "post", "patch", "delete"}
    }


def test_every_endpoint_has_a_row(world: World) -> None:
    operations = _openapi_operations(world)
    missing = operations - set(MATRIX)
    assert not missing, f"endpoints without an authorization-matrix row: {sorted(missing)}"
    assert set(MATRIX) - operations == DOCS, "rows for endpoints the API no longer has"


def test_the_tokens_say_who_is_who(world: World) -> None:
    def claims(caller: str) -> dict[str, Any]:
        decoded: dict[str, Any] = jwt.decode(
            world.tokens[caller], options={"verify_signature": False}
        )
        return decoded

    groups = {caller: set(claims(caller).get("groups", [])) for caller in world.tokens}
    assert f"t-{world.slug}-members" in groups["member"]
    assert f"t-{world.slug}-admins" in groups["tenant_admin"]
    assert not {g for g in groups["other_agency"] if world.slug in g}
    assert claims("other_agency")["organisation_number"] in (OTHER_AGENCY, "5560360793")
    assert "platform-admin" in claims("platform_admin")["realm_access"]["roles"]


def test_matrix(world: World) -> None:
    wrong: list[str] = []
    for (method, template), (build, expected) in MATRIX.items():
        for caller, want in zip(CALLERS, expected, strict=True):
            path, body = build(world, caller)
            got, text = world.call(caller, method, path, body)
            if got != want:
                wrong.append(f"{method} {template} as {caller}: {got} (want {want}) {text}")
    assert not wrong, "\n".join(wrong)
