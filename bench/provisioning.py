"""Benchmark: Tenant apply → Ready through the operator, against a plain client.

Usage: ``python bench/provisioning.py --kubeconfig PATH [--sequential 50] [--bulk 500]``

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
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from operators.storage import KubernetesStorage
from operators.testing import OperatorProcess
from tenants.builders import build_tenant_objects
from tenants.names import namespace_for
from tenants.resource import GROUP, PLURAL, VERSION, TenantSpec, tenant_body

WORKERS = 16


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
            stream = watch.Watch().stream(
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
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
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
    operator.start()
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


def _ignore(call: Any) -> None:
    with contextlib.suppress(client.exceptions.ApiException):
        call()


def _wait_gone(custom: client.CustomObjectsApi, slugs: list[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    remaining = set(slugs)
    while remaining and time.monotonic() < deadline:
        items = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
        remaining = {i["metadata"]["name"] for i in items} & remaining
        time.sleep(1)  # polling clean-up, outside any measurement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--sequential", type=int, default=50)
    parser.add_argument("--bulk", type=int, default=500)
    args = parser.parse_args()
    run(args.kubeconfig, args.sequential, args.bulk)


if __name__ == "__main__":
    main()
