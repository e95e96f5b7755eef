"""Benchmark: notebook launch (Notebook resource created) → ``status.phase == Running``.

Usage: ``python bench/notebooks.py [--kubeconfig PATH] [--launches 100] [--restarts 50]
[--concurrent 500] [--tenants 30]``

Starts the operator (``operators.testing.OperatorProcess``: Tenant and Notebook handlers in one
process, as in production) against the local cluster (brought up or reused with
``infra.cluster.launcher``), creates ``--tenants`` Tenants, then measures:

- **launch**: ``--launches`` notebooks one at a time, each with a new home volume (so the
  volume is provisioned and bound inside the measured time), spread over the tenants: the clock
  starts before the create call and stops when a watch on Notebooks shows ``Running``.
- **restart**: ``--restarts`` stopped notebooks started again (``spec.stopped: false``; the home
  volume exists): the common case of a member coming back to their notebook.
- **concurrent**: ``--concurrent`` notebooks created at once (16 client threads) across the
  tenants: wall time until the last is ``Running``, throughput, and each notebook's time from
  its create call to ``Running`` (p50/p95).

Notebooks use a tiny CPU-only profile (0.1 core, 256 MiB, 1 GiB home) so 500 fit on the kwok
nodes beside other work; the GPU path differs only in a node selector and a resource limit.
The tenant quota's object counts (20 PVCs and services per tenant) are why 500 notebooks need
at least 25 tenants (30 by default, for slack while deleted objects are collected).
Everything the run creates is deleted afterwards (the namespaces take their volumes along).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from infra.cluster.launcher import Launcher
from operators.testing import OperatorProcess
from tenants.catalog import NotebookDefaults, Profile
from tenants.names import namespace_for
from tenants.notebook import PLURAL, notebook_body
from tenants.resource import GROUP, VERSION, TenantSpec, tenant_body

TINY = Profile(
    slug="bench-tiny",
    display_name={"sv": "Mätning", "en": "Benchmark"},
    description={"sv": "Liten profil för mätningar.", "en": "Tiny profile for benchmarks."},
    image="quay.io/jupyter/base-notebook:python-3.12",
    cpu=0.1,
    memory_gib=0.25,
    gpus=0,
    storage_gib=1,
)
DEFAULTS = NotebookDefaults(idle_timeout_seconds=3600, max_age_seconds=86400)


class PhaseWatcher:
    """Watches Notebooks in every namespace; records when each is first seen in a phase."""

    def __init__(self, api_client: client.ApiClient, run_id: str) -> None:
        self._custom = client.CustomObjectsApi(api_client)
        self._run_id = run_id
        self._seen: dict[tuple[str, str, str], float] = {}
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                self._custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                PLURAL,
                label_selector=f"bench-run={self._run_id}",
                timeout_seconds=30,
            )
            for event in stream:
                obj = event["object"]
                phase = (obj.get("status") or {}).get("phase")
                if not phase:
                    continue
                key = (obj["metadata"]["namespace"], obj["metadata"]["name"], phase)
                with self._cond:
                    self._seen.setdefault(key, time.monotonic())
                    self._cond.notify_all()

    def forget(self, namespace: str, name: str, phase: str) -> None:
        with self._cond:
            self._seen.pop((namespace, name, phase), None)

    def wait(self, keys: list[tuple[str, str]], phase: str, timeout: float) -> dict[Any, float]:
        """When each of ``keys`` was first seen in ``phase``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                missing = [k for k in keys if (*k, phase) not in self._seen]
                if not missing:
                    return {k: self._seen[(*k, phase)] for k in keys}
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(missing)} notebooks not {phase}, e.g. {missing[:3]}")
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


def _tenant_spec(slug: str) -> TenantSpec:
    return TenantSpec.model_validate(
        {
            "slug": slug,
            "agency": {"name": "Mätkommun", "organisationNumber": "2120002627"},
            "quota": {"cpu": 64, "memoryGib": 256, "storageGib": 1000},
            "dataClassification": "internal",
        }
    )


def _body(namespace: str, name: str, run_id: str) -> dict[str, Any]:
    body = notebook_body(namespace, name, TINY, "bench", "Benchmark", DEFAULTS)
    body["metadata"]["labels"]["bench-run"] = run_id
    return body


def _ignore(call: Callable[..., object], *args: object) -> None:
    with contextlib.suppress(ApiException):
        call(*args)


def run(  # noqa: PLR0915  (one script)
    kubeconfig: Path, launches: int, restarts: int, concurrent: int, tenants: int
) -> None:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = 32
    api = client.ApiClient(configuration)
    custom: Any = client.CustomObjectsApi(api)
    core: Any = client.CoreV1Api(api)
    run_id = uuid.uuid4().hex[:6]
    # Not "bench-…": other benchmarks clean up tenants by that prefix.
    slugs = [f"nbb-{run_id}-{i}" for i in range(tenants)]
    namespaces = [namespace_for(slug) for slug in slugs]

    log = Path(tempfile.mkdtemp()) / "operator.log"
    operator = OperatorProcess(kubeconfig, log)
    operator.start(timeout=240)
    watcher = PhaseWatcher(api, run_id)
    print(f"operator log: {log}")
    try:
        for slug in slugs:
            custom.create_cluster_custom_object(
                GROUP, VERSION, "tenants", tenant_body(_tenant_spec(slug))
            )
        for slug in slugs:
            deadline = time.monotonic() + 300
            while (
                custom.get_cluster_custom_object(GROUP, VERSION, "tenants", slug).get("status")
                or {}
            ).get("phase") != "Ready":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"tenant {slug} not Ready")
                time.sleep(0.1)  # polling the apiserver for set-up, not measured
        print(f"{tenants} tenants Ready")

        # Launch: one at a time, each with a new home volume.
        launch_times: list[float] = []
        for i in range(launches):
            namespace, name = namespaces[i % tenants], f"seq-{i}"
            start = time.monotonic()
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, _body(namespace, name, run_id)
            )
            seen = watcher.wait([(namespace, name)], "Running", 120)
            launch_times.append(seen[(namespace, name)] - start)
            if i >= restarts:  # the first `restarts` stay for the restart measurement
                custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
                _ignore(core.delete_namespaced_persistent_volume_claim, f"home-{name}", namespace)
        print(_summary("launch (new home volume)", launch_times))

        # Restart: stopped notebooks started again; the home volume exists.
        restart_times: list[float] = []
        for i in range(min(restarts, launches)):
            namespace, name = namespaces[i % tenants], f"seq-{i}"
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, {"spec": {"stopped": True}}
            )
            watcher.wait([(namespace, name)], "Stopped", 60)
            watcher.forget(namespace, name, "Running")
            start = time.monotonic()
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, {"spec": {"stopped": False}}
            )
            seen = watcher.wait([(namespace, name)], "Running", 60)
            restart_times.append(seen[(namespace, name)] - start)
            custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            _ignore(core.delete_namespaced_persistent_volume_claim, f"home-{name}", namespace)
        if restart_times:
            print(_summary("restart (stopped → Running)", restart_times))

        # Concurrent: all at once across the tenants.
        keys = [(namespaces[i % tenants], f"bulk-{i}") for i in range(concurrent)]
        created_at: dict[tuple[str, str], float] = {}

        def create(key: tuple[str, str]) -> None:
            namespace, name = key
            start = time.monotonic()
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, _body(namespace, name, run_id)
            )
            created_at[key] = start

        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(create, keys))
        submitted = time.monotonic() - start
        seen = watcher.wait(keys, "Running", 900)
        wall = max(seen.values()) - start
        per_notebook = [seen[key] - created_at[key] for key in keys]
        print(
            f"concurrent {concurrent} notebooks over {tenants} tenants: all created in "
            f"{submitted:.1f} s, all Running after {wall:.1f} s "
            f"({concurrent / wall:.1f} notebooks/s)"
        )
        print(_summary("concurrent create → Running", per_notebook))
    finally:
        watcher.stop()
        try:
            _clean_up(custom, core, slugs, namespaces)
        finally:
            operator.stop()  # even when the clean-up fails (e.g. the apiserver went away)


def _clean_up(custom: Any, core: Any, slugs: list[str], namespaces: list[str]) -> None:
    """Delete the tenants and wait (unmeasured) until their namespaces are gone."""
    for slug in slugs:
        _ignore(custom.delete_cluster_custom_object, GROUP, VERSION, "tenants", slug)
    deadline = time.monotonic() + 600
    for namespace in namespaces:
        while time.monotonic() < deadline:
            try:
                core.read_namespace(namespace)
            except ApiException:
                break
            time.sleep(0.5)  # waiting for clean-up, not measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", type=Path, help="default: start or reuse the local one")
    parser.add_argument("--launches", type=int, default=100)
    parser.add_argument("--restarts", type=int, default=50)
    parser.add_argument("--concurrent", type=int, default=500)
    parser.add_argument("--tenants", type=int, default=30)
    args = parser.parse_args()
    if args.concurrent > 20 * args.tenants:
        sys.exit("each tenant's quota allows 20 notebooks (PVCs): raise --tenants")
    kubeconfig = args.kubeconfig or Launcher().up().kubeconfig
    run(kubeconfig, args.launches, args.restarts, args.concurrent, args.tenants)


if __name__ == "__main__":
    main()
