"""The notebook builders against stored expected YAML, the Kubernetes schema and PSA rules.

Set ``SANDLADA_UPDATE_EXPECTED=1`` to rewrite the expected files after a deliberate change,
then review the diff like any other code change. Pod Security ``restricted`` itself is
enforced by the real apiserver in tests/e2e/test_notebook_operator.py; here the builder's
promises are checked field by field so a regression names the field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tenants.builders import MLFLOW_SECRET, NOTEBOOK_SERVICE_ACCOUNT, POD_SECURITY_VERSION
from tenants.catalog import load_catalog
from tenants.notebook import NotebookSpec, notebook_spec
from tenants.notebook_builders import (
    SPEC_HASH_ANNOTATION,
    build_notebook_objects,
    build_pod,
)

EXPECTED = Path(__file__).parent / "expected"
KUBERNETES_VERSION = POD_SECURITY_VERSION.removeprefix("v") + ".0"
NAMESPACE = "t-kiruna"


def _spec(profile_slug: str, **changes: Any) -> NotebookSpec:
    catalog = load_catalog()
    profile = catalog.get(profile_slug)
    assert profile is not None
    spec = notebook_spec(profile, "2f1c-sub", "Anna Andersson", catalog.defaults)
    return spec.model_copy(update=changes)


CASES: dict[str, NotebookSpec] = {
    "cpu": _spec("cpu-small"),
    "gpu-a100": _spec("gpu-a100"),
    "half-core-mig": _spec(
        "gpu-a100", cpu=0.5, memory_gib=1.5, gpu_resource="nvidia.com/mig-1g.10gb", gpus=2
    ),
}


def _objects(case: str, storage_class: str | None = None) -> list[dict[str, Any]]:
    return build_notebook_objects(
        NAMESPACE, "analys", CASES[case], token="t0ken", storage_class=storage_class
    ).all()


@pytest.mark.parametrize("case", sorted(CASES))
def test_objects_match_expected(case: str) -> None:
    built = _objects(case)
    path = EXPECTED / f"notebook-{case}.yaml"
    if os.environ.get("SANDLADA_UPDATE_EXPECTED"):
        path.write_text(yaml.safe_dump_all(built, sort_keys=False, width=100, allow_unicode=True))
    assert built == list(yaml.safe_load_all(path.read_text()))


@pytest.mark.parametrize("case", sorted(CASES))
def test_objects_valid_against_kubernetes_schema(case: str) -> None:
    for obj in _objects(case, storage_class="standard"):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_pod_meets_pod_security_restricted(case: str) -> None:
    pod = build_pod(NAMESPACE, "analys", CASES[case])
    spec = pod["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "hostNetwork" not in spec and "hostPID" not in spec and "hostIPC" not in spec
    for volume in spec["volumes"]:
        # restricted allows only these volume types
        assert set(volume) - {"name"} <= {
            "persistentVolumeClaim",
            "configMap",
            "secret",
            "emptyDir",
            "projected",
            "downwardAPI",
            "csi",
            "ephemeral",
        }
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["runAsUser"] != 0
        assert "privileged" not in context
        assert all("hostPort" not in port for port in container["ports"])


def test_gpu_limits_and_node_selector_only_with_gpus() -> None:
    cpu = build_pod(NAMESPACE, "a", CASES["cpu"])["spec"]
    gpu = build_pod(NAMESPACE, "a", CASES["gpu-a100"])["spec"]
    mig = build_pod(NAMESPACE, "a", CASES["half-core-mig"])["spec"]
    assert "nodeSelector" not in cpu
    assert not any("nvidia" in key for key in cpu["containers"][0]["resources"]["limits"])
    assert gpu["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert mig["containers"][0]["resources"]["limits"]["nvidia.com/mig-1g.10gb"] == "2"
    assert mig["containers"][0]["resources"]["requests"]["cpu"] == "500m"
    assert mig["containers"][0]["resources"]["limits"]["memory"] == "1536Mi"


def test_pod_uses_the_tenant_service_account_token_secret_and_mlflow_secret() -> None:
    spec = build_pod(NAMESPACE, "analys", CASES["cpu"])["spec"]
    assert spec["serviceAccountName"] == NOTEBOOK_SERVICE_ACCOUNT
    assert spec["automountServiceAccountToken"] is False
    container = spec["containers"][0]
    token = next(e for e in container["env"] if e["name"] == "JUPYTER_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "nb-analys-token", "key": "token"}
    assert container["envFrom"] == [{"secretRef": {"name": MLFLOW_SECRET, "optional": True}}]
    assert spec["volumes"] == [
        {"name": "home", "persistentVolumeClaim": {"claimName": "home-analys"}}
    ]


def test_every_child_is_labelled_with_tenant_and_notebook() -> None:
    for obj in _objects("gpu-a100"):
        labels = obj["metadata"]["labels"]
        assert labels["sandlada.se/tenant"] == "kiruna"
        assert labels["sandlada.se/notebook"] == "analys"
        assert labels["app.kubernetes.io/managed-by"] == "sandlada"
        assert "ownerReferences" not in obj["metadata"]  # the operator adds them (not the PVC)


def test_pod_spec_hash_changes_with_the_spec_only() -> None:
    one = build_pod(NAMESPACE, "a", CASES["cpu"])
    same = build_pod(NAMESPACE, "a", CASES["cpu"].model_copy(update={"stopped": True}))
    other = build_pod(NAMESPACE, "a", CASES["cpu"].model_copy(update={"image": "other:1"}))
    annotation = one["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    assert annotation == same["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    assert annotation != other["metadata"]["annotations"][SPEC_HASH_ANNOTATION]


def test_storage_class_only_when_configured() -> None:
    default = build_notebook_objects(NAMESPACE, "a", CASES["cpu"], token="x").home_claim
    named = build_notebook_objects(
        NAMESPACE, "a", CASES["cpu"], token="x", storage_class="fast"
    ).home_claim
    assert "storageClassName" not in default["spec"]
    assert named["spec"]["storageClassName"] == "fast"
    assert default["spec"]["resources"]["requests"]["storage"] == "10Gi"
