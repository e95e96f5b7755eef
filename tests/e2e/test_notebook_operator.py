"""The Notebook operator end to end: a real operator process, the local apiserver, MLflow.

One operator (Tenant + Notebook handlers, MLflow configured against the ``mlflow_server``
fixture) serves the module. A Tenant with one L4 GPU gets a GPU notebook that runs on an L4
node; a second GPU notebook is refused by the tenant's quota and says so; stopping and deleting
keep the home volume; the tenant namespace's Pod Security ``restricted`` admits the pod (and
refuses a weakened copy, so the check is live); and the tenant's Secret ``mlflow-tracking``
logs a run in its MLflow workspace. Every wait polls a condition with a deadline.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from infra.mlflow.server import MlflowServer
from operators.testing import OperatorProcess
from tenants.catalog import Profile, load_catalog
from tenants.names import namespace_for
from tenants.notebook import PLURAL, notebook_body
from tenants.resource import GROUP, VERSION, TenantSpec, tenant_body
from tests.fixtures.cluster import api_client, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

TIMEOUT = 60.0
L4 = "NVIDIA-L4"


class Kube:
    """The typed clients this module needs, as the cluster admin."""

    def __init__(self, api: client.ApiClient) -> None:
        # Any: the client's stubs make every field Optional; a test reads what it asserts.
        self.core: Any = client.CoreV1Api(api)
        self.custom: Any = client.CustomObjectsApi(api)

    def notebook(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def phase(self, namespace: str, name: str) -> str | None:
        notebook = self.notebook(namespace, name) or {}
        return (notebook.get("status") or {}).get("phase")

    def pod(self, namespace: str, name: str) -> Any:
        try:
            return self.core.read_namespaced_pod(f"nb-{name}", namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def exists(self, read: Any, name: str, namespace: str) -> bool:
        try:
            read(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True


@pytest.fixture(scope="module")
def operator(
    cluster: Any,
    mlflow_server: MlflowServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    settings = {
        "SANDLADA_OPERATOR_MLFLOW_URL": mlflow_server.url,
        "SANDLADA_OPERATOR_MLFLOW_ADMIN_USERNAME": mlflow_server.admin_username,
        "SANDLADA_OPERATOR_MLFLOW_ADMIN_PASSWORD": mlflow_server.admin_password,
    }
    with pytest.MonkeyPatch.context() as patch:
        # OperatorProcess passes the test process's environment on to the operator.
        for key, value in settings.items():
            patch.setenv(key, value)
        process = OperatorProcess(cluster.kubeconfig, log)
        try:
            # Generous: the shared machine may be busy with other suites' operators.
            process.start(timeout=240)
        except BaseException:
            process.kill()
            raise
    yield process
    process.stop()


@pytest.fixture(scope="module")
def kube(cluster: Any, operator: OperatorProcess) -> Kube:
    return Kube(api_client(cluster))


@pytest.fixture(scope="module")
def tenant(kube: Kube) -> Iterator[str]:
    """A Ready tenant with one L4 GPU (and room for two GPU notebooks otherwise)."""
    slug = f"nb-e2e-{uuid.uuid4().hex[:6]}"
    spec = TenantSpec.model_validate(
        {
            "slug": slug,
            "agency": {"name": "Kiruna kommun", "organisationNumber": "2120002627"},
            "quota": {
                "gpus": 1,
                "gpuModel": L4,
                "cpu": 20,
                "memoryGib": 80,
                "storageGib": 200,
            },
            "dataClassification": "internal",
            "sharedServices": ["mlflow"],
        }
    )
    kube.custom.create_cluster_custom_object(GROUP, VERSION, "tenants", tenant_body(spec))

    def ready() -> bool:
        body = kube.custom.get_cluster_custom_object(GROUP, VERSION, "tenants", slug)
        return (body.get("status") or {}).get("phase") == "Ready"

    wait_until(ready, TIMEOUT, f"tenant {slug} Ready")
    yield slug
    namespace = namespace_for(slug)
    with contextlib.suppress(ApiException):
        kube.custom.delete_cluster_custom_object(GROUP, VERSION, "tenants", slug)
    wait_until(
        lambda: (
            not kube.exists(lambda name, _ns: kube.core.read_namespace(name), namespace, namespace)
        ),
        120,
        f"namespace {namespace} gone",
    )


def _profile(slug: str) -> Profile:
    profile = load_catalog().get(slug)
    assert profile is not None
    return profile


def _launch(kube: Kube, namespace: str, name: str, profile: str) -> None:
    body = notebook_body(
        namespace, name, _profile(profile), "e2e-sub", "E2E Användare", load_catalog().defaults
    )
    kube.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def _wait_phase(kube: Kube, namespace: str, name: str, phase: str) -> dict[str, Any]:
    """The notebook once its phase is ``phase`` and (for Running) its Ready condition True."""

    def reached() -> dict[str, Any] | None:
        notebook = kube.notebook(namespace, name) or {}
        status = notebook.get("status") or {}
        if status.get("phase") != phase:
            return None
        ready: dict[str, Any] = next(
            (c for c in status.get("conditions") or [] if c["type"] == "Ready"), {}
        )
        if (ready.get("status") == "True") != (phase == "Running"):
            return None
        return notebook

    found: dict[str, Any] = wait_until(reached, TIMEOUT, f"notebook {name} {phase}")
    return found


def test_gpu_notebook_runs_on_a_node_of_its_gpu_model(kube: Kube, tenant: str) -> None:
    namespace = namespace_for(tenant)
    _launch(kube, namespace, "gpu", "gpu-l4")
    notebook = _wait_phase(kube, namespace, "gpu", "Running")
    status = notebook["status"]
    assert status["url"].endswith(f"/notebooks/{namespace}/gpu/")
    assert status["internalUrl"] == (
        f"http://nb-gpu.{namespace}.svc:8888/notebooks/{namespace}/gpu/"
    )
    assert status["startedAt"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Running")

    pod = kube.pod(namespace, "gpu")
    assert pod is not None and pod.spec.node_name
    node = kube.core.read_node(pod.spec.node_name)
    assert node.metadata.labels["nvidia.com/gpu.product"] == L4
    assert pod.spec.containers[0].resources.limits["nvidia.com/gpu"] == "1"
    owners = [(o.kind, o.name) for o in pod.metadata.owner_references or []]
    assert owners == [("Notebook", "gpu")]
    service = kube.core.read_namespaced_service("nb-gpu", namespace)
    assert [o.kind for o in service.metadata.owner_references or []] == ["Notebook"]
    secret = kube.core.read_namespaced_secret("nb-gpu-token", namespace)
    assert len(base64.b64decode(secret.data["token"])) >= 32
    claim = kube.core.read_namespaced_persistent_volume_claim("home-gpu", namespace)
    assert not claim.metadata.owner_references  # survives the notebook
    wait_until(
        lambda: (
            kube.core.read_namespaced_persistent_volume_claim("home-gpu", namespace).status.phase
            == "Bound"
        ),
        TIMEOUT,
        "home volume bound",
    )


def test_over_quota_notebook_fails_with_the_apiservers_quota_message(
    kube: Kube, tenant: str
) -> None:
    namespace = namespace_for(tenant)
    _wait_phase(kube, namespace, "gpu", "Running")  # holds the tenant's only GPU
    _launch(kube, namespace, "second", "gpu-l4")
    notebook = _wait_phase(kube, namespace, "second", "Failed")
    message = notebook["status"]["message"]
    assert "exceeded quota" in message
    assert "nvidia.com/gpu" in message
    ready = next(c for c in notebook["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "QuotaExceeded"
    assert kube.pod(namespace, "second") is None
    kube.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "second")


def test_pod_security_restricted_admits_the_notebook_and_refuses_a_weaker_pod(
    kube: Kube, tenant: str
) -> None:
    namespace = namespace_for(tenant)
    labels = kube.core.read_namespace(namespace).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    _wait_phase(kube, namespace, "gpu", "Running")
    pod = kube.pod(namespace, "gpu")
    assert pod is not None
    # The same pod without "drop ALL" is refused by the same admission: the check is live.
    weaker = kube.core.api_client.sanitize_for_serialization(pod)
    weaker["metadata"] = {"name": "weaker", "namespace": namespace}
    weaker["spec"].pop("nodeName", None)
    weaker["spec"]["containers"][0]["securityContext"].pop("capabilities")
    weaker.pop("status", None)
    with pytest.raises(ApiException) as refused:
        kube.core.create_namespaced_pod(namespace, weaker, dry_run="All")
    assert refused.value.status == 403
    assert "violates PodSecurity" in str(refused.value.body)


def test_stop_removes_the_pod_keeps_the_home_volume_and_start_again(
    kube: Kube, tenant: str
) -> None:
    namespace = namespace_for(tenant)
    _wait_phase(kube, namespace, "gpu", "Running")
    kube.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "gpu", {"spec": {"stopped": True}}
    )
    notebook = _wait_phase(kube, namespace, "gpu", "Stopped")
    assert notebook["status"]["stopReason"] == "user"
    assert notebook["status"]["stoppedAt"]
    wait_until(lambda: kube.pod(namespace, "gpu") is None, TIMEOUT, "pod removed")
    claim = kube.core.read_namespaced_persistent_volume_claim("home-gpu", namespace)
    volume = claim.spec.volume_name

    kube.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "gpu", {"spec": {"stopped": False}}
    )
    notebook = _wait_phase(kube, namespace, "gpu", "Running")
    assert "stopReason" not in notebook["status"] or notebook["status"]["stopReason"] is None
    again = kube.core.read_namespaced_persistent_volume_claim("home-gpu", namespace)
    assert again.spec.volume_name == volume  # the same files


def test_a_deleted_pod_comes_back(kube: Kube, tenant: str) -> None:
    namespace = namespace_for(tenant)
    _wait_phase(kube, namespace, "gpu", "Running")
    old = kube.pod(namespace, "gpu")
    assert old is not None
    kube.core.delete_namespaced_pod("nb-gpu", namespace)

    def replaced() -> bool:
        pod = kube.pod(namespace, "gpu")
        return pod is not None and pod.metadata.uid != old.metadata.uid

    wait_until(replaced, TIMEOUT, "pod recreated")
    _wait_phase(kube, namespace, "gpu", "Running")


def test_delete_removes_pod_service_and_token_but_keeps_the_home_volume(
    kube: Kube, tenant: str
) -> None:
    namespace = namespace_for(tenant)
    _wait_phase(kube, namespace, "gpu", "Running")
    kube.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "gpu")

    def children_gone() -> bool:
        return not (
            kube.pod(namespace, "gpu")
            or kube.exists(kube.core.read_namespaced_service, "nb-gpu", namespace)
            or kube.exists(kube.core.read_namespaced_secret, "nb-gpu-token", namespace)
        )

    wait_until(children_gone, TIMEOUT, "pod, service and token secret garbage-collected")
    assert kube.exists(kube.core.read_namespaced_persistent_volume_claim, "home-gpu", namespace)

    # Launching the same name again finds the same home volume.
    _launch(kube, namespace, "gpu", "cpu-small")
    _wait_phase(kube, namespace, "gpu", "Running")
    kube.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "gpu")


def test_crd_refuses_a_gpu_notebook_without_gpu_model(kube: Kube, tenant: str) -> None:
    namespace = namespace_for(tenant)
    body = notebook_body(
        namespace, "broken", _profile("gpu-l4"), "sub", "", load_catalog().defaults
    )
    del body["spec"]["gpuModel"]
    with pytest.raises(ApiException) as refused:
        kube.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    assert refused.value.status == 422
    assert "gpuModel is required" in str(refused.value.body)


# A notebook's first MLflow call, run with nothing but the tenant Secret's environment.
_LOG_RUN = """
import json, mlflow
mlflow.set_experiment("e2e-notebook")
with mlflow.start_run() as run:
    mlflow.log_metric("accuracy", 0.91)
print(json.dumps({"run_id": run.info.run_id}))
"""


def test_tenant_gets_mlflow_credentials_that_log_a_run_in_its_workspace(
    kube: Kube, tenant: str, mlflow_server: MlflowServer
) -> None:
    namespace = namespace_for(tenant)
    # This operator reports Ready only after writing the Secret; the wait is for a shared
    # development cluster, where another suite's operator (without MLflow settings) may
    # reconcile the same Tenant first and report Ready, and NotConfigured in MlflowReady,
    # which is why that condition is not asserted here (CI runs one operator at a time).
    wait_until(
        lambda: kube.exists(kube.core.read_namespaced_secret, "mlflow-tracking", namespace),
        TIMEOUT,
        "Secret mlflow-tracking",
    )
    secret = kube.core.read_namespaced_secret("mlflow-tracking", namespace)
    values = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    assert values["MLFLOW_TRACKING_URI"] == mlflow_server.url
    assert values["MLFLOW_WORKSPACE"] == namespace
    assert values["MLFLOW_TRACKING_USERNAME"] == namespace

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(values, MLFLOW_DISABLE_TELEMETRY="true")
    done = subprocess.run(
        [sys.executable, "-c", _LOG_RUN],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = json.loads(done.stdout.strip().splitlines()[-1])["run_id"]
    # The admin sees the run in the tenant's workspace.
    admin = httpx.get(
        f"{mlflow_server.url}/api/2.0/mlflow/runs/get",
        params={"run_id": run_id},
        headers={"X-MLFLOW-WORKSPACE": namespace},
        auth=(mlflow_server.admin_username, mlflow_server.admin_password),
        timeout=30,
    )
    assert admin.status_code == 200, admin.text
    assert admin.json()["run"]["data"]["metrics"][0]["value"] == pytest.approx(0.91)


def test_offboarding_removes_the_mlflow_workspace(kube: Kube, mlflow_server: MlflowServer) -> None:
    slug = f"nb-off-{uuid.uuid4().hex[:6]}"
    spec = TenantSpec.model_validate(
        {
            "slug": slug,
            "agency": {"name": "Kiruna kommun", "organisationNumber": "2120002627"},
            "quota": {"cpu": 2, "memoryGib": 4, "storageGib": 10},
            "dataClassification": "public",
        }
    )
    kube.custom.create_cluster_custom_object(GROUP, VERSION, "tenants", tenant_body(spec))
    namespace = namespace_for(slug)
    wait_until(
        lambda: kube.exists(kube.core.read_namespaced_secret, "mlflow-tracking", namespace),
        TIMEOUT,
        "Secret mlflow-tracking",
    )
    secret = kube.core.read_namespaced_secret("mlflow-tracking", namespace)
    password = base64.b64decode(secret.data["MLFLOW_TRACKING_PASSWORD"]).decode()

    def tenant_status() -> int:
        return httpx.get(
            f"{mlflow_server.url}/api/2.0/mlflow/experiments/search",
            params={"max_results": 1},
            headers={"X-MLFLOW-WORKSPACE": namespace},
            auth=(namespace, password),
            timeout=30,
        ).status_code

    assert tenant_status() == 200
    kube.custom.delete_cluster_custom_object(GROUP, VERSION, "tenants", slug)
    wait_until(lambda: tenant_status() in {401, 404}, TIMEOUT, "tenant credentials revoked")

    def workspace_gone() -> bool:
        # Removal revokes the user first, then deletes the workspace with its data.
        return (
            httpx.get(
                f"{mlflow_server.url}/api/3.0/mlflow/workspaces/{namespace}",
                auth=(mlflow_server.admin_username, mlflow_server.admin_password),
                timeout=30,
            ).status_code
            == 404
        )

    wait_until(workspace_gone, TIMEOUT, f"MLflow workspace {namespace} deleted")
