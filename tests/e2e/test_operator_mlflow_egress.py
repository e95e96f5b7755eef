"""Tenants reach the platform's MLflow: the control plane grants it, the operator opens egress.

The control plane (in-process, real lifespan) approves a request; the Tenant operator (a real
subprocess) reconciles it on the real cluster. With ``SANDLADA_MLFLOW_ENABLED`` the Tenant
resource lists ``sharedServices: [mlflow]`` and the namespace gets NetworkPolicy
``sandlada-allow-mlflow`` (egress to MLflow's pods in ``sandlada-system`` on 5000); without it
neither exists, and a grant that goes is pruned from a live tenant.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from controlplane import migrate
from controlplane.app import create_app
from controlplane.settings import get_settings
from operators.testing import OperatorProcess
from tenants.builders import PLATFORM_NAMESPACE, SHARED_SERVICES
from tenants.names import namespace_for
from tenants.resource import SharedService
from tests.e2e.test_controlplane_provisioning import Api, _approve, _resource, _settings, wait_for
from tests.fixtures.cluster import api_client
from tests.fixtures.tokens import TestIssuer

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

POLICY = "sandlada-allow-mlflow"
ENABLED = "SANDLADA_MLFLOW_ENABLED"


@pytest.fixture(scope="module")
def operator(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with OperatorProcess(cluster.kubeconfig, log) as process:
        yield process


@pytest.fixture
def control_plane(
    cluster: Any,
    operator: OperatorProcess,
    oidc_issuer: TestIssuer,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Api, pytest.MonkeyPatch]]:
    """The app on a fresh database; the test decides whether the platform runs MLflow."""
    monkeypatch.delenv(ENABLED, raising=False)
    get_settings.cache_clear()
    url = f"sqlite:///{tmp_path / 'sandlada.db'}"
    migrate.upgrade(url)
    app = create_app(_settings(oidc_issuer, url, cluster.kubeconfig))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        api = Api(test_client, oidc_issuer)
        response = api.call("POST", "/api/v1/capacity/sync")
        assert response.status_code == 200, response.text
        yield api, monkeypatch
    app.state.database.dispose()
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def networking(cluster: Any) -> k8s.NetworkingV1Api:
    return k8s.NetworkingV1Api(api_client(cluster))


def _mlflow_enabled(monkeypatch: pytest.MonkeyPatch, enabled: bool) -> None:
    monkeypatch.setenv(ENABLED, "true" if enabled else "false")
    get_settings.cache_clear()


def _policy(networking: k8s.NetworkingV1Api, slug: str) -> dict[str, Any] | None:
    try:
        policy = networking.read_namespaced_network_policy(POLICY, namespace_for(slug))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    # As the apiserver's JSON (camelCase), not the client's snake_case dict.
    body: dict[str, Any] = k8s.ApiClient().sanitize_for_serialization(policy)  # type: ignore[no-untyped-call]
    return body


def _offboard(api: Api, slug: str) -> None:
    response = api.call("POST", f"/api/v1/tenants/{slug}/offboard", json={})
    assert response.status_code == 200, response.text
    api.wait_status(slug, "deleted")


def test_approved_tenant_may_reach_mlflow(
    control_plane: tuple[Api, pytest.MonkeyPatch], networking: k8s.NetworkingV1Api, cluster: Any
) -> None:
    api, monkeypatch = control_plane
    _mlflow_enabled(monkeypatch, True)
    slug = _approve(api)
    resource = _resource(cluster, slug)
    assert resource is not None
    assert resource["spec"]["sharedServices"] == ["mlflow"]
    api.wait_status(slug, "ready")

    policy = wait_for(lambda: _policy(networking, slug), f"NetworkPolicy {POLICY}")
    endpoint = SHARED_SERVICES[SharedService.MLFLOW]
    assert policy["spec"]["podSelector"] == {}  # every pod of the tenant, notebooks included
    assert policy["spec"]["policyTypes"] == ["Egress"]
    (rule,) = policy["spec"]["egress"]
    (peer,) = rule["to"]
    assert peer["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": PLATFORM_NAMESPACE}
    }
    assert peer["podSelector"] == {"matchLabels": endpoint.pod_labels}
    assert rule["ports"] == [{"protocol": "TCP", "port": endpoint.port}]

    # The grant goes (MLflow switched off, the spec re-applied by a lifecycle step): the
    # operator prunes the policy from the live tenant.
    _mlflow_enabled(monkeypatch, False)
    response = api.call("POST", f"/api/v1/tenants/{slug}/suspend", json={})
    assert response.status_code == 200, response.text
    wait_for(
        lambda: (r := _resource(cluster, slug)) is not None and not r["spec"].get("sharedServices"),
        "the grant removed from the resource",
    )
    wait_for(lambda: _policy(networking, slug) is None, f"NetworkPolicy {POLICY} pruned")
    _offboard(api, slug)


def test_without_mlflow_no_egress_to_it(
    control_plane: tuple[Api, pytest.MonkeyPatch], networking: k8s.NetworkingV1Api, cluster: Any
) -> None:
    api, monkeypatch = control_plane
    _mlflow_enabled(monkeypatch, False)
    slug = _approve(api)
    resource = _resource(cluster, slug)
    assert resource is not None
    assert resource["spec"].get("sharedServices", []) == []
    api.wait_status(slug, "ready")
    # Ready means the operator applied every policy it builds; MLflow's is not among them.
    names = {
        policy.metadata.name
        for policy in networking.list_namespaced_network_policy(namespace_for(slug)).items
        if policy.metadata is not None
    }
    assert names == {
        "sandlada-default-deny",
        "sandlada-allow-same-namespace",
        "sandlada-allow-dns",
        "sandlada-allow-platform-ingress",
    }
    _offboard(api, slug)


def test_sync_grants_mlflow_to_tenants_created_before_it_was_switched_on(
    control_plane: tuple[Api, pytest.MonkeyPatch], networking: k8s.NetworkingV1Api, cluster: Any
) -> None:
    api, monkeypatch = control_plane
    _mlflow_enabled(monkeypatch, False)
    slug = _approve(api)
    api.wait_status(slug, "ready")
    assert _policy(networking, slug) is None
    # MLflow switched on later: the next sync pass re-applies the spec with the grant.
    _mlflow_enabled(monkeypatch, True)
    response = api.call("POST", "/api/v1/tenants/sync")
    assert response.status_code == 200, response.text
    assert slug in response.json()["reapplied"]
    resource = _resource(cluster, slug)
    assert resource is not None
    assert resource["spec"]["sharedServices"] == ["mlflow"]
    wait_for(lambda: _policy(networking, slug), f"NetworkPolicy {POLICY}")
    # A second pass finds nothing to converge.
    again = api.call("POST", "/api/v1/tenants/sync")
    assert slug not in again.json()["reapplied"]
    _offboard(api, slug)
