"""The Helm chart on the real local cluster: install, RBAC that works, upgrade, uninstall.

What is real: the apiserver (schema, defaulting, Pod Security admission `restricted` on the
release namespace, RBAC including the escalation check), the controller-manager (Deployments,
ReplicaSets, the Job controller, garbage collection) and helm itself. What is not: kwok
"runs" the pods without containers, so the image is never pulled, the probes never run and the
migration Job "completes" because kwok finishes Job-owned pods, not because `sandlada db
upgrade` ran (its database Secret holds a URL nothing listens on). The chart's RBAC is proven
by making the operators' and control plane's own API calls as the chart's ServiceAccounts.

CRDs: the cluster is shared, and other tests (or `sandlada dev up`) may have installed the
Tenant CRD already. Helm installs crds/ only when absent and never deletes them, so an
existing CRD is simply kept (not adopted, not changed), and uninstall leaves the CRDs in place,
which is what the chart documents. These tests never delete a CRD: that would delete every
Tenant of every other test on the cluster.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from infra.cluster.launcher import ClusterInfo
from operators.storage import KubernetesStorage
from tenants.builders import build_tenant_objects
from tenants.names import namespace_for
from tenants.resource import TenantSpec
from tests.fixtures.cluster import api_client, wait_until
from tests.fixtures.helm import CHART, REPO, run_helm

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

SECRETS = {
    # A URL nothing listens on: under kwok the migration container never runs (see above).
    "sandlada-database": {"url": "postgresql+psycopg://sandlada:unused@db.invalid:5432/sandlada"},
    "sandlada-keycloak": {"client-secret": "not-a-real-secret"},
    "sandlada-portal": {"client-secret": "not-a-real-secret", "session-secret": "not-real"},
}
CRDS = {path.name.removesuffix(".yaml") for path in (REPO / "tenants" / "crds").glob("*.yaml")}


class JobWatch:
    """Records every migration Job that succeeded, even though helm deletes it right after."""

    def __init__(self, cluster: ClusterInfo, namespace: str) -> None:
        self.succeeded: set[str] = set()
        # A client of its own: closing it is what ends the watch's open response.
        self._api = api_client(cluster)
        self._batch: Any = client.BatchV1Api(self._api)
        self._watch: Any = watch.Watch()  # type: ignore[no-untyped-call]
        self._namespace = namespace
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stopping = threading.Event()
        self._resource_version = ""
        self.error: Exception | None = None

    def _run(self) -> None:
        try:
            for event in self._watch.stream(
                self._batch.list_namespaced_job,
                self._namespace,
                label_selector="app.kubernetes.io/component=migrations",
                resource_version=self._resource_version,
                timeout_seconds=300,
            ):
                job = event["object"]
                # The DELETED event carries the Job's final state, so a Job deleted by the
                # hook-succeeded policy is still counted.
                if (job.status.succeeded or 0) >= 1:
                    self.succeeded.add(job.metadata.uid)
        except (urllib3.exceptions.HTTPError, OSError, ApiException) as exc:
            if not self._stopping.is_set():
                self.error = exc
                raise

    def __enter__(self) -> JobWatch:
        # Watch from a list taken now, so no Job created after this point can be missed.
        listing = self._batch.list_namespaced_job(self._namespace)
        self._resource_version = listing.metadata.resource_version
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._watch.stop()
        self._api.close()  # type: ignore[no-untyped-call]
        self._thread.join(timeout=10)


@dataclass
class Release:
    name: str
    namespace: str
    cluster: ClusterInfo
    api: Any
    install_output: str = ""
    migrations_at_install: int = 0
    log: list[str] = field(default_factory=list)

    def helm(self, *args: str, check: bool = True) -> str:
        result = run_helm(*args, "--namespace", self.namespace, kubeconfig=self.cluster.kubeconfig)
        self.log.append(f"helm {' '.join(args)} -> {result.returncode}\n{result.stderr}")
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout


def _create_namespace(api: Any, name: str) -> None:
    core: Any = client.CoreV1Api(api)
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    core.create_namespace({"metadata": {"name": name, "labels": labels}})
    for secret, data in SECRETS.items():
        core.create_namespaced_secret(name, {"metadata": {"name": secret}, "stringData": data})


def _delete_namespace(api: Any, name: str) -> None:
    try:
        client.CoreV1Api(api).delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def _install(release: Release) -> None:
    with JobWatch(release.cluster, release.namespace) as jobs:
        release.install_output = release.helm(
            "install", release.name, str(CHART), "--wait", "--timeout", "4m"
        )
        wait_until(
            lambda: jobs.succeeded or jobs.error,
            timeout=30,
            what="the migration Job to succeed",
        )
        assert jobs.error is None, f"the Job watch failed: {jobs.error!r}"
    release.migrations_at_install = len(jobs.succeeded)


@pytest.fixture
def release(cluster: ClusterInfo) -> Iterator[Release]:
    """A fresh release name in a fresh namespace enforcing Pod Security `restricted`."""
    suffix = uuid.uuid4().hex[:6]
    api = api_client(cluster)
    rel = Release(name=f"e2e-{suffix}", namespace=f"helm-{suffix}", cluster=cluster, api=api)
    _create_namespace(api, rel.namespace)
    yield rel
    rel.helm("uninstall", rel.name, "--wait", check=False)
    _delete_namespace(api, rel.namespace)


def _available(apps: Any, namespace: str, name: str, replicas: int) -> bool:
    status = apps.read_namespaced_deployment(name, namespace).status
    return (status.available_replicas or 0) == replicas and (
        status.updated_replicas or 0
    ) == replicas


def _crd_established(ext: Any, name: str) -> bool:
    crd = ext.read_custom_resource_definition(name)
    return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])


def _replica_sets(apps: Any, namespace: str, component: str) -> list[Any]:
    items: list[Any] = apps.list_namespaced_replica_set(
        namespace, label_selector=f"app.kubernetes.io/component={component}"
    ).items
    return items


def test_install_upgrade_uninstall(release: Release) -> None:
    apps: Any = client.AppsV1Api(release.api)
    ext: Any = client.ApiextensionsV1Api(release.api)
    core: Any = client.CoreV1Api(release.api)
    batch: Any = client.BatchV1Api(release.api)
    control_plane = f"{release.name}-sandlada-controlplane"
    operator = f"{release.name}-sandlada-operator"
    metering = f"{release.name}-sandlada-metering"

    _install(release)
    assert "STATUS: deployed" in release.install_output
    assert release.migrations_at_install == 1
    for crd in CRDS:
        assert _crd_established(ext, crd), crd
    # --wait already waited for readiness; availability (minReadySeconds 0) follows at once.
    wait_until(
        lambda: all(
            _available(apps, release.namespace, name, 1)
            for name in (control_plane, operator, metering)
        ),
        timeout=30,
        what="the three Deployments available",
    )
    pods = core.list_namespaced_pod(release.namespace).items
    assert {pod.spec.service_account_name for pod in pods} == {control_plane, operator, metering}
    assert all(pod.spec.security_context.run_as_non_root for pod in pods)
    assert core.read_namespaced_service(control_plane, release.namespace).spec.ports[0].port == 80
    assert not apps.list_namespaced_stateful_set(release.namespace).items
    (control_rs,) = _replica_sets(apps, release.namespace, "controlplane")

    # Changed values roll the control plane (new ReplicaSet, revision 2), run the migration hook
    # again, and leave the operator (whose template did not change) alone.
    with JobWatch(release.cluster, release.namespace) as jobs:
        release.helm(
            "upgrade",
            release.name,
            str(CHART),
            "--wait",
            "--timeout",
            "4m",
            "--reuse-values",
            "--set",
            "controlPlane.replicas=2",
            "--set",
            "controlPlane.env.SANDLADA_TENANT_RETENTION_DAYS=7",
        )
        wait_until(
            lambda: jobs.succeeded or jobs.error,
            timeout=30,
            what="the upgrade's migration Job",
        )
        assert jobs.error is None, f"the Job watch failed: {jobs.error!r}"
    # helm returns once the new ReplicaSet is ready; the old one's pod may still be going.
    wait_until(
        lambda: _available(apps, release.namespace, control_plane, 2),
        timeout=60,
        what="2 available control-plane pods, all updated",
    )
    deployment = apps.read_namespaced_deployment(control_plane, release.namespace)
    assert deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    env = {e.name: e.value for e in deployment.spec.template.spec.containers[0].env}
    assert env["SANDLADA_TENANT_RETENTION_DAYS"] == "7"
    replica_sets = _replica_sets(apps, release.namespace, "controlplane")
    assert len(replica_sets) == 2
    new_rs = next(rs for rs in replica_sets if rs.metadata.uid != control_rs.metadata.uid)
    assert new_rs.status.ready_replicas == 2
    wait_until(
        lambda: all(
            (rs.status.replicas or 0) == 0
            for rs in _replica_sets(apps, release.namespace, "controlplane")
            if rs.metadata.uid == control_rs.metadata.uid
        ),
        timeout=60,
        what="the old control-plane ReplicaSet scaled to 0",
    )
    operator_deployment = apps.read_namespaced_deployment(operator, release.namespace)
    assert operator_deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    history = release.helm("history", release.name, "--output", "json")
    assert '"revision":2' in history.replace(" ", "")

    # Uninstall: everything the release made is gone but the CRDs (documented: Helm never
    # deletes CRDs, and deleting them would delete every Tenant and Notebook).
    release.helm("uninstall", release.name, "--wait")
    selector = f"app.kubernetes.io/instance={release.name}"
    rbac: Any = client.RbacAuthorizationV1Api(release.api)
    policy: Any = client.PolicyV1Api(release.api)
    net: Any = client.NetworkingV1Api(release.api)

    def leftovers() -> list[str]:
        ns = release.namespace
        return [
            *(f"Deployment/{o.metadata.name}" for o in apps.list_namespaced_deployment(ns).items),
            *(f"ReplicaSet/{o.metadata.name}" for o in apps.list_namespaced_replica_set(ns).items),
            *(f"Pod/{o.metadata.name}" for o in core.list_namespaced_pod(ns).items),
            *(f"Job/{o.metadata.name}" for o in batch.list_namespaced_job(ns).items),
            *(f"Service/{o.metadata.name}" for o in core.list_namespaced_service(ns).items),
            *(
                f"ConfigMap/{o.metadata.name}"
                for o in core.list_namespaced_config_map(ns).items
                if o.metadata.name != "kube-root-ca.crt"
            ),
            *(
                f"ServiceAccount/{o.metadata.name}"
                for o in core.list_namespaced_service_account(ns).items
                if o.metadata.name != "default"
            ),
            *(
                f"Secret/{o.metadata.name}"
                for o in core.list_namespaced_secret(ns).items
                if o.metadata.name not in SECRETS  # ours, created before the install
            ),
            *(
                f"PodDisruptionBudget/{o.metadata.name}"
                for o in policy.list_namespaced_pod_disruption_budget(ns).items
            ),
            *(
                f"NetworkPolicy/{o.metadata.name}"
                for o in net.list_namespaced_network_policy(ns).items
            ),
            *(
                f"ClusterRole/{o.metadata.name}"
                for o in rbac.list_cluster_role(label_selector=selector).items
            ),
            *(
                f"ClusterRoleBinding/{o.metadata.name}"
                for o in rbac.list_cluster_role_binding(label_selector=selector).items
            ),
        ]

    wait_until(
        lambda: not leftovers(), timeout=60, what=f"nothing left of the release: {leftovers()}"
    )
    for crd in CRDS:
        assert _crd_established(ext, crd), f"{crd} must stay after uninstall"


@pytest.fixture
def installed(release: Release) -> Release:
    _install(release)
    return release


def _service_account(release: Release, component: str) -> str:
    return f"system:serviceaccount:{release.namespace}:{release.name}-sandlada-{component}"


def _as(release: Release, component: str) -> Any:
    """An API client that is the chart's ServiceAccount of ``component`` (impersonation)."""
    return api_client(release.cluster, impersonate_user=_service_account(release, component))


def _authz(release: Release) -> Any:
    return client.AuthorizationV1Api(release.api)


def _allowed(
    release: Release, component: str, verb: str, group: str, resource: str, **extra: str
) -> bool:
    """SubjectAccessReview: may the chart's ServiceAccount of ``component`` do this?"""
    review: Any = _authz(release).create_subject_access_review(
        {
            "spec": {
                "user": _service_account(release, component),
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{release.namespace}"],
                "resourceAttributes": {"verb": verb, "group": group, "resource": resource, **extra},
            }
        }
    )
    return bool(review.status.allowed)


def test_operator_service_account_provisions_a_tenant_and_nothing_more(installed: Release) -> None:
    # The Tenant operator's own storage layer, making its real calls as the chart's operator
    # ServiceAccount: every child object of a tenant, pruning, suspension, deletion.
    storage = KubernetesStorage(_as(installed, "operator"))
    slug = f"helm-rbac-{uuid.uuid4().hex[:6]}"
    spec = TenantSpec.model_validate(
        {
            "slug": slug,
            "agency": {"name": "Kiruna kommun", "organisationNumber": "2120002627"},
            "quota": {"cpu": 2, "memoryGib": 4, "storageGib": 10},
            "dataClassification": "internal",
            "sharedServices": ["mlflow"],
        }
    )
    namespace = namespace_for(slug)
    try:
        for obj in build_tenant_objects(spec).all():
            storage.apply(obj)
        assert storage.list_network_policy_names(namespace, f"sandlada.se/tenant={slug}")
        storage.delete_pods(namespace)
        rbac: Any = client.RbacAuthorizationV1Api(_as(installed, "operator"))
        # escalate/bind cover only the two tenant Roles: any other Role granting what the
        # operator does not hold is refused by the apiserver's escalation check.
        with pytest.raises(ApiException) as refused:
            rbac.create_namespaced_role(
                namespace,
                {
                    "metadata": {"name": "sneaky"},
                    "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}],
                },
            )
        assert refused.value.status == 403
        with pytest.raises(ApiException) as refused:
            rbac.create_namespaced_role_binding(
                namespace,
                {
                    "metadata": {"name": "sneaky"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "cluster-admin",
                    },
                    "subjects": [
                        {
                            "kind": "Group",
                            "name": "someone",
                            "apiGroup": "rbac.authorization.k8s.io",
                        }
                    ],
                },
            )
        assert refused.value.status == 403
    finally:
        wait_until(
            lambda: storage.delete_namespace(namespace) is None, timeout=60, what="namespace gone"
        )

    # kopf's watches and patches, and the Notebook operator and culler (SubjectAccessReview).
    for verb, group, resource in [
        ("watch", "sandlada.se", "tenants"),
        ("patch", "sandlada.se", "tenants"),
        ("watch", "sandlada.se", "notebooks"),
        ("patch", "sandlada.se", "notebooks"),
        ("create", "", "events"),
        ("watch", "apiextensions.k8s.io", "customresourcedefinitions"),
        ("create", "", "pods"),
        ("watch", "", "pods"),
        ("create", "", "persistentvolumeclaims"),
        ("create", "", "secrets"),
        ("get", "", "secrets"),
        ("patch", "", "secrets"),
        ("patch", "", "services"),
    ]:
        assert _allowed(installed, "operator", verb, group, resource, namespace="t-x"), (
            verb,
            resource,
        )
    for verb, group, resource in [
        ("list", "", "secrets"),
        ("delete", "", "secrets"),
        ("create", "apps", "deployments"),
        ("delete", "sandlada.se", "tenants"),
        ("create", "rbac.authorization.k8s.io", "clusterroles"),
        ("create", "apiextensions.k8s.io", "customresourcedefinitions"),
    ]:
        assert not _allowed(installed, "operator", verb, group, resource, namespace="t-x"), (
            verb,
            resource,
        )


def test_control_plane_service_account_manages_tenants_only(installed: Release) -> None:
    api = _as(installed, "controlplane")
    custom: Any = client.CustomObjectsApi(api)
    slug = f"helm-rbac-{uuid.uuid4().hex[:6]}"
    body = {
        "apiVersion": "sandlada.se/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": slug},
        "spec": {
            "slug": slug,
            "agency": {"name": "Kiruna kommun", "organisationNumber": "2120002627"},
            "quota": {"cpu": 1, "memoryGib": 1, "storageGib": 1},
            "dataClassification": "internal",
        },
    }
    # Server-side apply as the control plane does it, as a dry run: the apiserver authorizes
    # (create + patch) and validates against the CRD, and no operator gets a Tenant to work on.
    custom.patch_cluster_custom_object(
        "sandlada.se",
        "v1alpha1",
        "tenants",
        slug,
        body,
        field_manager="sandlada-controlplane",
        force=True,
        dry_run="All",
        _content_type="application/apply-patch+yaml",
    )
    custom.list_cluster_custom_object("sandlada.se", "v1alpha1", "tenants")
    client.CoreV1Api(api).list_node()
    for verb, group, resource in [
        ("watch", "sandlada.se", "tenants"),
        ("delete", "sandlada.se", "tenants"),
        ("create", "sandlada.se", "notebooks"),
        ("update", "sandlada.se", "notebooks"),
        ("list", "", "pods"),
        ("list", "", "persistentvolumeclaims"),
        ("get", "", "resourcequotas"),
    ]:
        assert _allowed(installed, "controlplane", verb, group, resource), (verb, resource)
    # The metering collector reads, and only reads, pods, claims and nodes.
    for verb, group, resource in [
        ("watch", "", "pods"),
        ("watch", "", "persistentvolumeclaims"),
        ("get", "", "nodes"),
    ]:
        assert _allowed(installed, "metering", verb, group, resource), (verb, resource)
    for verb, group, resource in [
        ("delete", "", "pods"),
        ("get", "", "secrets"),
        ("get", "sandlada.se", "tenants"),
    ]:
        assert not _allowed(installed, "metering", verb, group, resource), (verb, resource)
    for verb, group, resource in [
        ("patch", "sandlada.se", "tenants/status"),
        ("get", "", "secrets"),
        ("create", "", "namespaces"),
        ("create", "", "pods"),
        ("delete", "", "pods"),
    ]:
        assert not _allowed(installed, "controlplane", verb, group, resource, namespace="t-x"), (
            verb,
            resource,
        )
