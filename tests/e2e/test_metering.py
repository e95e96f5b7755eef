"""Metering end to end: pods of known sizes on the local cluster, metered by the real collector.

The collector runs as a child process (``python -m controlplane.metering``) against the local
apiserver and a migrated SQLite database. Pods run on the kwok GPU nodes: plain pods run until
they are deleted; Job pods are completed by kwok. The test keeps its own watch on the tenant
namespace and computes the expected usage from the pods' own timestamps (``startTime`` to the
last container ``finishedAt``, or to the deletion time for deleted pods) × their requests. The
collector is killed (SIGKILL) in the middle: pods finish and start while it is down, and a pod
runs across the restart. Metered GPU-, CPU- and memory-hours must match within 0.1 %; so must
the storage of a volume claim that lives across the restart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from sqlalchemy import func, select

from controlplane import migrate
from controlplane.database import Database
from controlplane.metering import service
from controlplane.metering.days import local_day, report_zone
from controlplane.models import StorageInterval, UsageDaily, UsageInterval
from infra.cluster.launcher import ClusterInfo
from tests.fixtures.cluster import api_client, wait_until
from tests.integration.controlplane.test_metering import make_tenant

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

A100 = "NVIDIA-A100-SXM4-80GB"
L4 = "NVIDIA-L4"
ZONE = "Europe/Stockholm"
TOLERANCE = 0.001  # 0.1 %
HOLD_SECONDS = 4.0  # how long the plain pods run at least before they are deleted
# Waits on the collector include its start-up (imports take tens of seconds on a busy machine).
COLLECTOR_WAIT = 240.0


@dataclass(frozen=True)
class Size:
    cpu: str
    memory: str
    gpus: int = 0
    gpu_model: str | None = None

    @property
    def cores(self) -> float:
        return float(self.cpu[:-1]) / 1000 if self.cpu.endswith("m") else float(self.cpu)

    @property
    def gib(self) -> float:
        assert self.memory.endswith(("Gi", "Mi"))
        value = float(self.memory[:-2])
        return value if self.memory.endswith("Gi") else value / 1024


def pod_spec(size: Size, *, job: bool) -> dict[str, Any]:
    resources: dict[str, Any] = {"requests": {"cpu": size.cpu, "memory": size.memory}}
    if size.gpus:
        resources["limits"] = {"nvidia.com/gpu": str(size.gpus)}
    spec: dict[str, Any] = {
        "containers": [{"name": "work", "image": "busybox", "resources": resources}],
        "terminationGracePeriodSeconds": 30,
    }
    spec["nodeSelector"] = (
        {"nvidia.com/gpu.product": size.gpu_model} if size.gpu_model else {"type": "kwok"}
    )
    if job:
        spec["restartPolicy"] = "Never"
    return spec


class Namespace:
    """A tenant namespace, the test's own record of its pods' last states, and helpers."""

    def __init__(self, api: client.ApiClient, name: str) -> None:
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.name = name
        self.last: dict[str, dict[str, Any]] = {}  # pod name -> last object seen
        self.deleted: set[str] = set()
        self.sizes: dict[str, Size] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Namespace:
        body: Any = {"metadata": {"name": self.name}}  # the client takes plain dicts too
        self.core.create_namespace(body)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(15)
        self.core.delete_namespace(self.name, propagation_policy="Background")

    def _watch(self) -> None:
        version = None
        while not self._stop.is_set():
            try:
                if version is None:
                    listed: Any = self.core.list_namespaced_pod(self.name)
                    version = listed.metadata.resource_version
                for event in watch.Watch().stream(  # type: ignore[no-untyped-call]
                    self.core.list_namespaced_pod,
                    self.name,
                    resource_version=version,
                    timeout_seconds=5,
                ):
                    obj = event["raw_object"]
                    version = obj["metadata"]["resourceVersion"]
                    self.last[obj["metadata"]["name"]] = obj
                    if event["type"] == "DELETED":
                        self.deleted.add(obj["metadata"]["name"])
            except ApiException:
                version = None

    def run_pod(self, name: str, size: Size) -> None:
        self.sizes[name] = size
        body: Any = {"metadata": {"name": name}, "spec": pod_spec(size, job=False)}
        self.core.create_namespaced_pod(self.name, body)

    def run_job(self, name: str, size: Size) -> str:
        body: Any = {
            "metadata": {"name": name},
            "spec": {"backoffLimit": 0, "template": {"spec": pod_spec(size, job=True)}},
        }
        self.batch.create_namespaced_job(self.name, body)
        pod = wait_until(
            lambda: next((p for p in self.last if p.startswith(f"{name}-")), None),
            what=f"job {name}'s pod",
        )
        self.sizes[pod] = size
        return pod

    def phase(self, pod: str) -> str | None:
        obj = self.last.get(pod)
        return obj["status"].get("phase") if obj else None

    def running(self, pod: str) -> None:
        wait_until(lambda: self.phase(pod) == "Running", what=f"pod {pod} running")

    def succeeded(self, pod: str) -> None:
        wait_until(lambda: self.phase(pod) == "Succeeded", what=f"pod {pod} succeeded")

    def delete(self, pod: str) -> None:
        """Delete ``pod`` once it has run HOLD_SECONDS by its own start time."""
        start = _time(self.last[pod]["status"]["startTime"])
        wait_until(
            lambda: datetime.now(UTC) - start >= timedelta(seconds=HOLD_SECONDS),
            what=f"pod {pod} to run {HOLD_SECONDS} s",
        )
        self.core.delete_namespaced_pod(pod, self.name)
        wait_until(lambda: pod in self.deleted, what=f"pod {pod} gone")

    def create_volume(self, name: str, size: str) -> str:
        body: Any = {
            "metadata": {"name": name},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": size}},
            },
        }
        created = self.core.create_namespaced_persistent_volume_claim(self.name, body)
        assert created.metadata is not None and created.metadata.uid is not None
        return created.metadata.uid

    def delete_volume(self, name: str) -> float:
        """Delete a claim; its lifetime in seconds by its own timestamps (creation to deletion)."""
        response: Any = self.core.delete_namespaced_persistent_volume_claim(
            name, self.name, _preload_content=False
        )
        meta = json.loads(response.data)["metadata"]
        deleted = _time(meta["deletionTimestamp"]) - timedelta(
            seconds=meta.get("deletionGracePeriodSeconds") or 0
        )
        return (deleted - _time(meta["creationTimestamp"])).total_seconds()

    def uid(self, pod: str) -> str:
        uid: str = self.last[pod]["metadata"]["uid"]
        return uid

    def seconds(self, pod: str) -> float:
        """Run time by the pod's own timestamps: startTime to finish or deletion."""
        obj = self.last[pod]
        start = _time(obj["status"]["startTime"])
        if obj["status"]["phase"] == "Succeeded":
            end = max(
                _time(c["state"]["terminated"]["finishedAt"])
                for c in obj["status"]["containerStatuses"]
            )
        else:
            assert pod in self.deleted, f"{pod} neither finished nor deleted"
            meta = obj["metadata"]
            end = _time(meta["deletionTimestamp"]) - timedelta(
                seconds=meta.get("deletionGracePeriodSeconds") or 0
            )
        return (end - start).total_seconds()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Collector:
    """The metering collector as a child process that can be killed and started again."""

    def __init__(self, database_url: str, kubeconfig: Path, log: Path) -> None:
        self.env = {
            **os.environ,
            "SANDLADA_ENVIRONMENT": "test",
            "SANDLADA_DATABASE_URL": database_url,
            "SANDLADA_KUBECONFIG": str(kubeconfig),
            "SANDLADA_REPORT_TIMEZONE": ZONE,
        }
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "controlplane.metering", "--tick-seconds", "1"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None


@pytest.fixture
def metering(
    cluster: ClusterInfo, tmp_path: Path
) -> Iterator[tuple[Namespace, Collector, Database, int]]:
    url = f"sqlite:///{tmp_path / 'meter.db'}"
    migrate.upgrade(url)
    database = Database.from_url(url)
    slug = f"meter-{uuid.uuid4().hex[:6]}"
    with database.session(write=True) as session, session.begin():
        tenant_id = make_tenant(session, slug)
    collector = Collector(url, cluster.kubeconfig, tmp_path / "collector.log")
    api = api_client(cluster)
    try:
        with Namespace(api, f"t-{slug}") as namespace:
            yield namespace, collector, database, tenant_id
    finally:
        collector.stop()
        api.close()  # type: ignore[no-untyped-call]
        database.dispose()


def _intervals(database: Database) -> dict[str, UsageInterval]:
    with database.session() as session:
        return {row.pod_uid: row for row in session.scalars(select(UsageInterval))}


def _recorded(database: Database, namespace: Namespace, pod: str, *, closed: bool) -> bool:
    row = _intervals(database).get(namespace.uid(pod))
    return row is not None and (row.ended_at is not None) == closed


def _volume_closed(database: Database, uid: str) -> bool:
    with database.session() as session:
        row = session.scalars(select(StorageInterval).where(StorageInterval.pvc_uid == uid)).first()
        return row is not None and row.ended_at is not None


def test_metered_hours_match_pod_timestamps_across_a_collector_restart(
    metering: tuple[Namespace, Collector, Database, int],
) -> None:
    namespace, collector, database, tenant_id = metering
    collector.start()
    volume_uid = namespace.create_volume("home-data", "2Gi")

    # Phase 1, collector up: a GPU pod runs and is deleted, a GPU job completes, a CPU pod starts.
    namespace.run_pod("l4-notebook", Size("1500m", "3Gi", 1, L4))
    namespace.run_pod("cpu-notebook", Size("250m", "512Mi"))
    namespace.running("l4-notebook")
    namespace.running("cpu-notebook")
    wait_until(
        lambda: _recorded(database, namespace, "l4-notebook", closed=False),
        what="the running pod recorded as an open interval",
        timeout=COLLECTOR_WAIT,
    )
    a100_job = namespace.run_job("a100-train", Size("4", "16Gi", 2, A100))
    namespace.succeeded(a100_job)
    namespace.delete("l4-notebook")
    wait_until(
        lambda: (
            _recorded(database, namespace, a100_job, closed=True)
            and _recorded(database, namespace, "l4-notebook", closed=True)
        ),
        what="the finished job pod and the deleted pod recorded as closed",
        timeout=COLLECTOR_WAIT,
    )

    # Phase 2, collector killed: a job runs and finishes, another pod starts; nobody watches.
    collector.kill()
    l4_job = namespace.run_job("l4-batch", Size("2", "4Gi", 1, L4))
    namespace.succeeded(l4_job)
    namespace.run_pod("a100-notebook", Size("8", "32Gi", 1, A100))
    namespace.running("a100-notebook")
    assert namespace.uid(l4_job) not in _intervals(database)

    # Phase 3, collector back: it catches up from a fresh list, then sees the deletions.
    collector.start()
    wait_until(
        lambda: (
            _recorded(database, namespace, l4_job, closed=True)
            and _recorded(database, namespace, "a100-notebook", closed=False)
        ),
        what="the restarted collector catching up",
        timeout=COLLECTOR_WAIT,
    )
    namespace.delete("a100-notebook")
    namespace.delete("cpu-notebook")
    volume_seconds = namespace.delete_volume("home-data")
    pods = ["l4-notebook", "cpu-notebook", a100_job, l4_job, "a100-notebook"]
    wait_until(
        lambda: (
            all(_recorded(database, namespace, pod, closed=True) for pod in pods)
            and _volume_closed(database, volume_uid)
        ),
        what="every interval closed",
        timeout=COLLECTOR_WAIT,
    )

    # Every pod once, with exactly its own run time.
    intervals = _intervals(database)
    assert len(intervals) == len(pods)
    expected: dict[str, float] = {"cpu": 0.0, "memory": 0.0}
    for pod in pods:
        row = intervals[namespace.uid(pod)]
        seconds = namespace.seconds(pod)
        size = namespace.sizes[pod]
        assert row.ended_at is not None
        assert (row.ended_at - row.started_at).total_seconds() == seconds, pod
        assert seconds >= (HOLD_SECONDS - 1 if pod in namespace.deleted else 0), pod
        assert row.gpu_model == (size.gpu_model or "")
        assert (row.gpus, row.cpu_cores, row.memory_gib) == (size.gpus, size.cores, size.gib)
        if size.gpu_model:
            expected[size.gpu_model] = expected.get(size.gpu_model, 0.0) + size.gpus * seconds
        expected["cpu"] += size.cores * seconds
        expected["memory"] += size.gib * seconds
    assert expected[A100] > 0 and expected[L4] > 0

    # The daily rollup (and the usage series built on it) adds up to the same hours.
    with database.session() as session:
        rows = session.execute(
            select(
                UsageDaily.gpu_model,
                func.sum(UsageDaily.gpu_seconds),
                func.sum(UsageDaily.cpu_core_seconds),
                func.sum(UsageDaily.memory_gib_seconds),
                func.sum(UsageDaily.storage_gib_seconds),
            ).group_by(UsageDaily.gpu_model)
        ).all()
        zone = report_zone(ZONE)
        today = local_day(datetime.now(UTC), zone)
        series = service.daily_usage(
            session,
            tenant_id,
            first=today - timedelta(days=1),
            last=today,
            now=datetime.now(UTC),
            zone=zone,
        )
    metered = {model: gpu for model, gpu, _, _, _ in rows if model}
    metered_cpu = sum(cpu for _, _, cpu, _, _ in rows)
    metered_memory = sum(memory for _, _, _, memory, _ in rows)
    metered_storage = sum(storage for _, _, _, _, storage in rows)
    for model in (A100, L4):
        assert metered[model] == pytest.approx(expected[model], rel=TOLERANCE), model
        series_gpu = sum(day.gpu_seconds.get(model, 0.0) for day in series)
        assert series_gpu == pytest.approx(expected[model], rel=TOLERANCE), model
    assert metered_cpu == pytest.approx(expected["cpu"], rel=TOLERANCE)
    assert metered_memory == pytest.approx(expected["memory"], rel=TOLERANCE)
    assert sum(d.cpu_core_seconds for d in series) == pytest.approx(expected["cpu"], rel=TOLERANCE)
    # The claim: 2 GiB from its creation to its deletion request.
    assert volume_seconds > 0
    assert metered_storage == pytest.approx(2.0 * volume_seconds, rel=TOLERANCE)


def test_a_pod_deleted_while_the_collector_is_down_ends_when_last_seen(
    metering: tuple[Namespace, Collector, Database, int],
) -> None:
    """The one approximate case: nobody saw the pod go, so it ends at its last sighting."""
    namespace, collector, database, _ = metering
    collector.start()
    namespace.run_pod("short-lived", Size("500m", "1Gi"))
    namespace.running("short-lived")
    uid = namespace.uid("short-lived")

    def seen_after_start() -> bool:
        row = _intervals(database).get(uid)
        return row is not None and row.last_seen_at > row.started_at + timedelta(seconds=1)

    wait_until(
        seen_after_start, what="a tick marking the open interval as seen", timeout=COLLECTOR_WAIT
    )
    collector.kill()
    killed_at = datetime.now(UTC)
    namespace.delete("short-lived")
    collector.start()
    wait_until(
        lambda: _recorded(database, namespace, "short-lived", closed=True),
        what="the restarted collector closing the vanished pod",
        timeout=COLLECTOR_WAIT,
    )
    row = _intervals(database)[uid]
    assert row.end_source == "last-seen"
    assert row.ended_at is not None
    assert row.started_at < row.ended_at <= killed_at, (row.started_at, row.ended_at, killed_at)
    true_end = row.started_at + timedelta(seconds=namespace.seconds("short-lived"))
    # Under-counted, never over-counted, up to the one-second resolution of the pod's own
    # deletionTimestamp (the last sighting may fall in the same second as the deletion).
    assert row.ended_at <= true_end + timedelta(seconds=1), (row.ended_at, true_end)
