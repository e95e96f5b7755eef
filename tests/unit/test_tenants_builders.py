"""The tenant builders against stored expected YAML and the Kubernetes OpenAPI schema.

Set ``SANDLADA_UPDATE_EXPECTED=1`` to rewrite the expected files after a deliberate change,
then review the diff like any other code change.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tenants.builders import (
    GPU_RESOURCE,
    POD_SECURITY_VERSION,
    build_resource_quota,
    build_tenant_objects,
)
from tenants.names import namespace_for
from tenants.resource import TenantSpec

EXPECTED = Path(__file__).parent / "expected"
# The newest schema kubernetes-validate ships for the minor version the cluster runs.
KUBERNETES_VERSION = POD_SECURITY_VERSION.removeprefix("v") + ".0"

SPECS: dict[str, dict[str, Any]] = {
    "basic": {
        "slug": "kiruna-kommun",
        "agency": {"name": "Kiruna kommun", "organisationNumber": "2120002627"},
        "quota": {"cpu": 4, "memoryGib": 16, "storageGib": 100},
        "dataClassification": "internal",
    },
    "gpu": {
        "slug": "skatteverket-ai",
        "agency": {"name": "Skatteverket", "organisationNumber": "202100-5448"},
        "quota": {
            "gpus": 2,
            "gpuModel": "NVIDIA-A100-SXM4-80GB",
            "cpu": 16,
            "memoryGib": 128,
            "storageGib": 1000,
            "mig": {"1g.10gb": 4},
            "sharedGpus": 2,
            "ephemeralStorageGib": 50,
        },
        "dataClassification": "confidential",
        "expiresAt": "2027-06-30T00:00:00Z",
        "sharedServices": ["mlflow"],
    },
    "small-suspended": {
        "slug": "liten",
        "agency": {"name": "Liten nämnd", "organisationNumber": "212000-1355"},
        "quota": {"cpu": 1, "memoryGib": 1, "storageGib": 1, "ephemeralStorageGib": 1},
        "dataClassification": "public",
        "suspended": True,
    },
}


def _spec(case: str) -> TenantSpec:
    return TenantSpec.model_validate(SPECS[case])


@pytest.mark.parametrize("case", sorted(SPECS))
def test_objects_match_expected(case: str) -> None:
    built = build_tenant_objects(_spec(case)).all()
    path = EXPECTED / f"tenant-{case}.yaml"
    if os.environ.get("SANDLADA_UPDATE_EXPECTED"):
        path.write_text(yaml.safe_dump_all(built, sort_keys=False, width=100, allow_unicode=True))
    assert built == list(yaml.safe_load_all(path.read_text()))


@pytest.mark.parametrize("case", sorted(SPECS))
def test_objects_valid_against_kubernetes_schema(case: str) -> None:
    for obj in build_tenant_objects(_spec(case)).all():
        # strict: an unknown field (a typo) fails instead of being silently dropped.
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("case", sorted(SPECS))
def test_every_object_labelled_and_in_the_tenant_namespace(case: str) -> None:
    spec = _spec(case)
    objects = build_tenant_objects(spec).all()
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "sandlada"
        assert labels["sandlada.se/tenant"] == spec.slug
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace_for(spec.slug)
    names = [(obj["kind"], obj["metadata"]["name"]) for obj in objects]
    assert len(names) == len(set(names))


def test_quota_limits_gpus_even_when_none_granted() -> None:
    hard = build_resource_quota(_spec("basic"))["spec"]["hard"]
    # No key would mean no limit: ungranted accelerators must be explicitly zero.
    assert hard[f"requests.{GPU_RESOURCE}"] == "0"
    assert hard["requests.nvidia.com/mig-1g.10gb"] == "0"
    assert hard["requests.nvidia.com/gpu.shared"] == "0"
    for key in (
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "requests.storage",
    ):
        assert key in hard
    assert hard["services.nodeports"] == "0"
    assert hard["services.loadbalancers"] == "0"


def test_suspension_allows_no_pods_but_keeps_the_rest() -> None:
    running = SPECS["gpu"]
    suspended = build_resource_quota(TenantSpec.model_validate({**running, "suspended": True}))
    normal = build_resource_quota(TenantSpec.model_validate(running))
    assert suspended["spec"]["hard"]["pods"] == "0"
    assert normal["spec"]["hard"]["pods"] != "0"
    assert {k: v for k, v in suspended["spec"]["hard"].items() if k != "pods"} == {
        k: v for k, v in normal["spec"]["hard"].items() if k != "pods"
    }


def test_roles_never_write_quota_or_limits_and_never_bind_or_escalate() -> None:
    objects = build_tenant_objects(_spec("gpu"))
    for role in objects.roles:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"]
            assert not {"bind", "escalate", "impersonate"} & set(rule["verbs"])
            if {"resourcequotas", "limitranges", "namespaces"} & set(rule["resources"]):
                assert set(rule["verbs"]) <= {"get", "list", "watch"}
    subjects = [s["name"] for rb in objects.role_bindings for s in rb["subjects"]]
    assert subjects == ["t-skatteverket-ai-admins", "t-skatteverket-ai-members"]


def test_shared_service_policy_only_when_allowed() -> None:
    with_mlflow = [
        p["metadata"]["name"] for p in build_tenant_objects(_spec("gpu")).network_policies
    ]
    without = [p["metadata"]["name"] for p in build_tenant_objects(_spec("basic")).network_policies]
    assert "sandlada-allow-mlflow" in with_mlflow
    assert "sandlada-allow-mlflow" not in without
