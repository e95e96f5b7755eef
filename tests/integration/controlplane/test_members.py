"""Tenant groups and members against the real Keycloak: approval, invitations, who may do what.

Each test approves a fresh tenant (a unique name per run) as the demo admin; the people are
users created for this module in the realm and deleted afterwards, as are the groups.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from keycloak import KeycloakAdmin, KeycloakGetError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from controlplane.app import create_app
from controlplane.database import Database
from controlplane.models import AuditEvent
from controlplane.settings import Settings
from controlplane.tenancy import lifecycle
from infra.keycloak.launcher import KeycloakInfo
from tests.fixtures.tokens import KIRUNA, LULEA
from tests.integration.controlplane.conftest import request_body

pytestmark = pytest.mark.keycloak

RUN = secrets.token_hex(4)
PASSWORD = f"pw-{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Person:
    username: str
    password: str

    @property
    def email(self) -> str:
        return f"{self.username}@example.se"


ADMIN = Person("admin", "admin-dev")
SCIENTIST = Person("scientist", "scientist-dev")  # Kiruna, in no tenant group


def _settings(engine: Engine, keycloak: KeycloakInfo, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": engine.url.render_as_string(hide_password=False),
        "oidc_issuer": keycloak.issuer,
        "keycloak_url": keycloak.base_url,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def settings(engine: Engine, keycloak: KeycloakInfo) -> Settings:
    return _settings(engine, keycloak)


@pytest.fixture(scope="module")
def people(keycloak_controlplane_admin: KeycloakAdmin) -> Iterator[dict[str, Person]]:
    """owner (Kiruna, submits), outsider (Luleå), newbie (no agency) — created for this run."""
    created: list[str] = []
    people: dict[str, Person] = {}
    for role, org in (("owner", KIRUNA), ("outsider", LULEA), ("newbie", None)):
        person = Person(f"kc-{RUN}-{role}", PASSWORD)
        user: dict[str, Any] = {
            "username": person.username,
            "email": person.email,
            "emailVerified": True,
            "firstName": role.title(),
            "lastName": "Test",
            "enabled": True,
            "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
        }
        if org is not None:
            user["attributes"] = {"organisation_number": [org]}
        created.append(keycloak_controlplane_admin.create_user(user))
        people[role] = person
    try:
        yield people
    finally:
        for user_id in created:
            keycloak_controlplane_admin.delete_user(user_id)


class Api:
    def __init__(self, client: TestClient, token: Callable[..., str]) -> None:
        self.client = client
        self.token = token

    def call(self, method: str, path: str, person: Person | None, **kwargs: Any) -> httpx.Response:
        headers = {}
        if person is not None:
            headers["Authorization"] = f"Bearer {self.token(person.username, person.password)}"
        response: httpx.Response = self.client.request(method, path, headers=headers, **kwargs)
        return response


@pytest.fixture
def api(client: TestClient, keycloak_token: Callable[..., str]) -> Api:
    return Api(client, keycloak_token)


def group_id(admin: KeycloakAdmin, name: str) -> str | None:
    try:
        return str(admin.get_group_by_path(f"/{name}")["id"])
    except KeycloakGetError as exc:
        if exc.response_code == 404:
            return None
        raise


def group_members(admin: KeycloakAdmin, name: str) -> set[str]:
    gid = group_id(admin, name)
    assert gid is not None, f"group {name} does not exist"
    return {u["username"] for u in admin.get_group_members(gid)}


@pytest.fixture
def new_slug(keycloak_controlplane_admin: KeycloakAdmin) -> Iterator[str]:
    """A unique request name (= slug); its Keycloak groups are deleted afterwards."""
    slug = f"kc-{RUN}-{secrets.token_hex(3)}"
    yield slug
    for suffix in ("admins", "members"):
        gid = group_id(keycloak_controlplane_admin, f"t-{slug}-{suffix}")
        if gid is not None:
            keycloak_controlplane_admin.delete_group(gid)


def submit(api: Api, owner: Person, name: str) -> int:
    body = request_body(name=name, quota={"gpus": 0, "cpu": 4, "memory_gib": 16, "storage_gib": 50})
    response = api.call("POST", "/api/v1/sandbox-requests", owner, json=body)
    assert response.status_code == 201, response.text
    request_id: int = response.json()["id"]
    return request_id


@pytest.fixture
def tenant(api: Api, people: dict[str, Person], new_slug: str) -> str:
    """A tenant approved for the owner; returns its slug."""
    request_id = submit(api, people["owner"], new_slug)
    response = api.call("POST", f"/api/v1/sandbox-requests/{request_id}/approve", ADMIN, json={})
    assert response.status_code == 200, response.text
    assert response.json()["tenant"]["slug"] == new_slug
    return new_slug


def claims_groups(api: Api, person: Person) -> list[str]:
    token = api.token(person.username, person.password)
    groups: list[str] = jwt.decode(token, options={"verify_signature": False}).get("groups", [])
    return groups


def members_path(slug: str) -> str:
    return f"/api/v1/tenants/{slug}/members"


class TestApproval:
    def test_creates_both_groups_with_the_requester_as_admin(
        self,
        api: Api,
        tenant: str,
        people: dict[str, Person],
        keycloak_controlplane_admin: KeycloakAdmin,
        session: Session,
    ) -> None:
        owner = people["owner"]
        assert group_members(keycloak_controlplane_admin, f"t-{tenant}-admins") == {owner.username}
        assert group_members(keycloak_controlplane_admin, f"t-{tenant}-members") == set()
        assert f"t-{tenant}-admins" in claims_groups(api, owner)
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "tenant.groups_created", AuditEvent.subject_id == tenant
            )
        ).one()
        assert event.after == {
            "groups": [f"t-{tenant}-admins", f"t-{tenant}-members"],
            "admin": owner.username,
        }

    def test_keycloak_down_defers_the_groups_and_the_sync_finishes_them(
        self,
        *,
        api: Api,
        people: dict[str, Person],
        new_slug: str,
        engine: Engine,
        keycloak: KeycloakInfo,
        database: Database,
        keycloak_controlplane_admin: KeycloakAdmin,
    ) -> None:
        request_id = submit(api, people["owner"], new_slug)
        down = _settings(engine, keycloak, keycloak_url=f"http://127.0.0.1:{closed_port()}")
        with TestClient(create_app(down, database), raise_server_exceptions=False) as client:
            broken = Api(client, api.token)
            response = broken.call(
                "POST", f"/api/v1/sandbox-requests/{request_id}/approve", ADMIN, json={}
            )
            # The approval stands (decided, GPUs reserved, tenant recorded); only the groups wait.
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["status"] == "approved"
            assert body["tenant"]["slug"] == new_slug
            assert body["tenant"]["status"] == "provisioning"
            assert len(body["setup_pending"]) == 1
            assert "Keycloak" in body["setup_pending"][0]
            tenant = broken.call("GET", f"/api/v1/tenants/{new_slug}", ADMIN).json()
            assert "Keycloak" in tenant["setup_pending"][0]
            again = broken.call(
                "POST", f"/api/v1/sandbox-requests/{request_id}/approve", ADMIN, json={}
            )
            assert again.status_code == 409, again.text
        assert group_id(keycloak_controlplane_admin, f"t-{new_slug}-admins") is None
        with database.session() as session:
            actions = session.scalars(
                select(AuditEvent.action).where(AuditEvent.subject_id == new_slug)
            ).all()
        assert "tenant.setup_deferred" in actions
        assert "tenant.groups_created" not in actions
        # Keycloak back: the sync's retry creates the groups with the requester as admin.
        app: FastAPI = api.client.app  # type: ignore[assignment]
        identity = app.state.identity
        assert new_slug in lifecycle.retry_groups(database, identity)
        assert group_members(keycloak_controlplane_admin, f"t-{new_slug}-admins") == {
            people["owner"].username
        }
        assert lifecycle.retry_groups(database, identity) == []
        tenant = api.call("GET", f"/api/v1/tenants/{new_slug}", ADMIN).json()
        assert tenant["setup_pending"] == []


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused for real."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TestMembers:
    def test_invited_member_is_in_the_group_and_their_next_token_carries_it(
        self,
        api: Api,
        tenant: str,
        people: dict[str, Person],
        keycloak_controlplane_admin: KeycloakAdmin,
        session: Session,
    ) -> None:
        owner, newbie = people["owner"], people["newbie"]
        assert f"t-{tenant}-members" not in claims_groups(api, newbie)
        response = api.call("POST", members_path(tenant), owner, json={"username": newbie.username})
        assert response.status_code == 201, response.text
        assert response.json()["role"] == "member"
        assert group_members(keycloak_controlplane_admin, f"t-{tenant}-members") == {
            newbie.username
        }
        assert f"t-{tenant}-members" in claims_groups(api, newbie)
        listed = api.call("GET", members_path(tenant), newbie)
        assert listed.status_code == 200, listed.text
        assert {(m["username"], m["role"]) for m in listed.json()} == {
            (owner.username, "admin"),
            (newbie.username, "member"),
        }
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.subject_id == tenant)
        ).all()
        assert "tenant.member_added" in actions

    def test_invite_by_email_as_admin_then_remove(
        self,
        api: Api,
        tenant: str,
        people: dict[str, Person],
        keycloak_controlplane_admin: KeycloakAdmin,
        session: Session,
    ) -> None:
        owner, newbie = people["owner"], people["newbie"]
        response = api.call(
            "POST", members_path(tenant), owner, json={"email": newbie.email, "role": "admin"}
        )
        assert response.status_code == 201, response.text
        assert group_members(keycloak_controlplane_admin, f"t-{tenant}-admins") == {
            owner.username,
            newbie.username,
        }
        removed = api.call("DELETE", f"{members_path(tenant)}/{newbie.username}", owner)
        assert removed.status_code == 204, removed.text
        assert group_members(keycloak_controlplane_admin, f"t-{tenant}-admins") == {owner.username}
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.subject_id == tenant)
        ).all()
        assert "tenant.member_removed" in actions

    def test_unknown_person_is_404_saying_what_to_do(
        self, api: Api, tenant: str, people: dict[str, Person]
    ) -> None:
        for body in ({"username": f"nobody-{RUN}"}, {"email": f"nobody-{RUN}@example.se"}):
            response = api.call("POST", members_path(tenant), people["owner"], json=body)
            assert response.status_code == 404, response.text
            assert "sign in" in response.json()["detail"]
            assert "logga in" in response.json()["detail"]
        gone = api.call("DELETE", f"{members_path(tenant)}/nobody-{RUN}", people["owner"])
        assert gone.status_code == 404

    def test_the_last_admin_cannot_be_removed(
        self, api: Api, tenant: str, people: dict[str, Person]
    ) -> None:
        owner = people["owner"]
        response = api.call("DELETE", f"{members_path(tenant)}/{owner.username}", owner)
        assert response.status_code == 409, response.text
        demote = api.call(
            "POST", members_path(tenant), owner, json={"username": owner.username, "role": "member"}
        )
        assert demote.status_code == 409, demote.text

    def test_bad_body_is_422(self, api: Api, tenant: str, people: dict[str, Person]) -> None:
        for body in ({}, {"username": "a", "email": "a@b.se"}, {"username": "a", "role": "owner"}):
            response = api.call("POST", members_path(tenant), people["owner"], json=body)
            assert response.status_code == 422, (body, response.text)

    def test_keycloak_down_is_503(
        self,
        *,
        api: Api,
        tenant: str,
        people: dict[str, Person],
        engine: Engine,
        keycloak: KeycloakInfo,
        database: Database,
        keycloak_controlplane_admin: KeycloakAdmin,
        session: Session,
    ) -> None:
        down = _settings(engine, keycloak, keycloak_url=f"http://127.0.0.1:{closed_port()}")
        with TestClient(create_app(down, database), raise_server_exceptions=False) as client:
            broken = Api(client, api.token)
            listed = broken.call("GET", members_path(tenant), people["owner"])
            assert listed.status_code == 503, listed.text
            added = broken.call(
                "POST", members_path(tenant), people["owner"], json={"username": "scientist"}
            )
            assert added.status_code == 503, added.text
        assert group_members(keycloak_controlplane_admin, f"t-{tenant}-members") == set()
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.subject_id == tenant)
        ).all()
        assert "tenant.member_added" not in actions


class TestAuthorizationMatrix:
    """Anonymous 401, other agency 404, same agency outside the tenant 403, member 403 for
    writes, tenant admin and platform admin allowed."""

    def test_matrix(self, api: Api, tenant: str, people: dict[str, Person]) -> None:
        owner, outsider, newbie = people["owner"], people["outsider"], people["newbie"]
        path = members_path(tenant)
        invite = {"username": SCIENTIST.username}
        assert api.call("POST", path, owner, json={"username": newbie.username}).status_code == 201

        def statuses(person: Person | None) -> tuple[int, int, int]:
            return (
                api.call("GET", path, person).status_code,
                api.call("POST", path, person, json=invite).status_code,
                api.call("DELETE", f"{path}/{SCIENTIST.username}", person).status_code,
            )

        assert statuses(None) == (401, 401, 401)
        assert statuses(outsider) == (404, 404, 404)
        assert statuses(SCIENTIST) == (403, 403, 403)
        assert statuses(newbie) == (200, 403, 403)
        assert statuses(owner) == (200, 201, 204)
        assert statuses(ADMIN) == (200, 201, 204)
        missing = "/api/v1/tenants/no-such-tenant/members"
        assert api.call("GET", missing, ADMIN).status_code == 404
