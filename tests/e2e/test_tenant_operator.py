"""The Tenant operator end to end: a real operator process against the local apiserver.

Covers provisioning, bad specs, drift repair, suspension, deletion through the finalizer, a
restart in the middle of reconciling, and the isolation a tenant's own users get, checked by
impersonating their groups as the Kubernetes Multi-Tenancy Benchmarks do. Every wait polls a
condition with a deadline.
"""

from __future__ import annotations

import contextlib
import copy
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ApiException as DynamicApiException
from kubernetes.dynamic.exceptions import NotFoundError

from operators.drift import drifted
from operators.testing import OperatorProcess
from tenants.builders import QUOTA_NAME, build_tenant_objects
from tenants.names import namespace_for, tenant_group
from tenants.resource import API_VERSION, TenantSpec, tenant_body

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

T = TypeVar("T")
TIMEOUT = 30.0


def wait_for(predicate: Callable[[], T | None], what: str, timeout: float = TIMEOUT) -> T:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.05)  # polling the apiserver for a condition, not waiting blindly
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def _api_client(kubeconfig: Path, *, user: str | None = None, group: str | None = None) -> Any:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    api_client = client.ApiClient(configuration)
    if user is not None:
        api_client.set_default_header("Impersonate-User", user)
    if group is not None:
        api_client.set_default_header("Impersonate-Group", group)
    return api_client


class Kube:
    """A dynamic client with short helpers, as the cluster admin or an impersonated user."""

    def __init__(self, kubeconfig: Path, *, user: str | None = None, group: str | None = None):
        self.dyn = DynamicClient(_api_client(kubeconfig, user=user, group=group))
        self.created: list[str] = []  # Tenants to delete at the end of the module

    def res(self, api_version: str, kind: str) -> Any:
        return self.dyn.resources.get(api_version=api_version, kind=kind)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        """The object as a dict, or None when it does not exist."""
        try:
            return self.res(api_version, kind).get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None

    def create(self, body: dict[str, Any], namespace: str | None = None) -> Any:
        return self.res(body["apiVersion"], body["kind"]).create(body=body, namespace=namespace)

    def status_of(self, call: Callable[[], Any]) -> int:
        """HTTP status of ``call``: 200 when it succeeded, the error's status otherwise."""
        try:
            call()
        except DynamicApiException as exc:
            return int(exc.status)
        return 200

    def tenant(self, slug: str) -> Any:
        return self.get(API_VERSION, "Tenant", slug)


def _refused(kube: Kube, call: Callable[[], Any]) -> tuple[int, str]:
    try:
        call()
    except DynamicApiException as exc:
        return int(exc.status), str(exc.body or exc)
    return 200, ""


@pytest.fixture(scope="module")
def operator(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(cluster.kubeconfig, log)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def kube(cluster: Any, operator: OperatorProcess) -> Iterator[Kube]:
    admin = Kube(cluster.kubeconfig)
    yield admin
    # Leave the shared cluster clean: delete what this module created while the operator
    # still runs to process the finalizers.
    tenants = admin.res(API_VERSION, "Tenant")
    for slug in admin.created:
        with contextlib.suppress(NotFoundError):
            tenants.delete(name=slug)
    for slug in admin.created:
        wait_for(lambda s=slug: admin.tenant(s) is None, f"tenant {slug} gone", timeout=120)


def new_slug(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def spec_dict(slug: str, **changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "slug": slug,
        "agency": {"name": "Kiruna kommun", "organisationNumber": "212000-2627"},
        "quota": {"cpu": 4, "memoryGib": 8, "storageGib": 20},
        "dataClassification": "internal",
        "sharedServices": ["mlflow"],
    }
    quota = changes.pop("quota", None)
    if quota:
        spec["quota"] = {**spec["quota"], **quota}
    spec.update(changes)
    return spec


def create_tenant(kube: Kube, slug: str, **changes: Any) -> dict[str, Any]:
    spec = spec_dict(slug, **changes)
    body = tenant_body(TenantSpec.model_validate(spec))
    kube.create(body)
    kube.created.append(slug)
    return spec


def is_ready(tenant: dict[str, Any] | None, phase: str = "Ready") -> bool:
    if not tenant:
        return False
    status = tenant.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
    return (
        status.get("phase") == phase
        and ready is not None
        and ready["status"] == ("True" if phase == "Ready" else "False")
        and status.get("observedGeneration") == tenant["metadata"]["generation"]
    )


def wait_ready(kube: Kube, slug: str, phase: str = "Ready", timeout: float = TIMEOUT) -> Any:
    return wait_for(
        lambda: (t := kube.tenant(slug)) and is_ready(t, phase) and t,
        f"tenant {slug} {phase}",
        timeout,
    )


def wait_quota_enforced(kube: Kube, slug: str) -> None:
    """Until the quota controller has counted the quota, admission refuses every pod."""

    def synced() -> bool:
        quota = kube.get("v1", "ResourceQuota", QUOTA_NAME, namespace_for(slug))
        return bool(quota and (quota.get("status") or {}).get("hard") == quota["spec"]["hard"])

    wait_for(synced, f"quota of {slug} counted")


def all_as_built(kube: Kube, spec: dict[str, Any], uid: str) -> list[str]:
    """Problems with the tenant's live objects compared with the builders' output."""
    problems = []
    for obj in build_tenant_objects(TenantSpec.model_validate(spec)).all():
        meta = obj["metadata"]
        live = kube.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        where = f"{obj['kind']} {meta.get('namespace', '')}/{meta['name']}"
        if live is None:
            problems.append(f"{where} missing")
            continue
        if drifted(obj, live):
            problems.append(f"{where} differs")
        owners = [o["uid"] for o in live["metadata"].get("ownerReferences") or []]
        if uid not in owners:
            problems.append(f"{where} not owned by the tenant")
    return problems


def restricted_pod(name: str, gpus: int = 0) -> dict[str, Any]:
    """A pod that Pod Security 'restricted' admits."""
    container: dict[str, Any] = {
        "name": "main",
        "image": "registry.invalid/notebook:1",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    if gpus:
        container["resources"] = {
            "requests": {"nvidia.com/gpu": str(gpus)},
            "limits": {"nvidia.com/gpu": str(gpus)},
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
        },
    }


class TestProvisioning:
    def test_tenant_becomes_ready_with_all_objects_as_built(self, kube: Kube) -> None:
        slug = new_slug()
        start = time.monotonic()
        spec = create_tenant(kube, slug, quota={"gpus": 1, "gpuModel": "NVIDIA-A100-SXM4-80GB"})
        tenant = wait_ready(kube, slug)
        elapsed = time.monotonic() - start
        assert all_as_built(kube, spec, tenant["metadata"]["uid"]) == []
        status = tenant["status"]
        assert status["namespace"] == namespace_for(slug)
        assert status["provisionedAt"]
        print(f"apply -> Ready in {elapsed:.3f}s")

    def test_printer_columns(self, cluster: Any, kube: Kube) -> None:
        slug = new_slug()
        create_tenant(kube, slug, quota={"gpus": 2, "gpuModel": "NVIDIA-L4"})
        wait_ready(kube, slug)
        wait_for(lambda: kube.tenant(slug)["status"].get("gpusUsed") == 0, "gpusUsed reported as 0")
        out = subprocess.run(
            ["kubectl", "--kubeconfig", str(cluster.kubeconfig), "get", "tenant", slug],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
        assert out[0].split() == ["NAME", "PHASE", "GPUS", "USED", "AGE"]
        assert out[1].split()[:4] == [slug, "Ready", "2", "0"]

    def test_update_changes_quota_and_revokes_shared_service(self, kube: Kube) -> None:
        slug = new_slug()
        create_tenant(kube, slug)
        wait_ready(kube, slug)
        namespace = namespace_for(slug)
        assert kube.get("networking.k8s.io/v1", "NetworkPolicy", "sandlada-allow-mlflow", namespace)
        kube.res(API_VERSION, "Tenant").patch(
            name=slug,
            body={"spec": {"quota": {"cpu": 8}, "sharedServices": []}},
            content_type="application/merge-patch+json",
        )
        wait_ready(kube, slug)
        quota = kube.get("v1", "ResourceQuota", QUOTA_NAME, namespace)
        assert quota["spec"]["hard"]["requests.cpu"] == "8"
        policy = kube.get(
            "networking.k8s.io/v1", "NetworkPolicy", "sandlada-allow-mlflow", namespace
        )
        assert policy is None

    def test_crd_refuses_malformed_tenants(self, kube: Kube) -> None:
        tenants = kube.res(API_VERSION, "Tenant")
        slug = new_slug()
        bodies = [
            {**tenant_body(TenantSpec.model_validate(spec_dict(slug))), "metadata": {"name": "x"}},
            {
                "apiVersion": API_VERSION,
                "kind": "Tenant",
                "metadata": {"name": slug},
                "spec": spec_dict(slug, quota={"gpus": 1}),
            },
            {
                "apiVersion": API_VERSION,
                "kind": "Tenant",
                "metadata": {"name": slug},
                "spec": spec_dict(slug, quota={"mig": {"9g.99gb": 1}}),
            },
        ]
        for body in bodies:
            assert kube.status_of(lambda b=body: tenants.create(body=b)) == 422

    def test_bad_spec_fails_permanently_then_recovers_when_fixed(self, kube: Kube) -> None:
        slug = new_slug()
        # Passes the CRD's pattern, fails the organisation number's check digit.
        create_tenant_raw = spec_dict(slug)
        create_tenant_raw["agency"]["organisationNumber"] = "212000-2628"
        kube.create(
            {
                "apiVersion": API_VERSION,
                "kind": "Tenant",
                "metadata": {"name": slug},
                "spec": create_tenant_raw,
            }
        )
        kube.created.append(slug)
        tenant = wait_ready(kube, slug, phase="Failed")
        ready = tenant["status"]["conditions"][0]
        assert ready["reason"] == "InvalidSpec"
        assert "organisation number" in ready["message"]
        # Permanent: kopf marked this spec as handled and will not retry it until it changes.
        handled = tenant["metadata"]["annotations"][
            "operator.sandlada.se/last-handled-configuration"
        ]
        assert "212000-2628" in handled
        assert kube.get("v1", "Namespace", namespace_for(slug)) is None
        kube.res(API_VERSION, "Tenant").patch(
            name=slug,
            body={"spec": {"agency": {"organisationNumber": "212000-2627"}}},
            content_type="application/merge-patch+json",
        )
        wait_ready(kube, slug)


@pytest.fixture(scope="module")
def drift_tenant(kube: Kube) -> dict[str, Any]:
    slug = new_slug("drift")
    spec = create_tenant(kube, slug)
    wait_ready(kube, slug)
    return spec


class TestDriftRepair:
    def _repaired(self, kube: Kube, spec: dict[str, Any], obj_kind: str, name: str) -> float:
        """Seconds until ``obj_kind/name`` is back as built."""
        start = time.monotonic()
        built = next(
            o
            for o in build_tenant_objects(TenantSpec.model_validate(spec)).all()
            if o["kind"] == obj_kind and o["metadata"]["name"] == name
        )
        namespace = built["metadata"].get("namespace")

        def back() -> bool:
            live = kube.get(built["apiVersion"], obj_kind, name, namespace)
            return live is not None and not drifted(built, live)

        wait_for(back, f"{obj_kind} {name} repaired", timeout=15)
        return time.monotonic() - start

    def test_deleted_network_policy_comes_back(
        self, kube: Kube, drift_tenant: dict[str, Any]
    ) -> None:
        namespace = namespace_for(drift_tenant["slug"])
        policies = kube.res("networking.k8s.io/v1", "NetworkPolicy")
        old_uid = policies.get(name="sandlada-default-deny", namespace=namespace).metadata.uid
        policies.delete(name="sandlada-default-deny", namespace=namespace)
        took = self._repaired(kube, drift_tenant, "NetworkPolicy", "sandlada-default-deny")
        new = policies.get(name="sandlada-default-deny", namespace=namespace)
        assert new.metadata.uid != old_uid
        print(f"deleted policy restored in {took:.3f}s")

    def test_edited_quota_is_restored(self, kube: Kube, drift_tenant: dict[str, Any]) -> None:
        namespace = namespace_for(drift_tenant["slug"])
        edited = kube.res("v1", "ResourceQuota").patch(
            name=QUOTA_NAME,
            namespace=namespace,
            body={"spec": {"hard": {"requests.cpu": "999", "requests.nvidia.com/gpu": "8"}}},
            content_type="application/merge-patch+json",
        )
        assert edited.spec.hard["requests.cpu"] == "999"  # the edit landed before the repair
        took = self._repaired(kube, drift_tenant, "ResourceQuota", QUOTA_NAME)
        print(f"edited quota restored in {took:.3f}s")

    def test_removed_pod_security_label_is_restored(
        self, kube: Kube, drift_tenant: dict[str, Any]
    ) -> None:
        edited = kube.res("v1", "Namespace").patch(
            name=namespace_for(drift_tenant["slug"]),
            body={"metadata": {"labels": {"pod-security.kubernetes.io/enforce": None}}},
            content_type="application/merge-patch+json",
        )
        assert "pod-security.kubernetes.io/enforce" not in edited.metadata.labels
        took = self._repaired(kube, drift_tenant, "Namespace", namespace_for(drift_tenant["slug"]))
        print(f"namespace label restored in {took:.3f}s")

    def test_widened_role_and_deleted_binding_are_restored(
        self, kube: Kube, drift_tenant: dict[str, Any]
    ) -> None:
        namespace = namespace_for(drift_tenant["slug"])
        roles = kube.res("rbac.authorization.k8s.io/v1", "Role")
        role = roles.get(name="sandlada-tenant-member", namespace=namespace).to_dict()
        role["rules"].append({"apiGroups": [""], "resources": ["resourcequotas"], "verbs": ["*"]})
        widened = roles.replace(body=role, namespace=namespace)
        assert len(widened.rules) == len(role["rules"])
        kube.res("rbac.authorization.k8s.io/v1", "RoleBinding").delete(
            name="sandlada-tenant-admin", namespace=namespace
        )
        self._repaired(kube, drift_tenant, "Role", "sandlada-tenant-member")
        self._repaired(kube, drift_tenant, "RoleBinding", "sandlada-tenant-admin")

    def test_deleted_namespace_comes_back_with_everything_in_it(
        self, kube: Kube, drift_tenant: dict[str, Any]
    ) -> None:
        namespace = namespace_for(drift_tenant["slug"])
        old_uid = kube.get("v1", "Namespace", namespace)["metadata"]["uid"]
        kube.res("v1", "Namespace").delete(name=namespace)
        wait_for(
            lambda: (
                (ns := kube.get("v1", "Namespace", namespace))
                and ns["metadata"]["uid"] != old_uid
                and ns["status"]["phase"] == "Active"
            ),
            "namespace re-created",
            timeout=90,
        )
        uid = kube.tenant(drift_tenant["slug"])["metadata"]["uid"]
        wait_for(lambda: all_as_built(kube, drift_tenant, uid) == [], "all children restored")


class TestSuspension:
    def test_suspend_stops_pods_keeps_data_and_resume_allows_pods(self, kube: Kube) -> None:
        slug = new_slug("susp")
        create_tenant(kube, slug)
        wait_ready(kube, slug)
        wait_quota_enforced(kube, slug)
        namespace = namespace_for(slug)
        kube.create(restricted_pod("work"), namespace=namespace)
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
            namespace=namespace,
        )
        tenants = kube.res(API_VERSION, "Tenant")
        patch = "application/merge-patch+json"
        tenants.patch(name=slug, body={"spec": {"suspended": True}}, content_type=patch)
        wait_ready(kube, slug, phase="Suspended")
        pods = kube.res("v1", "Pod")
        wait_for(lambda: not pods.get(namespace=namespace).items, "pods deleted")
        assert kube.get("v1", "PersistentVolumeClaim", "data", namespace) is not None
        wait_quota_enforced(kube, slug)
        status, body = _refused(kube, lambda: kube.create(restricted_pod("new"), namespace))
        assert status == 403 and "exceeded quota" in body

        tenants.patch(name=slug, body={"spec": {"suspended": False}}, content_type=patch)
        wait_ready(kube, slug)
        wait_quota_enforced(kube, slug)
        kube.create(restricted_pod("again"), namespace=namespace)


class TestDeletion:
    def test_finalizer_removes_namespace_and_reports_progress(self, kube: Kube) -> None:
        slug = new_slug("del")
        create_tenant(kube, slug)
        wait_ready(kube, slug)
        namespace = namespace_for(slug)
        # A finalizer of our own holds the namespace in Terminating so progress is visible.
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "hold", "finalizers": ["sandlada.se/e2e-hold"]},
            },
            namespace=namespace,
        )
        kube.res(API_VERSION, "Tenant").delete(name=slug)

        def deleting_with_progress() -> Any:
            tenant = kube.tenant(slug)
            if not tenant or (tenant.get("status") or {}).get("phase") != "Deleting":
                return None
            message = tenant["status"]["conditions"][0]["message"]
            return "sandlada.se/e2e-hold" in message and message

        message = wait_for(deleting_with_progress, "Deleting with the blocking finalizer named")
        assert namespace in message
        kube.res("v1", "ConfigMap").patch(
            name="hold",
            namespace=namespace,
            body={"metadata": {"finalizers": None}},
            content_type="application/merge-patch+json",
        )
        wait_for(lambda: kube.get("v1", "Namespace", namespace) is None, "namespace gone", 60)
        wait_for(lambda: kube.tenant(slug) is None, "tenant gone", 30)


class TestRestart:
    def test_operator_killed_mid_reconcile_converges_after_restart(
        self, kube: Kube, operator: OperatorProcess
    ) -> None:
        slugs = [new_slug("crash") for _ in range(8)]
        specs = {slug: create_tenant(kube, slug) for slug in slugs}
        # Kill as soon as the first namespace exists: that reconcile is half done, the
        # others have not started or are in flight.
        wait_for(
            lambda: any(kube.get("v1", "Namespace", namespace_for(s)) for s in slugs),
            "first tenant namespace",
        )
        operator.kill()
        unfinished = [s for s in slugs if not is_ready(kube.tenant(s))]
        assert unfinished, "every tenant finished before the kill; the test proved nothing"
        operator.start()
        for slug in slugs:
            tenant = wait_ready(kube, slug, timeout=60)
            assert all_as_built(kube, specs[slug], tenant["metadata"]["uid"]) == []


@pytest.fixture(scope="module")
def tenants(kube: Kube) -> tuple[str, str]:
    """Two Ready tenants: A with one GPU, B with none."""
    a, b = new_slug("iso-a"), new_slug("iso-b")
    create_tenant(kube, a, quota={"gpus": 1, "gpuModel": "NVIDIA-A100-SXM4-80GB"})
    create_tenant(kube, b)
    for slug in (a, b):
        wait_ready(kube, slug)
        wait_quota_enforced(kube, slug)
    return a, b


@pytest.fixture(scope="module")
def admin(cluster: Any, tenants: tuple[str, str]) -> Kube:
    """Tenant A's admin, as the apiserver sees a Keycloak user in t-<a>-admins."""
    return Kube(cluster.kubeconfig, user="anna@kiruna.se", group=tenant_group(tenants[0], "admin"))


@pytest.fixture(scope="module")
def member(cluster: Any, tenants: tuple[str, str]) -> Kube:
    """Tenant A's member (t-<a>-members)."""
    return Kube(cluster.kubeconfig, user="max@kiruna.se", group=tenant_group(tenants[0], "member"))


class TestIsolation:
    """Multi-Tenancy Benchmarks checks as the tenant's own admins and members."""

    @pytest.mark.parametrize(
        ("api_version", "kind"),
        [
            ("v1", "Namespace"),
            ("v1", "Node"),
            ("v1", "PersistentVolume"),
            ("rbac.authorization.k8s.io/v1", "ClusterRole"),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            (API_VERSION, "Tenant"),
        ],
    )
    def test_no_cluster_scoped_access(self, admin: Kube, api_version: str, kind: str) -> None:
        assert admin.status_of(lambda: admin.res(api_version, kind).get()) == 403

    def test_cannot_create_namespaces_or_cluster_bindings(self, admin: Kube) -> None:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": new_slug()}}
        assert admin.status_of(lambda: admin.create(namespace)) == 403
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": new_slug()},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "User", "name": "anna@kiruna.se"}],
        }
        assert admin.status_of(lambda: admin.create(binding)) == 403

    def test_can_read_but_not_modify_own_quota_and_limits(
        self, admin: Kube, tenants: tuple[str, str]
    ) -> None:
        namespace = namespace_for(tenants[0])
        quotas = admin.res("v1", "ResourceQuota")
        assert admin.status_of(lambda: quotas.get(name=QUOTA_NAME, namespace=namespace)) == 200
        patch = {"spec": {"hard": {"requests.nvidia.com/gpu": "8"}}}
        merge = "application/merge-patch+json"
        assert (
            admin.status_of(
                lambda: quotas.patch(
                    name=QUOTA_NAME, namespace=namespace, body=patch, content_type=merge
                )
            )
            == 403
        )
        assert admin.status_of(lambda: quotas.delete(name=QUOTA_NAME, namespace=namespace)) == 403
        extra = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "more"}}
        assert admin.status_of(lambda: admin.create(extra, namespace)) == 403
        limits = admin.res("v1", "LimitRange")
        assert (
            admin.status_of(lambda: limits.delete(name="sandlada-limits", namespace=namespace))
            == 403
        )

    def test_cannot_see_or_touch_another_tenant(
        self, admin: Kube, tenants: tuple[str, str]
    ) -> None:
        own, other = (namespace_for(s) for s in tenants)
        pods = admin.res("v1", "Pod")
        assert admin.status_of(lambda: pods.get(namespace=own)) == 200
        assert admin.status_of(lambda: pods.get(namespace=other)) == 403
        assert admin.status_of(lambda: admin.res("v1", "Secret").get(namespace=other)) == 403
        configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
        assert admin.status_of(lambda: admin.create(configmap, other)) == 403

    def test_compliant_pod_is_admitted(self, admin: Kube, tenants: tuple[str, str]) -> None:
        admin.create(restricted_pod("ok"), namespace_for(tenants[0]))

    @pytest.mark.parametrize(
        "variant",
        [
            "privileged",
            "capabilities",
            "root",
            "privilege-escalation",
            "host-path",
            "host-network",
            "host-port",
            "host-pid",
            "host-ipc",
        ],
    )
    def test_insecure_pods_are_refused(
        self, admin: Kube, tenants: tuple[str, str], variant: str
    ) -> None:
        pod = restricted_pod(f"bad-{variant}")
        spec = pod["spec"]
        container = spec["containers"][0]
        security = container["securityContext"]
        match variant:
            case "privileged":
                # privileged with allowPrivilegeEscalation false is invalid (422) before any
                # policy gets to see it; leave the escalation flag unset.
                security["privileged"] = True
                del security["allowPrivilegeEscalation"]
            case "capabilities":
                security["capabilities"] = {"drop": ["ALL"], "add": ["NET_ADMIN"]}
            case "root":
                spec["securityContext"] = {
                    **spec["securityContext"],
                    "runAsNonRoot": False,
                    "runAsUser": 0,
                }
            case "privilege-escalation":
                security["allowPrivilegeEscalation"] = True
            case "host-path":
                spec["volumes"] = [{"name": "host", "hostPath": {"path": "/etc"}}]
                container["volumeMounts"] = [{"name": "host", "mountPath": "/host"}]
            case "host-network":
                spec["hostNetwork"] = True
            case "host-port":
                container["ports"] = [{"containerPort": 8080, "hostPort": 8080}]
            case "host-pid":
                spec["hostPID"] = True
            case "host-ipc":
                spec["hostIPC"] = True
        status, body = _refused(admin, lambda: admin.create(pod, namespace_for(tenants[0])))
        assert status == 403
        assert "PodSecurity" in body

    def test_nodeport_and_loadbalancer_services_are_refused(
        self, admin: Kube, tenants: tuple[str, str]
    ) -> None:
        namespace = namespace_for(tenants[0])

        def service(name: str, type_: str) -> dict[str, Any]:
            return {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name},
                "spec": {"type": type_, "ports": [{"port": 80}], "selector": {"a": "b"}},
            }

        for type_ in ("NodePort", "LoadBalancer"):
            status, body = _refused(
                admin, lambda t=type_: admin.create(service(t.lower(), t), namespace)
            )
            assert status == 403 and "exceeded quota" in body
        admin.create(service("internal", "ClusterIP"), namespace)

    def test_quota_carries_every_key(self, admin: Kube, tenants: tuple[str, str]) -> None:
        quota = admin.get("v1", "ResourceQuota", QUOTA_NAME, namespace_for(tenants[0]))
        hard = quota["spec"]["hard"]
        for key in (
            "requests.cpu",
            "requests.memory",
            "requests.ephemeral-storage",
            "requests.storage",
            "requests.nvidia.com/gpu",
            "pods",
            "services",
            "replicationcontrollers",
            "resourcequotas",
            "secrets",
            "configmaps",
            "persistentvolumeclaims",
        ):
            assert key in hard, key
        assert hard["services.nodeports"] == "0"
        assert hard["services.loadbalancers"] == "0"

    def test_cannot_escalate_or_bind_cluster_admin(
        self, admin: Kube, tenants: tuple[str, str]
    ) -> None:
        namespace = namespace_for(tenants[0])
        greedy = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "greedy"},
            "rules": [{"apiGroups": [""], "resources": ["resourcequotas"], "verbs": ["update"]}],
        }
        assert admin.status_of(lambda: admin.create(greedy, namespace)) == 403
        for cluster_role in ("cluster-admin", "admin", "edit"):
            binding = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"to-{cluster_role}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": cluster_role,
                },
                "subjects": [{"kind": "User", "name": "anna@kiruna.se"}],
            }
            assert admin.status_of(lambda b=binding: admin.create(b, namespace)) == 403
        roles = admin.res("rbac.authorization.k8s.io/v1", "Role")
        own = roles.get(name="sandlada-tenant-admin", namespace=namespace).to_dict()
        widened = copy.deepcopy(own)
        widened["rules"].append({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})
        assert admin.status_of(lambda: roles.replace(body=widened, namespace=namespace)) == 403

    def test_can_delegate_and_shape_network_policy_in_own_namespace(
        self, admin: Kube, tenants: tuple[str, str]
    ) -> None:
        namespace = namespace_for(tenants[0])
        admin.create(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "pod-reader"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
            },
            namespace,
        )
        admin.create(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "pod-reader"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "pod-reader",
                },
                "subjects": [{"kind": "User", "name": "guest@kiruna.se"}],
            },
            namespace,
        )
        admin.create(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "own-policy"},
                "spec": {"podSelector": {"matchLabels": {"app": "x"}}, "policyTypes": ["Ingress"]},
            },
            namespace,
        )

    def test_members_cannot_manage_rbac_or_policies(
        self, member: Kube, tenants: tuple[str, str]
    ) -> None:
        namespace = namespace_for(tenants[0])
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "member-role"},
            "rules": [],
        }
        assert member.status_of(lambda: member.create(role, namespace)) == 403
        policy = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "member-policy"},
            "spec": {"podSelector": {}},
        }
        assert member.status_of(lambda: member.create(policy, namespace)) == 403
        member.create(restricted_pod("member-pod"), namespace)

    def test_gpu_quota_is_enforced_and_usage_reported(
        self, kube: Kube, admin: Kube, tenants: tuple[str, str]
    ) -> None:
        own, other = (namespace_for(s) for s in tenants)
        status, body = _refused(admin, lambda: admin.create(restricted_pod("gpu2", 2), own))
        assert status == 403 and "exceeded quota" in body
        admin.create(restricted_pod("gpu1", 1), own)
        status, body = _refused(admin, lambda: admin.create(restricted_pod("gpu1b", 1), own))
        assert status == 403 and "exceeded quota" in body
        wait_for(
            lambda: kube.tenant(tenants[0])["status"].get("gpusUsed") == 1,
            "gpusUsed = 1 in the Tenant status",
        )
        status, body = _refused(kube, lambda: kube.create(restricted_pod("gpu-b", 1), other))
        assert status == 403 and "exceeded quota" in body
