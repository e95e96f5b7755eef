"""Drift detection of the Tenant operator against objects shaped as the apiserver returns them."""

from __future__ import annotations

import copy
from typing import Any

from operators.drift import drifted
from tenants.builders import build_network_policies, build_resource_quota, build_roles
from tenants.resource import TenantSpec

SPEC = TenantSpec.model_validate(
    {
        "slug": "kiruna-kommun",
        "agency": {"name": "Kiruna kommun", "organisationNumber": "2120002627"},
        "quota": {"cpu": 4, "memoryGib": 16, "storageGib": 100},
        "dataClassification": "internal",
    }
)


def _as_served(obj: dict[str, Any]) -> dict[str, Any]:
    """What the apiserver hands back: our fields plus its own metadata, defaults and status."""
    live = copy.deepcopy(obj)
    live["metadata"].update(
        {"uid": "1234", "resourceVersion": "42", "managedFields": [], "generation": 1}
    )
    live["metadata"]["labels"]["added-by-someone"] = "x"
    if live["kind"] == "ResourceQuota":
        live["status"] = {"hard": dict(obj["spec"]["hard"]), "used": {"pods": "1"}}
    return live


def test_served_object_with_extra_metadata_and_status_is_not_drift() -> None:
    for obj in [build_resource_quota(SPEC), *build_roles(SPEC), *build_network_policies(SPEC)]:
        assert not drifted(obj, _as_served(obj))


def test_edited_quota_value_is_drift() -> None:
    quota = build_resource_quota(SPEC)
    live = _as_served(quota)
    live["spec"]["hard"]["requests.cpu"] = "64"
    assert drifted(quota, live)


def test_removed_label_is_drift() -> None:
    quota = build_resource_quota(SPEC)
    live = _as_served(quota)
    del live["metadata"]["labels"]["sandlada.se/tenant"]
    assert drifted(quota, live)


def test_extra_rule_in_role_is_drift() -> None:
    role = build_roles(SPEC)[1]
    live = _as_served(role)
    live["rules"].append({"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]})
    assert drifted(role, live)


def test_extra_ingress_peer_in_policy_is_drift() -> None:
    policy = build_network_policies(SPEC)[3]
    live = _as_served(policy)
    live["spec"]["ingress"][0]["from"].append({"ipBlock": {"cidr": "0.0.0.0/0"}})
    assert drifted(policy, live)
