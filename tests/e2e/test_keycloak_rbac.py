"""One membership grants both: Keycloak groups from the API reach Kubernetes RBAC.

With the real Keycloak (realm ``sandlada``), the local cluster and the Tenant operator as a
subprocess: a request approved through the API gets its Keycloak groups (the requester in
admins); ``scientist``, invited through the members API, gets a token carrying
``t-<slug>-members``; impersonating exactly that token's ``preferred_username`` and ``groups``
on the apiserver, they may work with pods in ``t-<slug>`` and nowhere else; once removed through
the API, their next token has no such group and the same impersonation is forbidden.

Impersonation goes over HTTPS with the cluster admin's client certificate and one
``Impersonate-Group`` header per group of the token (the kubernetes client sends at most one).
Request names are unique per run; the Keycloak groups and the Tenant resources created here are
deleted at the end.
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from keycloak import KeycloakAdmin, KeycloakGetError
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from controlplane import migrate
from controlplane.app import create_app
from controlplane.settings import Settings
from infra.cluster.launcher import ClusterInfo
from infra.keycloak.launcher import KeycloakInfo
from infra.keycloak.realm import API_AUDIENCE
from operators.testing import OperatorProcess
from tenants.names import namespace_for
from tenants.resource import GROUP, PLURAL, VERSION
from tests.fixtures.cluster import api_client, wait_until
from tests.fixtures.tokens import KIRUNA
from tests.integration.controlplane.conftest import request_body

pytestmark = [pytest.mark.cluster, pytest.mark.keycloak, pytest.mark.timeout(600)]

RUN = secrets.token_hex(4)
REQUESTER = ("requester", "requester-dev")
SCIENTIST = ("scientist", "scientist-dev")
ADMIN = ("admin", "admin-dev")


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


class Apiserver:
    """Raw HTTPS to the apiserver as the cluster admin, optionally impersonating someone."""

    def __init__(self, cluster: ClusterInfo) -> None:
        configured = api_client(cluster).configuration
        context = ssl.create_default_context(cafile=configured.ssl_ca_cert)
        context.load_cert_chain(configured.cert_file, configured.key_file)
        self.http = httpx.Client(base_url=configured.host, verify=context, timeout=10.0)

    def status(
        self,
        method: str,
        path: str,
        user: str,
        groups: list[str],
        body: dict[str, Any] | None = None,
    ) -> int:
        headers = [("Impersonate-User", user)] + [("Impersonate-Group", g) for g in groups]
        response = self.http.request(method, path, headers=headers, json=body)
        return response.status_code

    def close(self) -> None:
        self.http.close()


def _pod(name: str) -> dict[str, Any]:
    resources = {"cpu": "100m", "memory": "64Mi"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "registry.example/notebook:1",
                    "resources": {"requests": resources, "limits": resources},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                }
            ]
        },
    }


def _group_id(admin: KeycloakAdmin, name: str) -> str | None:
    try:
        return str(admin.get_group_by_path(f"/{name}")["id"])
    except KeycloakGetError as exc:
        if exc.response_code == 404:
            return None
        raise


def _group_members(admin: KeycloakAdmin, name: str) -> set[str]:
    gid = _group_id(admin, name)
    assert gid is not None, f"group {name} does not exist in Keycloak"
    return {user["username"] for user in admin.get_group_members(gid)}


class Platform:
    """The control plane in-process, called with real Keycloak tokens."""

    def __init__(self, client: TestClient, token: Callable[..., str]) -> None:
        self.client = client
        self.token = token
        self.slugs: list[str] = []

    def call(
        self, person: tuple[str, str], method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(*person)}"}
        response: httpx.Response = self.client.request(method, path, headers=headers, **kwargs)
        return response

    def approve_new_tenant(self, label: str) -> str:
        body = request_body(
            name=f"kc-rbac-{RUN}-{label}",
            quota={"gpus": 0, "cpu": 4, "memory_gib": 16, "storage_gib": 50},
        )
        assert body["agency"]["organisation_number"] == KIRUNA
        submitted = self.call(REQUESTER, "POST", "/api/v1/sandbox-requests", json=body)
        assert submitted.status_code == 201, submitted.text
        request_id = submitted.json()["id"]
        approved = self.call(
            ADMIN, "POST", f"/api/v1/sandbox-requests/{request_id}/approve", json={}
        )
        assert approved.status_code == 200, approved.text
        slug: str = approved.json()["tenant"]["slug"]
        self.slugs.append(slug)
        return slug

    def wait_ready(self, slug: str) -> None:
        def ready() -> bool:
            response = self.call(ADMIN, "GET", f"/api/v1/tenants/{slug}")
            assert response.status_code == 200, response.text
            return bool(response.json()["status"] == "ready")

        wait_until(ready, timeout=90, what=f"tenant {slug} ready")


@pytest.fixture(scope="module")
def operator(
    cluster: ClusterInfo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with OperatorProcess(cluster.kubeconfig, log) as process:
        yield process


@pytest.fixture(scope="module")
def platform(
    *,
    cluster: ClusterInfo,
    operator: OperatorProcess,
    keycloak: KeycloakInfo,
    keycloak_token: Callable[..., str],
    keycloak_controlplane_admin: KeycloakAdmin,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Platform]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('rbac')) / 'sandlada.db'}"
    migrate.upgrade(url)
    settings = Settings(
        environment="test",
        database_url=url,
        oidc_issuer=keycloak.issuer,
        oidc_audience=API_AUDIENCE,
        keycloak_url=keycloak.base_url,
        kubeconfig=cluster.kubeconfig,
        kubernetes_timeout_seconds=5,
        tenant_sync_seconds=0.1,
    )
    assert settings.oidc_issuer == "http://127.0.0.1:8080/realms/sandlada"
    app = create_app(settings)
    platform: Platform | None = None
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            platform = Platform(client, keycloak_token)
            yield platform
    finally:
        app.state.database.dispose()
        slugs = platform.slugs if platform is not None else []
        custom = k8s.CustomObjectsApi(api_client(cluster))
        for slug in slugs:
            for suffix in ("admins", "members"):
                gid = _group_id(keycloak_controlplane_admin, f"t-{slug}-{suffix}")
                if gid is not None:
                    keycloak_controlplane_admin.delete_group(gid)
            try:  # the operator's finalizer removes the namespace
                custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, slug)
            except ApiException as exc:
                if exc.status != 404:
                    raise

        def all_gone() -> bool:
            listed: Any = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
            names = {item["metadata"]["name"] for item in listed["items"]}
            return not names & set(slugs)

        # Before the operator stops, or its finalizer would keep the resources.
        wait_until(all_gone, timeout=90, what="this test's Tenant resources deleted")


@pytest.fixture(scope="module")
def apiserver(cluster: ClusterInfo) -> Iterator[Apiserver]:
    server = Apiserver(cluster)
    yield server
    server.close()


def test_a_member_invited_through_the_api_gets_the_tenants_rbac_and_loses_it_on_removal(
    platform: Platform,
    apiserver: Apiserver,
    keycloak_controlplane_admin: KeycloakAdmin,
    cluster: ClusterInfo,
) -> None:
    slug = platform.approve_new_tenant("mine")
    other = platform.approve_new_tenant("other")
    members_group = f"t-{slug}-members"

    # Approve → both groups in Keycloak, the requester the one admin, nobody a member yet.
    assert _group_members(keycloak_controlplane_admin, f"t-{slug}-admins") == {REQUESTER[0]}
    assert _group_members(keycloak_controlplane_admin, members_group) == set()
    platform.wait_ready(slug)
    platform.wait_ready(other)
    namespace, other_namespace = namespace_for(slug), namespace_for(other)
    assert namespace == f"t-{slug}"

    before = claims(platform.token(*SCIENTIST))
    assert members_group not in before.get("groups", [])
    assert apiserver.status(
        "GET", f"/api/v1/namespaces/{namespace}/pods", before["preferred_username"],
        before.get("groups", []),
    ) == 403  # fmt: skip

    # The tenant admin (the requester, with a token taken after approval) invites scientist.
    invited = platform.call(
        REQUESTER, "POST", f"/api/v1/tenants/{slug}/members", json={"username": "scientist"}
    )
    assert invited.status_code == 201, invited.text
    assert _group_members(keycloak_controlplane_admin, members_group) == {"scientist"}

    token = claims(platform.token(*SCIENTIST))
    user, groups = token["preferred_username"], list(token.get("groups", []))
    assert user == "scientist"
    assert members_group in groups, groups

    pods = f"/api/v1/namespaces/{namespace}/pods"
    pod = f"rbac-{RUN}"
    assert apiserver.status("GET", pods, user, groups) == 200
    assert apiserver.status("POST", pods, user, groups, _pod(pod)) == 201
    assert apiserver.status("GET", f"{pods}/{pod}", user, groups) == 200
    assert apiserver.status("DELETE", f"{pods}/{pod}", user, groups) == 200
    # What the member Role does not give: quota, RBAC; another tenant; cluster-scoped things.
    quotas = f"/api/v1/namespaces/{namespace}/resourcequotas"
    assert apiserver.status("POST", quotas, user, groups, {"metadata": {"name": "more"}}) == 403
    assert apiserver.status(
        "GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles", user, groups
    ) == 403  # fmt: skip
    other_pods = f"/api/v1/namespaces/{other_namespace}/pods"
    assert apiserver.status("GET", other_pods, user, groups) == 403
    assert apiserver.status("POST", other_pods, user, groups, _pod(pod)) == 403
    for cluster_scoped in (
        "/api/v1/namespaces",
        "/api/v1/nodes",
        f"/apis/{GROUP}/{VERSION}/{PLURAL}",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    ):
        assert apiserver.status("GET", cluster_scoped, user, groups) == 403, cluster_scoped

    # Removed through the API → the next token has no such group → forbidden in the namespace.
    removed = platform.call(REQUESTER, "DELETE", f"/api/v1/tenants/{slug}/members/scientist")
    assert removed.status_code == 204, removed.text
    assert _group_members(keycloak_controlplane_admin, members_group) == set()
    after = claims(platform.token(*SCIENTIST))
    after_groups = list(after.get("groups", []))
    assert members_group not in after_groups
    assert apiserver.status("GET", pods, after["preferred_username"], after_groups) == 403
    assert (
        apiserver.status("POST", pods, after["preferred_username"], after_groups, _pod(pod)) == 403
    )
