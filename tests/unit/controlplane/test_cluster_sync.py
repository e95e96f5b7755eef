"""Pure parts of the cluster side: GPU totals from nodes, the Tenant spec, error mapping."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import NoReturn

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from controlplane.cluster.storage import (
    ClusterError,
    ClusterUnavailableError,
    _call,
    gpus_by_model,
)
from controlplane.models import (
    Agency,
    AgencyKind,
    DataClassification,
    SandboxRequest,
    Tenant,
    TenantStatus,
)
from controlplane.settings import DEV_KUBECONFIG, Settings
from controlplane.tenancy.lifecycle import is_ready, tenant_spec
from tenants.resource import Tenant as TenantResource
from tenants.resource import tenant_body

A100 = "NVIDIA-A100-SXM4-80GB"
L4 = "NVIDIA-L4"
PRODUCT = "nvidia.com/gpu.product"


class TestGpusByModel:
    def test_sums_allocatable_per_product(self) -> None:
        nodes = [
            ({PRODUCT: A100}, {"nvidia.com/gpu": "8", "cpu": "96"}),
            ({PRODUCT: A100}, {"nvidia.com/gpu": "8"}),
            ({PRODUCT: L4}, {"nvidia.com/gpu": "4"}),
        ]
        assert gpus_by_model(nodes) == {A100: 16, L4: 4}

    def test_ignores_nodes_without_label_or_gpus(self) -> None:
        nodes = [
            ({}, {"nvidia.com/gpu": "8"}),
            ({PRODUCT: A100}, {"cpu": "32"}),
            ({PRODUCT: L4}, {"nvidia.com/gpu": "0"}),
        ]
        assert gpus_by_model(nodes) == {L4: 0}


def _raise(exc: Exception) -> NoReturn:
    raise exc


class TestErrorMapping:
    @pytest.mark.parametrize("status", [500, 503, 0])
    def test_server_errors_are_unavailable(self, status: int) -> None:
        with pytest.raises(ClusterUnavailableError) as info:
            _call("list Tenants", lambda: _raise(ApiException(status=status, reason="boom")))
        assert info.value.status_code == 503

    def test_refused_connection_is_unavailable(self) -> None:
        pool = urllib3.HTTPSConnectionPool("127.0.0.1", 1)
        error = urllib3.exceptions.MaxRetryError(pool, "/apis", reason=ConnectionRefusedError())
        with pytest.raises(ClusterUnavailableError, match="unreachable"):
            _call("apply Tenant x", lambda: _raise(error))

    def test_refusals_are_cluster_errors(self) -> None:
        with pytest.raises(ClusterError, match="403 Forbidden") as info:
            _call("apply Tenant x", lambda: _raise(ApiException(status=403, reason="Forbidden")))
        assert info.value.status_code == 502


def _tenant(status: TenantStatus = TenantStatus.PROVISIONING) -> Tenant:
    agency = Agency(
        organisation_number="2120002742", name="Kiruna kommun", kind=AgencyKind.MUNICIPALITY
    )
    request = SandboxRequest(data_classification=DataClassification.OPEN)
    return Tenant(
        slug="kiruna-ai-pilot",
        agency=agency,
        request=request,
        status=status,
        gpus=2,
        gpu_model=A100,
        cpu=16,
        memory_gib=64,
        storage_gib=200,
        expires_on=date(2027, 5, 31),
    )


class TestTenantSpec:
    def test_spec_carries_the_grant(self) -> None:
        body = tenant_body(tenant_spec(_tenant()))
        assert body["metadata"]["name"] == "kiruna-ai-pilot"
        spec = body["spec"]
        assert spec["agency"] == {"name": "Kiruna kommun", "organisationNumber": "212000-2742"}
        assert spec["quota"]["gpus"] == 2
        assert spec["quota"]["gpuModel"] == A100
        assert spec["dataClassification"] == "public"  # "open" in the control plane's words
        assert spec["expiresAt"].startswith("2027-05-31T23:59:59")
        assert spec["suspended"] is False

    @pytest.mark.parametrize(
        ("status", "suspended"),
        [
            (TenantStatus.READY, False),
            (TenantStatus.SUSPENDED, True),
            (TenantStatus.DELETING, True),
        ],
    )
    def test_suspended_follows_status(self, status: TenantStatus, suspended: bool) -> None:
        assert tenant_spec(_tenant(status)).suspended is suspended


class TestIsReady:
    def _resource(self, phase: str, ready: str) -> TenantResource:
        body = tenant_body(tenant_spec(_tenant()))
        body["status"] = {
            "phase": phase,
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": "Provisioned",
                    "lastTransitionTime": datetime.now(UTC).isoformat(),
                }
            ],
        }
        return TenantResource.model_validate(body)

    def test_ready_needs_phase_and_condition(self) -> None:
        assert is_ready(self._resource("Ready", "True"))
        assert not is_ready(self._resource("Ready", "False"))
        assert not is_ready(self._resource("Provisioning", "True"))


class TestKubeconfigSetting:
    @pytest.fixture(autouse=True)
    def _no_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("SANDLADA_KUBECONFIG", raising=False)

    def test_development_defaults_to_the_local_cluster(self) -> None:
        assert Settings(environment="development").kubeconfig == DEV_KUBECONFIG

    def test_other_environments_have_no_cluster_unless_told(self) -> None:
        assert Settings(environment="test").kubeconfig is None
