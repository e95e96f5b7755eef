"""Builders of the objects the operators' side steps write: the tenant's MLflow Secret and the
culler's Event, against stored expected YAML and the Kubernetes OpenAPI schema.

Set ``SANDLADA_UPDATE_EXPECTED=1`` to rewrite the expected files after a deliberate change,
then review the diff like any other code change.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from operators.culler import COMPONENT, CullDecision, decide
from operators.mlflow_workspaces import TenantMlflowCredentials
from tenants.builders import MLFLOW_SECRET, POD_SECURITY_VERSION, build_mlflow_secret
from tenants.catalog import load_catalog
from tenants.labels import standard_labels
from tenants.notebook import KIND, StopReason, notebook_spec
from tenants.notebook_builders import build_notebook_event, build_pod, kubernetes_time
from tenants.resource import GROUP, VERSION

EXPECTED = Path(__file__).parent / "expected"
KUBERNETES_VERSION = POD_SECURITY_VERSION.removeprefix("v") + ".0"
NOW = datetime(2026, 11, 29, 9, 30, 15, 123456, tzinfo=UTC)


def _credentials() -> TenantMlflowCredentials:
    return TenantMlflowCredentials(
        tracking_uri="http://mlflow.sandlada-system.svc:5000",
        workspace="t-kiruna",
        username="t-kiruna",
        password="derived-not-stored",
    )


def _idle_decision() -> CullDecision:
    decision = decide(
        now=NOW,
        started_at=NOW - timedelta(hours=3),
        last_activity=NOW - timedelta(hours=2),
        idle_timeout_seconds=3600,
        max_age_seconds=None,
    )
    assert decision is not None and decision.reason is StopReason.IDLE
    return decision


def _event(decision: CullDecision) -> dict[str, Any]:
    # Exactly what operators.culler.Culler._event posts.
    return build_notebook_event(
        "t-kiruna",
        "analys",
        "7d0c5c8e-2f1a-4b7e-9a51-0f3c2d1e4b6a",
        reason=decision.event_reason,
        action="Stop",
        message=decision.message,
        component=COMPONENT,
        at=NOW,
    )


CASES: dict[str, Any] = {
    "mlflow-secret": lambda: build_mlflow_secret("kiruna", _credentials().env()),
    "notebook-event-idle": lambda: _event(_idle_decision()),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_objects_match_expected(case: str) -> None:
    built = CASES[case]()
    path = EXPECTED / f"{case}.yaml"
    if os.environ.get("SANDLADA_UPDATE_EXPECTED"):
        path.write_text(yaml.safe_dump(built, sort_keys=False, width=100, allow_unicode=True))
    assert built == yaml.safe_load(path.read_text())


@pytest.mark.parametrize("case", sorted(CASES))
def test_objects_valid_against_kubernetes_schema(case: str) -> None:
    kubernetes_validate.validate(CASES[case](), KUBERNETES_VERSION, strict=True)


class TestMlflowSecret:
    def test_in_the_tenant_namespace_with_the_standard_labels(self) -> None:
        secret = build_mlflow_secret("kiruna", _credentials().env())
        assert secret["metadata"] == {
            "name": MLFLOW_SECRET,
            "namespace": "t-kiruna",
            "labels": standard_labels("kiruna"),
        }
        # The owner reference needs the live Tenant's uid: the operator adds it.
        assert "ownerReferences" not in secret["metadata"]

    def test_carries_what_notebook_pods_read_with_env_from(self) -> None:
        secret = build_mlflow_secret("kiruna", _credentials().env())
        assert secret["stringData"] == _credentials().env()
        assert set(secret["stringData"]) == {
            "MLFLOW_TRACKING_URI",
            "MLFLOW_WORKSPACE",
            "MLFLOW_TRACKING_USERNAME",
            "MLFLOW_TRACKING_PASSWORD",
        }
        pod = _notebook_pod()
        (container,) = pod["spec"]["containers"]
        assert {"secretRef": {"name": secret["metadata"]["name"], "optional": True}} in container[
            "envFrom"
        ]

    def test_the_input_mapping_is_copied(self) -> None:
        env = _credentials().env()
        secret = build_mlflow_secret("kiruna", env)
        env["MLFLOW_TRACKING_PASSWORD"] = "changed"
        assert secret["stringData"]["MLFLOW_TRACKING_PASSWORD"] == "derived-not-stored"


def _notebook_pod() -> dict[str, Any]:
    catalog = load_catalog()
    profile = catalog.get("cpu-small")
    assert profile is not None
    spec = notebook_spec(profile, "2f1c-sub", "Anna Andersson", catalog.defaults)
    return build_pod("t-kiruna", "analys", spec)


class TestNotebookEvent:
    def test_about_the_notebook_and_reported_by_the_culler(self) -> None:
        event = _event(_idle_decision())
        assert event["involvedObject"] == {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": "analys",
            "namespace": "t-kiruna",
            "uid": "7d0c5c8e-2f1a-4b7e-9a51-0f3c2d1e4b6a",
        }
        assert event["metadata"] == {"generateName": "analys.", "namespace": "t-kiruna"}
        assert event["source"] == {"component": "sandlada-culler"}
        assert event["reportingComponent"] == event["reportingInstance"] == "sandlada-culler"
        assert (event["type"], event["reason"], event["action"]) == (
            "Normal",
            "IdleTimeout",
            "Stop",
        )

    def test_message_in_both_languages(self) -> None:
        message = _event(_idle_decision())["message"]
        assert "idle timeout" in message and "utan aktivitet" in message

    def test_times_are_whole_seconds_in_utc(self) -> None:
        stockholm = timezone(timedelta(hours=1))
        assert kubernetes_time(NOW.astimezone(stockholm)) == "2026-11-29T09:30:15Z"
        event = _event(_idle_decision())
        assert event["firstTimestamp"] == event["lastTimestamp"] == "2026-11-29T09:30:15Z"
        assert event["count"] == 1
