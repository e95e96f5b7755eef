"""Notebooks end to end: the control plane's API with the operator running on the local cluster.

Approval → Tenant Ready (the operator, and the control plane's status sync) → a member launches
a notebook through the API → the Notebook operator brings its pod up → ``phase`` reaches
``Running`` → an over-quota launch is a 409 naming the quota → stop through the API removes the
pod and keeps the home volume. The app runs in-process on a migrated SQLite file, the operator
as a real subprocess, tokens from the test-minted OIDC issuer; every wait polls a condition.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from controlplane import migrate
from controlplane.app import create_app
from controlplane.settings import Settings
from operators.testing import OperatorProcess
from tenants.names import namespace_for
from tenants.notebook import NOTEBOOK_LABEL, home_claim_name
from tests.fixtures.cluster import api_client, wait_until
from tests.fixtures.tokens import ADMIN, KIRUNA, KIRUNA_REQUESTER, Persona, TestIssuer

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

A100 = "NVIDIA-A100-SXM4-80GB"
TIMEOUT = 90.0


@pytest.fixture(scope="module")
def operator(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(cluster.kubeconfig, log)
    # Generous: on the shared 2-core machine the operator's imports alone can take a minute.
    try:
        process.start(timeout=240)
        yield process
    finally:
        # Also when start() timed out: the child runs on and must not outlive the test.
        process.stop()


class Api:
    def __init__(self, client: TestClient, issuer: TestIssuer) -> None:
        self.client = client
        self.issuer = issuer

    def call(
        self, method: str, path: str, persona: Persona = ADMIN, **kwargs: Any
    ) -> httpx.Response:
        response: httpx.Response = self.client.request(
            method, path, headers=self.issuer.headers(persona), **kwargs
        )
        return response


@pytest.fixture(scope="module")
def api(
    cluster: Any,
    operator: OperatorProcess,
    oidc_issuer: TestIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Api]:
    url = f"sqlite:///{tmp_path_factory.mktemp('cp') / 'sandlada.db'}"
    migrate.upgrade(url)
    settings = Settings(
        environment="test",
        database_url=url,
        oidc_issuer=oidc_issuer.url,
        kubeconfig=cluster.kubeconfig,
        kubernetes_timeout_seconds=5,
        tenant_sync_seconds=0.2,
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        api = Api(client, oidc_issuer)
        response = api.call("POST", "/api/v1/capacity/sync")
        assert response.status_code == 200, response.text
        yield api
    app.state.database.dispose()


@pytest.fixture(scope="module")
def core(cluster: Any) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(api_client(cluster))


def ready_tenant(api: Api, *, gpus: int) -> str:
    body = {
        "name": f"e2e-nb-{uuid.uuid4().hex[:8]}",
        "agency": {"name": "Kiruna kommun", "organisation_number": KIRUNA, "kind": "municipality"},
        "purpose": "Train a speech model on council recordings.",
        "legal_basis": "Kommunallagen 2 kap.",
        "data_classification": "internal",
        "ai_act_risk": "minimal",
        "quota": {
            "gpus": gpus,
            "gpu_model": A100,
            "cpu": 32,
            "memory_gib": 256,
            "storage_gib": 300,
        },
        "end_date": (datetime.now(UTC).date() + timedelta(days=30)).isoformat(),
    }
    response = api.call("POST", "/api/v1/sandbox-requests", KIRUNA_REQUESTER, json=body)
    assert response.status_code == 201, response.text
    request_id = response.json()["id"]
    response = api.call("POST", f"/api/v1/sandbox-requests/{request_id}/approve", json={})
    assert response.status_code == 200, response.text
    slug: str = response.json()["tenant"]["slug"]

    def ready() -> bool:
        return bool(api.call("GET", f"/api/v1/tenants/{slug}").json()["status"] == "ready")

    wait_until(ready, timeout=TIMEOUT, what=f"tenant {slug} ready")
    return slug


def notebook(api: Api, slug: str, name: str, persona: Persona) -> dict[str, Any] | None:
    response = api.call("GET", f"/api/v1/tenants/{slug}/notebooks/{name}", persona)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_launch_runs_over_quota_is_409_stop_keeps_home(api: Api, core: k8s.CoreV1Api) -> None:
    slug = ready_tenant(api, gpus=1)
    namespace = namespace_for(slug)
    scientist = Persona(f"sub-sci-{slug}", "sara.kiruna", KIRUNA, groups=(f"t-{slug}-members",))
    base = f"/api/v1/tenants/{slug}/notebooks"

    response = api.call("POST", base, scientist, json={"name": "train", "profile": "gpu-a100"})
    assert response.status_code == 202, response.text
    assert response.json()["phase"] == "Pending"

    running = wait_until(
        lambda: (nb := notebook(api, slug, "train", scientist)) and nb["phase"] == "Running" and nb,
        timeout=TIMEOUT,
        what="notebook phase Running",
    )
    assert running["url"], running
    assert running["started_at"] is not None
    pods = core.list_namespaced_pod(namespace, label_selector=f"{NOTEBOOK_LABEL}=train").items
    assert len(pods) == 1
    container = pods[0].spec.containers[0] if pods[0].spec else None
    assert container is not None and container.resources is not None
    assert (container.resources.limits or {}).get("nvidia.com/gpu") == "1"

    # The tenant's one A100 is in use: a second GPU notebook is refused before anything exists.
    response = api.call("POST", base, scientist, json={"name": "more", "profile": "gpu-a100"})
    assert response.status_code == 409, response.text
    assert response.json()["error"] == "quota_exceeded"
    assert "GPU quota exhausted: 1 of 1 NVIDIA A100" in response.json()["detail"]
    assert notebook(api, slug, "more", scientist) is None

    response = api.call("DELETE", f"{base}/train", scientist)
    assert response.status_code == 204, response.text

    def pod_gone() -> bool:
        return not core.list_namespaced_pod(
            namespace, label_selector=f"{NOTEBOOK_LABEL}=train"
        ).items

    wait_until(pod_gone, timeout=TIMEOUT, what="the notebook's pod to be deleted")
    assert notebook(api, slug, "train", scientist) is None
    try:
        claim = core.read_namespaced_persistent_volume_claim(home_claim_name("train"), namespace)
    except ApiException as exc:
        pytest.fail(f"home volume was not kept: {exc.status} {exc.reason}")
    assert claim.metadata is not None and claim.metadata.deletion_timestamp is None

    # The freed GPU can be used again; the old home volume is reused under the same name.
    response = api.call("POST", base, scientist, json={"name": "train", "profile": "gpu-a100"})
    assert response.status_code == 202, response.text

    audit = api.call("GET", "/api/v1/audit", params={"limit": 500}).json()
    actions = [e["action"] for e in audit if e.get("subject_id") == f"{slug}/train"]
    assert actions.count("notebook.launched") == 2 and actions.count("notebook.stopped") == 1
