"""The ``MlflowReady`` condition tells when a tenant's workspace exists but its pods may not
reach it (no ``mlflow`` in ``spec.sharedServices``: the NetworkPolicies block the egress)."""

from __future__ import annotations

from typing import Any

import pytest

from operators.mlflow_tenant import NOT_CONFIGURED, Outcome, Reason, as_granted
from tenants.resource import SharedService, TenantSpec

PROVISIONED = Outcome(
    ready=True,
    reason=Reason.PROVISIONED,
    message="workspace t-kiruna; credentials in Secret mlflow-tracking",
)


def _spec(**changes: Any) -> TenantSpec:
    return TenantSpec.model_validate(
        {
            "slug": "kiruna",
            "agency": {"name": "Kiruna kommun", "organisationNumber": "2120002627"},
            "quota": {"cpu": 2, "memoryGib": 4, "storageGib": 10},
            "dataClassification": "internal",
            **changes,
        }
    )


def test_granted_workspace_is_ready() -> None:
    assert as_granted(PROVISIONED, _spec(sharedServices=["mlflow"])) == PROVISIONED


def test_workspace_without_the_grant_is_not_ready_and_says_why() -> None:
    spec = _spec()
    assert SharedService.MLFLOW not in spec.shared_services
    outcome = as_granted(PROVISIONED, spec)
    assert outcome.ready is False
    assert outcome.reason == Reason.NOT_GRANTED
    assert outcome.message.startswith(PROVISIONED.message)
    assert "sharedServices" in outcome.message and "SANDLADA_MLFLOW_ENABLED" in outcome.message


@pytest.mark.parametrize(
    "outcome",
    [
        NOT_CONFIGURED,
        Outcome(ready=False, reason=Reason.UNAVAILABLE, message="MLflow down"),
        Outcome(ready=False, reason=Reason.SUSPENDED, message="suspended"),
    ],
)
def test_other_outcomes_keep_their_reason(outcome: Outcome) -> None:
    assert as_granted(outcome, _spec()) == outcome
