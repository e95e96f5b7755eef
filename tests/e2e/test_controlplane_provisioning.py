"""The control plane against the real local cluster: approval → Tenant resource → Ready.

The app runs in-process (TestClient, with its lifespan, so the periodic status sync runs) on a
migrated SQLite file; the Tenant operator runs as a real subprocess; tokens come from the
test-minted OIDC issuer. Every wait polls a condition with a deadline.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from sqlalchemy import update
from typer.testing import CliRunner

from controlplane import cli, migrate
from controlplane.app import create_app
from controlplane.database import make_engine
from controlplane.models import Tenant
from controlplane.settings import Settings
from infra.cluster.config import ClusterConfig
from infra.process import free_port as _free_port
from operators.testing import OperatorProcess
from tenants.builders import QUOTA_NAME
from tenants.names import namespace_for
from tenants.resource import GROUP, PLURAL, VERSION
from tests.fixtures.cluster import api_client
from tests.fixtures.tokens import ADMIN, KIRUNA, KIRUNA_REQUESTER, TestIssuer
from tests.integration.controlplane.conftest import ServedApp

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

T = TypeVar("T")
TIMEOUT = 30.0
A100 = "NVIDIA-A100-SXM4-80GB"


def wait_for(predicate: Callable[[], T | None], what: str, timeout: float = TIMEOUT) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.05)  # polling a condition, not waiting blindly
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def operator(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with OperatorProcess(cluster.kubeconfig, log) as process:
        yield process


def _settings(issuer: TestIssuer, database_url: str, kubeconfig: Path) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        oidc_issuer=issuer.url,
        kubeconfig=kubeconfig,
        kubernetes_timeout_seconds=3,
        tenant_sync_seconds=0.1,
        tenant_retention_days=0,
    )


class Api:
    def __init__(self, test_client: TestClient | httpx.Client, issuer: TestIssuer) -> None:
        self.client = test_client
        self.issuer = issuer
        self.database_url = ""

    def call(self, method: str, path: str, persona: Any = ADMIN, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self.client.request(
            method, path, headers=self.issuer.headers(persona), **kwargs
        )
        return response

    def submit(self, gpus: int = 1) -> int:
        name = f"e2e-cp-{uuid.uuid4().hex[:8]}"
        body = {
            "name": name,
            "agency": {
                "name": "Kiruna kommun",
                "organisation_number": KIRUNA,
                "kind": "municipality",
            },
            "purpose": "Transcribe council meetings with a speech model.",
            "legal_basis": "Kommunallagen 2 kap.",
            "data_classification": "internal",
            "ai_act_risk": "minimal",
            "quota": {
                "gpus": gpus,
                "gpu_model": A100,
                "cpu": 8,
                "memory_gib": 32,
                "storage_gib": 50,
            },
            "end_date": (datetime.now(UTC).date() + timedelta(days=90)).isoformat(),
        }
        response = self.call("POST", "/api/v1/sandbox-requests", KIRUNA_REQUESTER, json=body)
        assert response.status_code == 201, response.text
        request_id: int = response.json()["id"]
        return request_id

    def tenant(self, slug: str) -> dict[str, Any]:
        response = self.call("GET", f"/api/v1/tenants/{slug}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_status(self, slug: str, status: str) -> dict[str, Any]:
        return wait_for(
            lambda: (t := self.tenant(slug))["status"] == status and t, f"{slug} {status}"
        )


@pytest.fixture(scope="module")
def api(
    cluster: Any,
    operator: OperatorProcess,
    oidc_issuer: TestIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Api]:
    url = f"sqlite:///{tmp_path_factory.mktemp('cp') / 'sandlada.db'}"
    migrate.upgrade(url)
    app = create_app(_settings(oidc_issuer, url, cluster.kubeconfig))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        api = Api(test_client, oidc_issuer)
        api.database_url = url
        response = api.call("POST", "/api/v1/capacity/sync")
        assert response.status_code == 200, response.text
        yield api
    app.state.database.dispose()


@pytest.fixture(scope="module")
def core(cluster: Any) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(api_client(cluster))


def _resource(cluster: Any, slug: str) -> dict[str, Any] | None:
    custom = k8s.CustomObjectsApi(api_client(cluster))
    try:
        body: Any = custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, slug)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return dict(body)


def _approve(api: Api, gpus: int = 1) -> str:
    request_id = api.submit(gpus)
    response = api.call("POST", f"/api/v1/sandbox-requests/{request_id}/approve", json={})
    assert response.status_code == 200, response.text
    slug: str = response.json()["tenant"]["slug"]
    return slug


class TestApprovalProvisions:
    def test_approved_request_becomes_a_ready_tenant(
        self, api: Api, cluster: Any, core: k8s.CoreV1Api
    ) -> None:
        start = time.monotonic()
        slug = _approve(api, gpus=2)
        resource = _resource(cluster, slug)
        assert resource is not None, "approval returned before the Tenant resource existed"
        assert resource["spec"]["quota"]["gpus"] == 2
        assert resource["spec"]["agency"]["organisationNumber"] == KIRUNA
        managers = {m["manager"] for m in resource["metadata"]["managedFields"]}
        assert "sandlada-controlplane" in managers

        tenant = api.wait_status(slug, "ready")
        elapsed = time.monotonic() - start
        assert tenant["ready_at"] is not None
        # The operator stamps provisionedAt in milliseconds after the row was created, so the
        # figure is positive and within what the test itself waited.
        assert 0 < tenant["provisioning_seconds"] <= elapsed
        assert tenant["cluster"]["reachable"] is True
        assert tenant["cluster"]["phase"] == "Ready"
        ready = [c for c in tenant["cluster"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", tenant["cluster"]

        namespace = namespace_for(slug)
        assert core.read_namespace(namespace).to_dict()["status"]["phase"] == "Active"
        quota = core.read_namespaced_resource_quota(QUOTA_NAME, namespace).to_dict()
        assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "2"

        events = api.call("GET", "/api/v1/audit", params={"limit": 500}).json()
        actions = {e["action"] for e in events if e.get("subject_id") == slug}
        assert {"tenant.created", "tenant.ready"} <= actions, actions
        print(f"approve -> SQL ready in {elapsed:.3f}s (provisioning_seconds "
              f"{tenant['provisioning_seconds']:.3f})")  # fmt: skip


def _expected_gpus() -> dict[str, int]:
    """GPUs per model the local cluster's kwok node pools were made with."""
    expected: dict[str, int] = defaultdict(int)
    for pool in ClusterConfig.from_env().node_pools:
        if pool.gpus and pool.gpu_product:
            expected[pool.gpu_product] += pool.gpus * pool.count
    return dict(expected)


class TestCapacitySync:
    def test_totals_follow_the_gpu_nodes(self, api: Api) -> None:
        expected = _expected_gpus()
        response = api.call("POST", "/api/v1/capacity/sync")
        assert response.status_code == 200, response.text
        totals = {r["gpu_model"]: r["total"] for r in response.json() if not r["admin_override"]}
        assert totals == expected

    def test_admin_override_wins_over_the_nodes(self, api: Api) -> None:
        model = "NVIDIA-L4"
        response = api.call("PUT", f"/api/v1/capacity/{model}", json={"total": 100})
        assert response.status_code == 200, response.text
        synced = {r["gpu_model"]: r for r in api.call("POST", "/api/v1/capacity/sync").json()}
        assert synced[model]["total"] == 100
        assert synced[model]["admin_override"] is True

    def test_cli_sync(self, cluster: Any, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'cli.db'}"
        migrate.upgrade(url)
        env = {
            "SANDLADA_DATABASE_URL": url,
            "SANDLADA_KUBECONFIG": str(cluster.kubeconfig),
            "SANDLADA_ENVIRONMENT": "test",
        }
        result = CliRunner().invoke(cli.app, ["capacity", "sync", "-o", "json"], env=env)
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout)
        assert {r["gpu_model"]: r["total"] for r in rows} == _expected_gpus()
        assert not any(r["admin_override"] for r in rows)


class TestLifecycle:
    def test_suspend_resume_offboard(self, api: Api, cluster: Any, core: k8s.CoreV1Api) -> None:
        slug = _approve(api)
        api.wait_status(slug, "ready")

        response = api.call("POST", f"/api/v1/tenants/{slug}/suspend")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "suspended"
        wait_for(lambda: api.tenant(slug)["cluster"]["phase"] == "Suspended", "phase Suspended")
        assert _resource(cluster, slug)["spec"]["suspended"] is True  # type: ignore[index]

        response = api.call("POST", f"/api/v1/tenants/{slug}/suspend")
        assert response.status_code == 409, response.text

        response = api.call("POST", f"/api/v1/tenants/{slug}/resume")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "ready"
        wait_for(lambda: api.tenant(slug)["cluster"]["phase"] == "Ready", "phase Ready again")

        # Retention is 0 days here: the sync deletes on its next pass.
        response = api.call("POST", f"/api/v1/tenants/{slug}/offboard")
        assert response.status_code == 200, response.text
        assert response.json()["delete_after"] is not None
        api.wait_status(slug, "deleted")
        assert _resource(cluster, slug) is None

        def namespace_gone() -> bool:
            try:
                core.read_namespace(namespace_for(slug))
            except ApiException as exc:
                return bool(exc.status == 404)
            return False

        wait_for(namespace_gone, "namespace deleted", timeout=60)
        events = api.call("GET", "/api/v1/audit", params={"limit": 500}).json()
        actions = [e["action"] for e in events if e.get("subject_id") == slug]
        for action in (
            "tenant.suspended",
            "tenant.resumed",
            "tenant.offboarded",
            "tenant.deleting",
            "tenant.deleted",
        ):
            assert action in actions, actions

    def test_expiry_offboards(self, api: Api, cluster: Any) -> None:
        slug = _approve(api)
        api.wait_status(slug, "ready")
        engine = make_engine(api.database_url)
        try:
            with engine.begin() as connection:
                yesterday = datetime.now(UTC).date() - timedelta(days=1)
                connection.execute(
                    update(Tenant).where(Tenant.slug == slug).values(expires_on=yesterday)
                )
        finally:
            engine.dispose()
        # Retention is 0 days here: expired → suspended → deleting → deleted.
        api.wait_status(slug, "deleted")
        assert _resource(cluster, slug) is None
        events = api.call("GET", "/api/v1/audit", params={"limit": 1000}).json()
        actions = [e["action"] for e in events if e.get("subject_id") == slug]
        assert actions[-3:] == ["tenant.expired", "tenant.deleting", "tenant.deleted"], actions

    def test_members_cannot_change_the_lifecycle(self, api: Api) -> None:
        slug = _approve(api)
        response = api.call("POST", f"/api/v1/tenants/{slug}/suspend", KIRUNA_REQUESTER)
        assert response.status_code == 403, response.text


class TestKubernetesUnreachable:
    def test_approval_stands_and_the_resource_is_left_for_the_sync(
        self,
        cluster: Any,
        oidc_issuer: TestIssuer,
        tmp_path: Path,
    ) -> None:
        # A kubeconfig of the real cluster pointed at a port nobody listens on.
        config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
        for entry in config["clusters"]:
            entry["cluster"]["server"] = f"https://127.0.0.1:{_free_port()}"
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
        url = f"sqlite:///{tmp_path / 'sandlada.db'}"
        migrate.upgrade(url)
        app = create_app(_settings(oidc_issuer, url, kubeconfig))
        with TestClient(app, raise_server_exceptions=False) as test_client:
            api = Api(test_client, oidc_issuer)
            response = api.call("POST", "/api/v1/capacity/sync")
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "cluster_unavailable"
            assert api.call("PUT", f"/api/v1/capacity/{A100}", json={"total": 8}).status_code == 200

            request_id = api.submit()
            response = api.call("POST", f"/api/v1/sandbox-requests/{request_id}/approve", json={})
            # Decided, reserved and recorded; the Tenant resource waits for the apiserver.
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["status"] == "approved"
            assert body["tenant"]["status"] == "provisioning"
            assert len(body["setup_pending"]) == 1
            assert body["setup_pending"][0].startswith("set-up is not finished (Kubernetes:")
            swedish = api.client.get(
                f"/api/v1/tenants/{body['tenant']['slug']}",
                headers={**oidc_issuer.headers(ADMIN), "Accept-Language": "sv"},
            ).json()
            assert swedish["setup_pending"][0].startswith("uppsättningen är inte klar (Kubernetes:")
            assert swedish["cluster"]["reachable"] is False

            events = api.call("GET", "/api/v1/audit", params={"limit": 500}).json()
            actions = [e["action"] for e in events]
            assert actions[-3:] == [
                "tenant.created",
                "sandbox_request.approved",
                "tenant.setup_deferred",
            ], actions
            capacity = api.call("GET", "/api/v1/capacity").json()
            assert [(c["gpu_model"], c["granted"], c["free"]) for c in capacity] == [(A100, 1, 7)]
            # The sync pass keeps trying (and failing) without touching the record.
            sync = api.call("POST", "/api/v1/tenants/sync")
            assert sync.status_code == 503, sync.text
        app.state.database.dispose()


class TestStatusFollowsTheWatch:
    def test_sql_follows_the_resource_without_a_sync_pass(
        self,
        cluster: Any,
        operator: OperatorProcess,
        oidc_issuer: TestIssuer,
        tmp_path: Path,
    ) -> None:
        url = f"sqlite:///{tmp_path / 'sandlada.db'}"
        migrate.upgrade(url)
        # One sync pass at start-up, the next in an hour: only the watch can move SQL on.
        settings = _settings(oidc_issuer, url, cluster.kubeconfig).model_copy(
            update={"tenant_sync_seconds": 3600}
        )
        app = create_app(settings)
        with TestClient(app, raise_server_exceptions=False) as test_client:
            api = Api(test_client, oidc_issuer)
            assert api.call("POST", "/api/v1/capacity/sync").status_code == 200
            slug = _approve(api)
            tenant = api.wait_status(slug, "ready")
            assert tenant["provisioning_seconds"] > 0
            assert app.state.watcher.handled >= 1
            events = api.call("GET", "/api/v1/audit", params={"limit": 500}).json()
            ready = [e for e in events if e["action"] == "tenant.ready"]
            assert [e["subject_id"] for e in ready] == [slug]
        app.state.database.dispose()


class TestConcurrentApprovalsWithTheSync:
    APPROVALS = 50

    def test_no_5xx_and_every_tenant_ready(
        self, cluster: Any, operator: OperatorProcess, oidc_issuer: TestIssuer, tmp_path: Path
    ) -> None:
        """50 approvals at once on SQLite while the sync (every 0.1 s) and the watch write."""
        url = f"sqlite:///{tmp_path / 'sandlada.db'}"
        migrate.upgrade(url)
        settings = _settings(oidc_issuer, url, cluster.kubeconfig)
        admin = oidc_issuer.headers(ADMIN, expires_in=600)
        with (
            ServedApp(settings) as served,
            httpx.Client(base_url=served.url, timeout=120) as client,
        ):
            api = Api(client, oidc_issuer)
            ids = []
            for _ in range(self.APPROVALS):
                ids.append(api.submit(gpus=0))
            barrier = threading.Barrier(len(ids))
            results: list[tuple[int, dict[str, Any]]] = []
            lock = threading.Lock()

            def approve(request_id: int) -> None:
                barrier.wait(timeout=60)
                response = client.post(
                    f"/api/v1/sandbox-requests/{request_id}/approve", headers=admin, json={}
                )
                with lock:
                    results.append((response.status_code, response.json()))

            threads = [threading.Thread(target=approve, args=(i,)) for i in ids]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=180)
            statuses = sorted(status for status, _ in results)
            assert statuses == [200] * self.APPROVALS, [r for r in results if r[0] != 200][:3]
            assert all(body["setup_pending"] == [] for _, body in results)
            slugs = {body["tenant"]["slug"] for _, body in results}
            assert len(slugs) == self.APPROVALS

            def all_ready() -> bool:
                listed = client.get("/api/v1/tenants", headers=admin, params={"limit": 1000})
                ready = {t["slug"] for t in listed.json() if t["status"] == "ready"}
                return slugs <= ready

            wait_for(all_ready, f"{self.APPROVALS} tenants ready in SQL", timeout=180)
            # Clean up through the product: offboard (retention 0) → the sync deletes them.
            for slug in slugs:
                response = client.post(f"/api/v1/tenants/{slug}/offboard", headers=admin)
                assert response.status_code == 200, response.text
