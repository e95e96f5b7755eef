"""The Tenant resource models, their generated CRD, and status conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from tenants.crd import CRD_PATH, render_crd, tenant_crd
from tenants.quota import Quota
from tenants.resource import Tenant, TenantQuota, TenantSpec, tenant_body
from tenants.status import READY, Reason, set_condition

GOOD: dict[str, Any] = {
    "slug": "kiruna-kommun",
    "agency": {"name": "Kiruna kommun", "organisationNumber": "2120002627"},
    "quota": {"gpus": 1, "gpuModel": "NVIDIA-L4", "cpu": 4, "memoryGib": 16, "storageGib": 100},
    "dataClassification": "internal",
    "sharedServices": ["mlflow"],
}


def test_committed_crd_is_generated_from_the_models() -> None:
    # Fails when a model changed without `python -m tenants.crd` being rerun (or the file was
    # edited by hand).
    assert CRD_PATH.read_text() == render_crd()


def test_crd_is_a_valid_custom_resource_definition() -> None:
    kubernetes_validate.validate(tenant_crd(), "1.36.0", strict=True)


def test_crd_schema_is_structural() -> None:
    # The apiserver rejects these keywords in CRD schemas; pydantic emits some of them.
    text = yaml.safe_dump(tenant_crd())
    for keyword in ("$ref", "anyOf", "$defs", "title:", "const:", "additionalProperties: false"):
        assert keyword not in text


def test_organisation_number_is_normalised_and_checked() -> None:
    spec = TenantSpec.model_validate(GOOD)
    assert spec.agency.organisation_number == "212000-2627"
    bad = {**GOOD, "agency": {"name": "X", "organisationNumber": "212000-2628"}}
    with pytest.raises(ValidationError, match="organisation number"):
        TenantSpec.model_validate(bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"slug": "Not_A_Label"}, "slug"),
        ({"slug": "x" * 41}, "slug"),
        ({"quota": {"gpus": 2, "cpu": 1, "memoryGib": 1, "storageGib": 1}}, "gpu_model"),
        ({"quota": {"cpu": 0, "memoryGib": 1, "storageGib": 1}}, "cpu"),
        ({"quota": {"cpu": 1, "memoryGib": 1, "storageGib": 1, "mig": {"9g.1gb": 1}}}, "MIG"),
        ({"dataClassification": "secret"}, "dataClassification"),
        ({"sharedServices": ["jupyterhub"]}, "sharedServices"),
        ({"expiresAt": "2027-01-01T00:00:00"}, "time zone"),
        ({"unknownField": 1}, "unknownField"),
    ],
)
def test_bad_specs_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TenantSpec.model_validate({**GOOD, **change})


def test_tenant_name_must_equal_slug() -> None:
    body = {"metadata": {"name": "other"}, "spec": GOOD}
    with pytest.raises(ValidationError, match=r"metadata.name"):
        Tenant.model_validate(body)


def test_body_from_shared_quota_round_trips() -> None:
    quota = Quota(gpus=1, gpu_model="NVIDIA-L4", cpu=4, memory_gib=16, storage_gib=100)
    spec = TenantSpec(
        slug="kiruna-kommun",
        agency={"name": "Kiruna kommun", "organisationNumber": "212000-2627"},  # type: ignore[arg-type]
        quota=TenantQuota.from_quota(quota, shared_gpus=2),
        data_classification="internal",  # type: ignore[arg-type]
    )
    body = tenant_body(spec)
    assert body["metadata"]["name"] == "kiruna-kommun"
    assert body["spec"]["quota"]["memoryGib"] == 16
    assert body["spec"]["quota"]["sharedGpus"] == 2
    assert Tenant.model_validate(body).spec == spec


def test_condition_transition_time_moves_only_on_status_change() -> None:
    t0 = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    t1 = t0 + timedelta(minutes=5)
    first = set_condition(
        [], type_=READY, status=False, reason=Reason.PROVISIONING, message="", now=t0
    )
    same = set_condition(
        first, type_=READY, status=False, reason=Reason.APPLY_FAILED, message="x", now=t1
    )
    flipped = set_condition(
        same, type_=READY, status=True, reason=Reason.PROVISIONED, message="", now=t1
    )
    assert same[0]["lastTransitionTime"] == "2026-11-29T02:00:00Z"
    assert same[0]["reason"] == "ApplyFailed"
    assert flipped[0]["lastTransitionTime"] == "2026-11-29T02:05:00Z"
    assert flipped[0]["status"] == "True"
    assert len(flipped) == 1
