"""The local cluster enforces what the platform relies on: quota, scheduling, RBAC, PSA, GC.

Manifests are plain dicts (as the API documents them), so API objects are typed ``Any`` here: the
client's models would make every field optional and every test a chain of None checks.

Every test runs against the real apiserver, controller-manager, scheduler and kwok nodes started by
the session-scoped ``cluster`` fixture, in namespaces of its own that are deleted afterwards.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from infra.cluster.config import (
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    ClusterConfig,
    Ports,
    parse_node_pools,
)
from infra.cluster.launcher import ClusterInfo, Launcher
from infra.cluster.render import COMPONENTS
from tests.fixtures.cluster import api_client, wait_until

pytestmark = pytest.mark.cluster

IMAGE = "registry.k8s.io/pause:3.10"  # never pulled: kwok nodes only pretend to run containers


@pytest.fixture(scope="module")
def admin(cluster: ClusterInfo) -> k8s.ApiClient:
    return api_client(cluster)


@pytest.fixture
def core(admin: k8s.ApiClient) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(admin)


@pytest.fixture
def make_namespace(core: Any) -> Iterator[Callable[..., str]]:
    """Create uniquely named namespaces; delete them after the test."""
    created: list[str] = []

    def make(prefix: str = "e2e", labels: dict[str, str] | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        create_namespace(core, name, labels)
        created.append(name)
        return name

    yield make
    for name in created:
        try:
            core.delete_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise


def status_message(error: ApiException) -> str:
    """The apiserver's human-readable message from a failed call's Status body."""
    message: str = json.loads(str(error.body))["message"]
    return message


def create_namespace(core: Any, name: str, labels: dict[str, str] | None = None) -> None:
    """Create a namespace and wait for its default service account, which pods need."""
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name, labels=labels)))

    def has_default_service_account() -> bool:
        try:
            core.read_namespaced_service_account("default", name)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    wait_until(has_default_service_account, what=f"the default service account in {name}")


def plain_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": IMAGE}]},
    }


def gpu_pod(name: str, gpus: int) -> dict[str, Any]:
    # Extended resources are requested through limits (requests default to them).
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {"name": "main", "image": IMAGE, "resources": {"limits": {GPU_RESOURCE: str(gpus)}}}
            ]
        },
    }


def test_gpu_quota_refuses_pods_beyond_it(core: Any, make_namespace: Any) -> None:
    ns = make_namespace("quota")
    core.create_namespaced_resource_quota(
        ns,
        {
            "metadata": {"name": "gpus"},
            "spec": {"hard": {f"requests.{GPU_RESOURCE}": "2"}},
        },
    )
    # Quota admission refuses everything until the quota controller has computed usage.
    wait_until(
        lambda: core.read_namespaced_resource_quota("gpus", ns).status.hard or {},
        what="quota status",
    )

    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(ns, gpu_pod("three", 3))
    assert refused.value.status == 403
    assert "exceeded quota" in status_message(refused.value)

    core.create_namespaced_pod(ns, gpu_pod("one", 1))
    core.create_namespaced_pod(ns, gpu_pod("two", 1))
    with pytest.raises(ApiException) as third:
        core.create_namespaced_pod(ns, gpu_pod("third", 1))
    assert third.value.status == 403
    assert "exceeded quota" in status_message(third.value)
    assert {p.metadata.name for p in core.list_namespaced_pod(ns).items} == {"one", "two"}


def test_gpu_pod_runs_on_a_gpu_node_and_too_big_one_stays_pending(
    core: Any, make_namespace: Any
) -> None:
    ns = make_namespace("sched")
    core.create_namespaced_pod(ns, gpu_pod("fits", 1))
    core.create_namespaced_pod(ns, gpu_pod("too-big", 9))

    running = wait_until(
        lambda: (pod := core.read_namespaced_pod("fits", ns)).status.phase == "Running" and pod,
        what="the 1-GPU pod to run",
    )
    node = core.read_node(running.spec.node_name)
    assert node.metadata.labels.get(GPU_PRODUCT_LABEL), "scheduled onto a node without GPUs"
    assert int(node.status.allocatable[GPU_RESOURCE]) >= 1

    def unschedulable() -> bool:
        pod = core.read_namespaced_pod("too-big", ns)
        return any(
            c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
            for c in (pod.status.conditions or [])
        )

    wait_until(unschedulable, what="the 9-GPU pod to be marked Unschedulable")
    pod = core.read_namespaced_pod("too-big", ns)
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None


def test_rbac_edit_in_one_namespace_gives_nothing_in_another(
    cluster: ClusterInfo, admin: k8s.ApiClient, make_namespace: Any
) -> None:
    team_ns, other_ns = make_namespace("team"), make_namespace("other")
    rbac: Any = k8s.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role_binding(
        team_ns,
        {
            "metadata": {"name": "team-edit"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "edit",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "team-a"}
            ],
        },
    )
    alice: Any = k8s.CoreV1Api(
        api_client(cluster, impersonate_user="alice", impersonate_groups=["team-a"])
    )

    # The binding works where it is (RBAC caches update asynchronously, so poll).
    def allowed_in_team() -> bool:
        try:
            alice.list_namespaced_pod(team_ns)
        except ApiException as error:
            if error.status == 403:
                return False
            raise
        return True

    wait_until(allowed_in_team, what="alice to be allowed in her namespace")
    with pytest.raises(ApiException) as forbidden:
        alice.list_namespaced_pod(other_ns)
    assert forbidden.value.status == 403
    message = status_message(forbidden.value)
    assert 'User "alice" cannot list resource "pods"' in message
    assert other_ns in message


def test_restricted_pod_security_refuses_privileged_pod(core: Any, make_namespace: Any) -> None:
    ns = make_namespace(
        "psa",
        labels={
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        },
    )
    privileged = {
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [
                {"name": "main", "image": IMAGE, "securityContext": {"privileged": True}}
            ]
        },
    }
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(ns, privileged)
    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in status_message(refused.value)

    # A pod that meets the restricted profile is admitted, so the refusal above is PSA's doing.
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "restricted"},
            "spec": {
                "securityContext": {
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "main",
                        "image": IMAGE,
                        "securityContext": {
                            "runAsUser": 65532,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            },
        },
    )


def test_deployment_becomes_available(admin: k8s.ApiClient, make_namespace: Any) -> None:
    ns = make_namespace("deploy")
    apps: Any = k8s.AppsV1Api(admin)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": IMAGE}]},
                },
            },
        },
    )
    wait_until(
        lambda: (apps.read_namespaced_deployment("web", ns).status.available_replicas or 0) == 2,
        what="2 available replicas",
    )


def test_job_runs_to_completion(admin: k8s.ApiClient, make_namespace: Any) -> None:
    # kwok's pod-succeeded stage finishes Job-owned pods; the job controller then completes it.
    ns = make_namespace("job")
    batch: Any = k8s.BatchV1Api(admin)
    batch.create_namespaced_job(
        ns,
        {
            "metadata": {"name": "train"},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "train", "image": IMAGE}],
                    }
                },
            },
        },
    )
    wait_until(
        lambda: (batch.read_namespaced_job("train", ns).status.succeeded or 0) == 1,
        what="the job to succeed",
    )


def test_namespace_deletion_completes(core: Any) -> None:
    ns = f"gone-{uuid.uuid4().hex[:8]}"
    create_namespace(core, ns)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "data"}, "data": {"a": "b"}})
    core.create_namespaced_pod(ns, plain_pod("worker"))
    wait_until(
        lambda: core.read_namespaced_pod("worker", ns).status.phase == "Running",
        what="the pod to run before deletion",
    )
    core.delete_namespace(ns)

    def gone() -> bool:
        try:
            core.read_namespace(ns)
        except ApiException as error:
            if error.status == 404:
                return True
            raise
        return False

    # The namespace controller must empty it (including the running pod) before it disappears.
    wait_until(gone, timeout=120, what=f"namespace {ns} to be deleted")


def test_up_when_up_is_a_quick_no_op(cluster: ClusterInfo) -> None:
    launcher = Launcher()
    pids = {c: launcher.running_pid(c) for c in COMPONENTS}
    started = time.monotonic()
    assert launcher.up() == cluster
    assert time.monotonic() - started < 10
    assert {c: launcher.running_pid(c) for c in COMPONENTS} == pids


def test_a_second_cluster_starts_and_down_stops_exactly_its_processes(
    cluster: ClusterInfo, tmp_path: Path
) -> None:
    # Its own ports and state, so the session's cluster must survive this one's `down`.
    config = ClusterConfig(
        state_dir=tmp_path / "cluster",
        ports=Ports(
            etcd_client=13379,
            etcd_peer=13380,
            apiserver=17443,
            controller_manager=17257,
            scheduler=17259,
            kwok=17080,
        ),
        node_pools=parse_node_pools("t4=1:4:Tesla-T4"),
    )
    second = Launcher(config)
    session = Launcher()
    session_pids = {c: session.running_pid(c) for c in COMPONENTS}
    try:
        info = second.up(timeout=300)
        second_core: Any = k8s.CoreV1Api(api_client(info))
        nodes = second_core.list_node().items
        assert [n.metadata.name for n in nodes] == ["kwok-t4-0"]
        assert nodes[0].metadata.labels[GPU_PRODUCT_LABEL] == "Tesla-T4"
        pids = [second.running_pid(c) for c in COMPONENTS]
        assert all(pids)
    finally:
        second.down()
    assert not config.state_dir.exists()
    for pid in pids:
        assert pid is not None
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert {c: session.running_pid(c) for c in COMPONENTS} == session_pids
    assert all(session.healthy(c) for c in COMPONENTS)
