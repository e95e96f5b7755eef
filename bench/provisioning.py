"""Benchmark: approve → Ready through the control plane and the operator, against a plain client.

Usage: ``python bench/provisioning.py [--mode api|resource] [--kubeconfig PATH] [--sequential 50]
[--bulk 500]``

``--mode api`` (default, what issue 5 asks): the control plane is served by uvicorn in its own
process on loopback (a migrated SQLite file, or ``--database-url``), ``SANDLADA_KUBECONFIG``
pointing at the local cluster (brought up or reused with ``infra.cluster.launcher``), tokens
from a local OIDC issuer started here (``tests.fixtures.tokens.start_issuer``) and GPU capacity
set through ``PUT /api/v1/capacity/{model}``. Each sandbox request is submitted untimed; the
clock starts when ``POST /api/v1/sandbox-requests/{id}/approve`` is called and stops when the
Tenant's ``status.phase == Ready`` is seen on a watch, and separately when
``GET /api/v1/tenants/{slug}`` says ``ready`` (the SQL status, which follows the resource through
the control plane's periodic sync, ``--sync-seconds``). Bulk: N submitted requests approved at
once through a bounded thread pool, wall time until the last is Ready.

``--mode resource``: the Tenant resource created directly → Ready (the operator alone).

Sequential: one Tenant at a time, the time from create to ``Ready`` seen on a watch; the plain
client applies the same objects (`build_tenant_objects`) with the same server-side apply, one
tenant at a time. Bulk: all Tenants created at once, wall time until the last is Ready, versus
the plain client applying all tenants' objects with as many threads as the operator has
workers. Both sides run in the same process run against the same apiserver. Everything the
run creates is deleted afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, config, watch

from controlplane import migrate
from infra.cluster.launcher import Launcher
from operators.storage import KubernetesStorage
from operators.testing import OperatorProcess
from tenants.builders import build_tenant_objects
from tenants.names import namespace_for
from tenants.resource import GROUP, PLURAL, VERSION, TenantSpec, tenant_body

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ is not an installed package
from infra.process import free_port as _free_port
from tests.fixtures.tokens import (
    ADMIN,
    KIRUNA,
    KIRUNA_REQUESTER,
    TestIssuer,
    start_issuer,
)

WORKERS = 16
A100 = "NVIDIA-A100-SXM4-80GB"


def _spec(slug: str) -> TenantSpec:
    return TenantSpec.model_validate(
        {
            "slug": slug,
            "agency": {"name": "Bench kommun", "organisationNumber": "212000-2627"},
            "quota": {"cpu": 2, "memoryGib": 4, "storageGib": 10},
            "dataClassification": "internal",
            "sharedServices": ["mlflow"],
        }
    )


class ReadyWatcher:
    """Watches Tenants and records when each first reports Ready."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api_client)
        self.ready_at: dict[str, float] = {}
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                self._custom.list_cluster_custom_object, GROUP, VERSION, PLURAL, timeout_seconds=30
            )
            for event in stream:
                obj = event["object"]
                if (obj.get("status") or {}).get("phase") == "Ready":
                    with self._cond:
                        self.ready_at.setdefault(obj["metadata"]["name"], time.monotonic())
                        self._cond.notify_all()

    def wait(self, slugs: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not all(s in self.ready_at for s in slugs):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = [s for s in slugs if s not in self.ready_at]
                    raise TimeoutError(f"{len(missing)} tenants not Ready, e.g. {missing[:3]}")
                self._cond.wait(left)

    def stop(self) -> None:
        self._stop = True


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(name: str, values: list[float]) -> str:
    return (
        f"{name}: n={len(values)} p50={statistics.median(values) * 1000:.0f} ms "
        f"p95={_percentile(values, 0.95) * 1000:.0f} ms max={max(values) * 1000:.0f} ms"
    )


def plain_apply(storage: KubernetesStorage, slug: str) -> None:
    for obj in build_tenant_objects(_spec(slug)).all():
        storage.apply(obj)


def run(kubeconfig: Path, sequential: int, bulk: int) -> None:  # noqa: PLR0915  (one script)
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=configuration
    )
    configuration.connection_pool_maxsize = WORKERS + 4
    api_client = client.ApiClient(configuration)
    storage = KubernetesStorage(api_client)
    custom = client.CustomObjectsApi(api_client)
    core = client.CoreV1Api(api_client)
    run_id = uuid.uuid4().hex[:4]
    created_tenants: list[str] = []
    plain_namespaces: list[str] = []

    log = Path(tempfile.mkdtemp()) / "operator.log"
    operator = OperatorProcess(kubeconfig, log)
    operator.start(timeout=300)  # start-up alone can take a minute on the loaded machine
    watcher = ReadyWatcher(api_client)
    try:
        # Sequential, operator.
        latencies = []
        for i in range(sequential):
            slug = f"bs-{run_id}-{i}"
            start = time.monotonic()
            custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, tenant_body(_spec(slug)))
            created_tenants.append(slug)
            watcher.wait([slug], timeout=60)
            latencies.append(watcher.ready_at[slug] - start)
        print(_summary("operator apply->Ready, sequential", latencies))

        # Sequential, plain client.
        plain = []
        for i in range(sequential):
            slug = f"bp-{run_id}-{i}"
            start = time.monotonic()
            plain_apply(storage, slug)
            plain.append(time.monotonic() - start)
            plain_namespaces.append(namespace_for(slug))
        print(_summary("plain client, sequential", plain))
        ratio = _percentile(latencies, 0.95) / _percentile(plain, 0.95)
        print(f"ratio p95 operator/plain: {ratio:.2f}")

        # Bulk, operator.
        slugs = [f"bb-{run_id}-{i}" for i in range(bulk)]
        start = time.monotonic()
        with ThreadPoolExecutor(WORKERS) as pool:
            list(
                pool.map(
                    lambda s: custom.create_cluster_custom_object(
                        GROUP, VERSION, PLURAL, tenant_body(_spec(s))
                    ),
                    slugs,
                )
            )
        created_tenants.extend(slugs)
        watcher.wait(slugs, timeout=1800)
        operator_wall = max(watcher.ready_at[s] for s in slugs) - start
        bulk_latency = [watcher.ready_at[s] - start for s in slugs]
        print(
            f"operator bulk: {bulk} tenants Ready in {operator_wall:.1f} s "
            f"({bulk / operator_wall:.1f} tenants/s); "
            + _summary("time to Ready from start", bulk_latency)
        )

        # Bulk, plain client.
        plain_slugs = [f"bq-{run_id}-{i}" for i in range(bulk)]
        start = time.monotonic()
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda s: plain_apply(storage, s), plain_slugs))
        plain_wall = time.monotonic() - start
        plain_namespaces.extend(namespace_for(s) for s in plain_slugs)
        print(
            f"plain bulk: {bulk} tenants in {plain_wall:.1f} s ({bulk / plain_wall:.1f} tenants/s)"
        )
        print(f"bulk throughput operator/plain: {plain_wall / operator_wall:.2f}")
    finally:
        watcher.stop()
        for slug in created_tenants:
            _ignore(lambda s=slug: custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, s))
        for namespace in plain_namespaces:
            _ignore(lambda n=namespace: core.delete_namespace(n))
        _wait_gone(custom, created_tenants)
        operator.stop()


class ControlPlane:
    """uvicorn serving the control plane in its own process, and an HTTP client for it."""

    def __init__(
        self, kubeconfig: Path, issuer: TestIssuer, database_url: str, sync_seconds: float
    ) -> None:
        self.port = _free_port()
        env = {
            **os.environ,
            "SANDLADA_ENVIRONMENT": "test",
            "SANDLADA_DATABASE_URL": database_url,
            "SANDLADA_OIDC_ISSUER": issuer.url,
            "SANDLADA_KUBECONFIG": str(kubeconfig),
            "SANDLADA_TENANT_SYNC_SECONDS": str(sync_seconds),
        }
        self.log = Path(tempfile.mkdtemp()) / "uvicorn.log"
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "controlplane.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self.failed_approvals = 0
        self._lock = threading.Lock()
        # Tokens minted once, valid for the run: signing is not what is measured.
        self.admin = issuer.headers(ADMIN, expires_in=7200)
        self.requester = issuer.headers(KIRUNA_REQUESTER, expires_in=7200)
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            timeout=120,
            limits=httpx.Limits(max_connections=WORKERS + 4),
        )
        deadline = time.monotonic() + 300
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get("/healthz").status_code == 200:
                    break
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"control plane did not start; see {self.log}")
            time.sleep(0.1)  # polling for the server to listen

    def call(self, method: str, path: str, admin: bool = True, **kwargs: Any) -> httpx.Response:
        headers = self.admin if admin else self.requester
        response = self.http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response

    def submit(self, name: str) -> int:
        body = {
            "name": name,
            "agency": {
                "name": "Kiruna kommun",
                "organisation_number": KIRUNA,
                "kind": "municipality",
            },
            "purpose": "Benchmark of approval to a Ready tenant.",
            "legal_basis": "Kommunallagen 2 kap.",
            "data_classification": "internal",
            "ai_act_risk": "minimal",
            "quota": {"gpus": 1, "gpu_model": A100, "cpu": 2, "memory_gib": 4, "storage_gib": 10},
            "end_date": "2027-06-30",
        }
        request_id: int = self.call("POST", "/api/v1/sandbox-requests", False, json=body).json()[
            "id"
        ]
        return request_id

    def approve(self, request_id: int) -> str:
        """Approve; a 5xx answer is counted in ``failed_approvals`` and the call retried.

        (With SQLite, concurrent approvals and the status sync can fail with "database is
        locked"; the bench reports how often instead of hiding it.)
        """
        path = f"/api/v1/sandbox-requests/{request_id}/approve"
        for _ in range(10):
            response = self.http.post(path, headers=self.admin, json={})
            if response.status_code < 500:
                break
            with self._lock:
                self.failed_approvals += 1
        if response.status_code >= 400:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
        slug: str = response.json()["tenant"]["slug"]
        return slug

    def sql_ready(self, slugs: set[str]) -> set[str]:
        """The slugs among ``slugs`` whose SQL status is ``ready`` (one paged list)."""
        ready: set[str] = set()
        offset = 0
        while True:
            page = self.call(
                "GET", "/api/v1/tenants", params={"limit": 1000, "offset": offset}
            ).json()
            ready |= {t["slug"] for t in page if t["status"] == "ready"} & slugs
            if len(page) < 1000:
                return ready
            offset += 1000

    def stop(self) -> None:
        self.http.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self._log_file.close()


def _wait_sql_ready(cp: ControlPlane, slug: str, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cp.call("GET", f"/api/v1/tenants/{slug}").json()["status"] == "ready":
            return time.monotonic()
        time.sleep(0.02)  # polling the API: the SQL status has no watch
    raise TimeoutError(f"{slug} not ready in SQL after {timeout} s")


def run_api(  # noqa: PLR0915  (one script)
    kubeconfig: Path, sequential: int, bulk: int, database_url: str | None, sync_seconds: float
) -> None:
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=configuration
    )
    configuration.connection_pool_maxsize = WORKERS + 4
    api_client = client.ApiClient(configuration)
    storage = KubernetesStorage(api_client)
    custom = client.CustomObjectsApi(api_client)
    core = client.CoreV1Api(api_client)
    run_id = uuid.uuid4().hex[:4]
    created_tenants: list[str] = []
    plain_namespaces: list[str] = []

    workdir = Path(tempfile.mkdtemp(prefix="bench-provisioning-"))
    url = database_url or f"sqlite:///{workdir / 'sandlada.db'}"
    migrate.upgrade(url)
    issuer, issuer_server = start_issuer()
    operator = OperatorProcess(kubeconfig, workdir / "operator.log")
    operator.start(timeout=300)  # start-up alone can take a minute on the loaded machine
    watcher = ReadyWatcher(api_client)
    cp: ControlPlane | None = None
    try:
        cp = ControlPlane(kubeconfig, issuer, url, sync_seconds)
        print(f"control plane on :{cp.port} ({url}), logs in {workdir} and {cp.log}")
        cp.call("PUT", f"/api/v1/capacity/{A100}", json={"total": sequential + bulk + 10})

        # Sequential, through the API.
        to_ready, to_sql, approve_call = [], [], []
        for i in range(sequential):
            request_id = cp.submit(f"bench-{run_id}-s{i}")
            start = time.monotonic()
            slug = cp.approve(request_id)
            approve_call.append(time.monotonic() - start)
            created_tenants.append(slug)
            watcher.wait([slug], timeout=60)
            to_ready.append(watcher.ready_at[slug] - start)
            to_sql.append(_wait_sql_ready(cp, slug) - start)
        print(_summary("approve call (HTTP response)", approve_call))
        print(f"approve calls answered 5xx (retried): {cp.failed_approvals}")
        print(_summary("approve -> Tenant Ready (watch), sequential", to_ready))
        print(_summary("approve -> SQL ready (GET /tenants/{slug}), sequential", to_sql))

        plain = []
        for i in range(sequential):
            slug = f"bp-{run_id}-{i}"
            start = time.monotonic()
            plain_apply(storage, slug)
            plain.append(time.monotonic() - start)
            plain_namespaces.append(namespace_for(slug))
        print(_summary("plain client, sequential", plain))
        print(
            "ratio p95 approve->Ready / plain: "
            f"{_percentile(to_ready, 0.95) / _percentile(plain, 0.95):.2f}"
        )

        # Bulk, through the API: requests submitted first (untimed), then approved at once.
        with ThreadPoolExecutor(WORKERS) as pool:
            request_ids = list(pool.map(lambda i: cp.submit(f"bench-{run_id}-b{i}"), range(bulk)))
        start = time.monotonic()

        def approve(request_id: int) -> str:
            slug = cp.approve(request_id)
            created_tenants.append(slug)  # as it happens, so a failed run still cleans up
            return slug

        with ThreadPoolExecutor(WORKERS) as pool:
            slugs = list(pool.map(approve, request_ids))
        approved = time.monotonic() - start
        print(f"approve calls answered 5xx in bulk (retried), total so far: {cp.failed_approvals}")
        watcher.wait(slugs, timeout=1800)
        api_wall = max(watcher.ready_at[s] for s in slugs) - start
        bulk_latency = [watcher.ready_at[s] - start for s in slugs]
        print(
            f"API bulk: {bulk} approvals answered in {approved:.1f} s; all Ready in "
            f"{api_wall:.1f} s ({bulk / api_wall:.1f} tenants/s); "
            + _summary("time to Ready from start", bulk_latency)
        )
        pending = set(slugs)
        deadline = time.monotonic() + 600
        while pending and time.monotonic() < deadline:
            pending -= cp.sql_ready(pending)
            if pending:
                time.sleep(0.2)  # polling the API: the SQL status has no watch
        sql_wall = time.monotonic() - start
        print(
            f"API bulk: SQL ready for {bulk - len(pending)}/{bulk} after {sql_wall:.1f} s "
            f"({(bulk - len(pending)) / sql_wall:.1f} tenants/s)"
        )

        plain_slugs = [f"bq-{run_id}-{i}" for i in range(bulk)]
        start = time.monotonic()
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda s: plain_apply(storage, s), plain_slugs))
        plain_wall = time.monotonic() - start
        plain_namespaces.extend(namespace_for(s) for s in plain_slugs)
        print(
            f"plain bulk: {bulk} tenants in {plain_wall:.1f} s ({bulk / plain_wall:.1f} tenants/s)"
        )
        print(f"bulk throughput approve->Ready / plain: {plain_wall / api_wall:.2f}")
    finally:
        # The control plane goes first, so its sync does not react to the clean-up.
        if cp is not None:
            cp.stop()
        issuer_server.shutdown()
        issuer_server.server_close()
        watcher.stop()
        try:
            _clean_up(custom, core, created_tenants, plain_namespaces)
        finally:
            operator.stop()


def _clean_up(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    tenants: list[str],
    namespaces: list[str],
    timeout: float = 600,
) -> None:
    with ThreadPoolExecutor(WORKERS) as pool:
        list(
            pool.map(
                lambda s: _ignore(
                    lambda: custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, s)
                ),
                tenants,
            )
        )
        list(pool.map(lambda n: _ignore(lambda: core.delete_namespace(n)), namespaces))
    _wait_gone(custom, tenants, timeout)
    print(f"clean-up: deleted {len(tenants)} tenants and {len(namespaces)} namespaces")


def _ignore(call: Any) -> None:
    with contextlib.suppress(client.exceptions.ApiException):
        call()


def _wait_gone(custom: client.CustomObjectsApi, slugs: list[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    remaining = set(slugs)
    while remaining and time.monotonic() < deadline:
        listed: Any = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        items = listed["items"]
        remaining = {i["metadata"]["name"] for i in items} & remaining
        time.sleep(1)  # polling clean-up, outside any measurement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("api", "resource"), default="api")
    parser.add_argument(
        "--kubeconfig", type=Path, help="default: the local cluster, brought up or reused"
    )
    parser.add_argument("--sequential", type=int, default=50)
    parser.add_argument("--bulk", type=int, default=500)
    parser.add_argument("--database-url", help="default: a migrated SQLite file in a temp dir")
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="without --database-url: SQLite in a temp dir, or a throwaway PostgreSQL cluster",
    )
    parser.add_argument("--sync-seconds", type=float, default=2.0, help="tenant status sync period")
    args = parser.parse_args()
    launcher = None
    kubeconfig = args.kubeconfig
    if kubeconfig is None:
        launcher = Launcher()
        kubeconfig = launcher.acquire().kubeconfig
    postgres = None
    database_url = args.database_url
    try:
        if args.mode == "resource":
            run(kubeconfig, args.sequential, args.bulk)
        else:
            if database_url is None and args.backend == "postgresql":
                from tests.fixtures.database import start_postgres  # noqa: PLC0415 - dev tooling

                postgres = start_postgres()
                postgres.admin_sql("CREATE DATABASE bench")
                database_url = postgres.url("bench")
            run_api(kubeconfig, args.sequential, args.bulk, database_url, args.sync_seconds)
    finally:
        if postgres is not None:
            from tests.fixtures.database import stop_postgres  # noqa: PLC0415

            stop_postgres(postgres)
        if launcher is not None:
            launcher.release()


if __name__ == "__main__":
    main()
