"""The control plane grants tenants the platform's MLflow when it runs (SANDLADA_MLFLOW_ENABLED).

Without the grant the operator renders no egress policy to MLflow, and under a CNI that enforces
NetworkPolicies the tenant's notebooks could not reach the workspace the operator made for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from controlplane.settings import Settings, get_settings
from controlplane.tenancy.lifecycle import tenant_spec
from tenants.builders import build_network_policies
from tenants.resource import SharedService, tenant_body
from tests.fixtures.helm import ALL_OPTIONS, render
from tests.unit.controlplane.test_cluster_sync import _tenant

ENABLED = "SANDLADA_MLFLOW_ENABLED"


@pytest.fixture
def process_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The process's settings re-read from the environment the test sets, restored after."""
    monkeypatch.delenv(ENABLED, raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def _policy_names(spec: Any) -> set[str]:
    return {policy["metadata"]["name"] for policy in build_network_policies(spec)}


def test_mlflow_enabled_grants_it_to_every_tenant(process_settings: pytest.MonkeyPatch) -> None:
    process_settings.setenv(ENABLED, "true")
    get_settings.cache_clear()
    spec = tenant_spec(_tenant())
    assert spec.shared_services == [SharedService.MLFLOW]
    assert tenant_body(spec)["spec"]["sharedServices"] == ["mlflow"]
    assert "sandlada-allow-mlflow" in _policy_names(spec)


def test_without_mlflow_nothing_is_granted(process_settings: pytest.MonkeyPatch) -> None:
    spec = tenant_spec(_tenant())
    assert get_settings().mlflow_enabled is False
    assert spec.shared_services == []
    assert tenant_body(spec)["spec"]["sharedServices"] == []
    assert "sandlada-allow-mlflow" not in _policy_names(spec)


def _control_plane_env(objects: list[Any]) -> dict[str, Any]:
    (deployment,) = [
        obj
        for obj in objects
        if obj["kind"] == "Deployment" and obj["metadata"]["name"].endswith("-controlplane")
    ]
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return {item["name"]: item.get("value") for item in env}


def test_helm_grants_mlflow_when_the_operator_has_it() -> None:
    # One value (operator.mlflow.url) drives both sides, so they cannot disagree.
    env = _control_plane_env(render("--values", str(ALL_OPTIONS)))
    assert env[ENABLED] == "true"
    assert Settings(mlflow_enabled=env[ENABLED]).mlflow_enabled is True


def test_helm_grants_nothing_without_mlflow() -> None:
    env = _control_plane_env(render())  # defaults: operator.mlflow.url empty
    assert ENABLED not in env
