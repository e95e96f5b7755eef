"""GET /api/v1/capacity and PUT /api/v1/capacity/{gpu_model}."""

from __future__ import annotations

from fastapi.testclient import TestClient

from controlplane.app import create_app
from controlplane.database import Database
from controlplane.settings import Settings
from tests.fixtures.tokens import ADMIN, KIRUNA_REQUESTER, TestIssuer
from tests.integration.controlplane.conftest import GPU_MODEL, Api

BASE = "/api/v1/capacity"


class TestListCapacity:
    def test_anonymous_is_401(self, api: Api) -> None:
        assert api.request("GET", BASE, None).status_code == 401

    def test_shows_total_granted_free(self, api: Api, gpus: None) -> None:
        assert api.approve(api.submit()["id"]).status_code == 200
        assert api.request("GET", BASE).json() == [
            {"gpu_model": GPU_MODEL, "total": 10, "granted": 2, "free": 8, "admin_override": True}
        ]


class TestSetCapacity:
    def test_anonymous_is_401_and_requester_403(self, api: Api) -> None:
        assert api.request("PUT", f"{BASE}/L4", None, json={"total": 4}).status_code == 401
        assert (
            api.request("PUT", f"{BASE}/L4", KIRUNA_REQUESTER, json={"total": 4}).status_code == 403
        )

    def test_admin_registers_and_changes(self, api: Api) -> None:
        response = api.request("PUT", f"{BASE}/L4", ADMIN, json={"total": 4})
        assert response.status_code == 200
        assert response.json() == {
            "gpu_model": "L4",
            "total": 4,
            "granted": 0,
            "free": 4,
            "admin_override": True,
        }
        assert api.request("PUT", f"{BASE}/L4", ADMIN, json={"total": 6}).json()["total"] == 6

    def test_cannot_go_below_granted(self, api: Api, gpus: None) -> None:
        assert api.approve(api.submit()["id"]).status_code == 200
        response = api.request("PUT", f"{BASE}/{GPU_MODEL}", ADMIN, json={"total": 1})
        assert response.status_code == 409
        assert "2 NVIDIA-A100-SXM4-80GB GPUs are granted" in response.json()["detail"]

    def test_bad_total_is_422(self, api: Api) -> None:
        for total in (-1, 10**9, "many"):
            response = api.request("PUT", f"{BASE}/L4", ADMIN, json={"total": total})
            assert response.status_code == 422
            assert response.json()["detail"].startswith("total:")


def test_overcommit_factor(oidc_issuer: TestIssuer, settings: Settings, database: Database) -> None:
    app = create_app(settings.model_copy(update={"gpu_overcommit": 1.5}), database)
    with TestClient(app) as client:
        api = Api(client, oidc_issuer)
        api.request("PUT", f"{BASE}/L4", ADMIN, json={"total": 4})
        assert api.request("GET", BASE).json()[0]["free"] == 6
