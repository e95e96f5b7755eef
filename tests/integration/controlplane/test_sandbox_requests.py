"""The sandbox request workflow through the API: one class per endpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controlplane.models import AuditEvent, SandboxRequest, Tenant
from tests.fixtures.tokens import (
    ADMIN,
    KIRUNA_COLLEAGUE,
    KIRUNA_REQUESTER,
    LULEA,
    LULEA_REQUESTER,
    NO_AGENCY,
)
from tests.integration.controlplane.conftest import GPU_MODEL, Api, request_body

BASE = "/api/v1/sandbox-requests"


def _counts(session: Session) -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count()).select_from(SandboxRequest)) or 0,
        session.scalar(select(func.count()).select_from(Tenant)) or 0,
        session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
    )


class TestSubmit:
    def test_anonymous_is_401(self, api: Api) -> None:
        response = api.request("POST", BASE, None, json=request_body())
        assert response.status_code == 401
        assert response.json()["error"] == "not_authenticated"
        assert response.headers["WWW-Authenticate"] == "Bearer"

    def test_creates_pending_request(self, api: Api, gpus: None) -> None:
        created = api.submit()
        assert created["status"] == "pending"
        assert created["agency"] == {
            "name": "Kiruna kommun",
            "organisation_number": "212000-2742",
            "kind": "municipality",
        }
        assert created["requester"]["subject"] == KIRUNA_REQUESTER.sub
        assert created["quota"]["gpus"] == 2
        assert created["decision"] is None
        assert created["tenant"] is None

    def test_organisation_number_without_dash_is_normalised(self, api: Api, gpus: None) -> None:
        agency = {
            "name": "Kiruna kommun",
            "organisation_number": "2120002742",
            "kind": "municipality",
        }
        assert api.submit(agency=agency)["agency"]["organisation_number"] == "212000-2742"

    def test_other_agency_is_403(self, api: Api, gpus: None) -> None:
        response = api.request("POST", BASE, LULEA_REQUESTER, json=request_body())
        assert response.status_code == 403
        assert "own agency" in response.json()["detail"]

    def test_missing_organisation_claim_is_403(self, api: Api, gpus: None) -> None:
        response = api.request("POST", BASE, NO_AGENCY, json=request_body())
        assert response.status_code == 403
        assert "organisation_number claim" in response.json()["detail"]

    def test_admin_may_request_for_any_agency(self, api: Api, gpus: None) -> None:
        agency = {"name": "Luleå kommun", "organisation_number": LULEA, "kind": "municipality"}
        assert api.submit(ADMIN, agency=agency)["agency"]["organisation_number"] == LULEA

    def test_unacceptable_risk_refused_with_explanation(
        self, api: Api, gpus: None, session: Session
    ) -> None:
        before = _counts(session)
        response = api.request("POST", BASE, json=request_body(ai_act_risk="unacceptable"))
        assert response.status_code == 422
        body = response.json()
        assert body["error"] == "unacceptable_risk"
        assert body["detail"].startswith("ai_act_risk:")
        assert body["field"] == "ai_act_risk"
        assert "AI Act" in body["detail"] and "AI-förordning" not in body["detail"]
        swedish = api.request(
            "POST",
            BASE,
            json=request_body(ai_act_risk="unacceptable"),
            headers={"Accept-Language": "sv-SE,sv;q=0.9,en;q=0.5"},
        )
        assert swedish.status_code == 422
        assert swedish.json()["detail"].startswith("ai_act_risk:")
        assert "AI-förordning" in swedish.json()["detail"]
        assert _counts(session) == before

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            (
                {
                    "agency": {
                        "name": "K",
                        "organisation_number": "212000-2743",
                        "kind": "municipality",
                    }
                },
                "agency.organisation_number",
            ),
            (
                {"agency": {"name": "K", "organisation_number": "abc", "kind": "municipality"}},
                "agency.organisation_number",
            ),
            (
                {"agency": {"name": "K", "organisation_number": "212000-2742", "kind": "company"}},
                "agency.kind",
            ),
            (
                {
                    "quota": {
                        "gpus": -1,
                        "gpu_model": GPU_MODEL,
                        "cpu": 1,
                        "memory_gib": 1,
                        "storage_gib": 1,
                    }
                },
                "quota.gpus",
            ),
            ({"quota": {"gpus": 0, "cpu": 10**9, "memory_gib": 1, "storage_gib": 1}}, "quota.cpu"),
            (
                {
                    "quota": {
                        "gpus": 1,
                        "gpu_model": "H900",
                        "cpu": 1,
                        "memory_gib": 1,
                        "storage_gib": 1,
                    }
                },
                "quota.gpu_model",
            ),
            ({"quota": {"gpus": 1, "cpu": 1, "memory_gib": 1, "storage_gib": 1}}, "quota"),
            ({"end_date": (datetime.now(UTC).date() - timedelta(days=1)).isoformat()}, "end_date"),
            ({"end_date": datetime.now(UTC).date().isoformat()}, "end_date"),
            ({"end_date": "2207-01-01"}, "end_date"),
            ({"end_date": "not-a-date"}, "end_date"),
            ({"purpose": "x" * 4001}, "purpose"),
            ({"purpose": ""}, "purpose"),
            ({"name": "n" * 101}, "name"),
            ({"legal_basis": "null\x00byte"}, "legal_basis"),
            ({"data_classification": "secret"}, "data_classification"),
            ({"surprise": 1}, "surprise"),
        ],
    )
    def test_bad_input_names_the_field(
        self, api: Api, gpus: None, session: Session, overrides: dict[str, Any], field: str
    ) -> None:
        before = _counts(session)
        response = api.request("POST", BASE, json=request_body(**overrides))
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["error"] == "invalid_input"
        assert body["detail"].startswith(f"{field}:") or f"{field}:" in body["detail"], body
        assert _counts(session) == before

    def test_malformed_json_is_422(self, api: Api) -> None:
        response = api.request(
            "POST", BASE, content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422
        assert set(response.json()) == {"error", "detail"}


class TestList:
    def test_anonymous_is_401(self, api: Api) -> None:
        assert api.request("GET", BASE, None).status_code == 401

    def test_agency_sees_only_its_own(self, api: Api, gpus: None) -> None:
        kiruna = api.submit()
        agency = {"name": "Luleå kommun", "organisation_number": LULEA, "kind": "municipality"}
        lulea = api.submit(LULEA_REQUESTER, agency=agency)
        mine = [r["id"] for r in api.request("GET", BASE, KIRUNA_COLLEAGUE).json()]
        assert mine == [kiruna["id"]]
        theirs = [r["id"] for r in api.request("GET", BASE, LULEA_REQUESTER).json()]
        assert theirs == [lulea["id"]]
        everything = [r["id"] for r in api.request("GET", BASE, ADMIN).json()]
        assert everything == [lulea["id"], kiruna["id"]]
        assert api.request("GET", BASE, NO_AGENCY).json() == []

    def test_status_filter(self, api: Api, gpus: None) -> None:
        first = api.submit()
        second = api.submit(name="second")
        assert api.approve(first["id"]).status_code == 200
        pending = api.request("GET", BASE, params={"status": "pending"}).json()
        assert [r["id"] for r in pending] == [second["id"]]
        bad = api.request("GET", BASE, params={"status": "nope"})
        assert bad.status_code == 422
        assert bad.json()["detail"].startswith("status:")


class TestGet:
    def test_anonymous_is_401(self, api: Api) -> None:
        assert api.request("GET", f"{BASE}/1", None).status_code == 401

    def test_own_agency_and_admin_see_it(self, api: Api, gpus: None) -> None:
        created = api.submit()
        for persona in (KIRUNA_REQUESTER, KIRUNA_COLLEAGUE, ADMIN):
            response = api.request("GET", f"{BASE}/{created['id']}", persona)
            assert response.status_code == 200
            assert response.json()["id"] == created["id"]

    def test_other_agency_is_404(self, api: Api, gpus: None) -> None:
        created = api.submit()
        response = api.request("GET", f"{BASE}/{created['id']}", LULEA_REQUESTER)
        assert response.status_code == 404
        assert response.json() == {
            "error": "not_found",
            "detail": f"no sandbox request {created['id']}",
        }

    def test_missing_is_404_and_absurd_id_is_422(self, api: Api) -> None:
        assert api.request("GET", f"{BASE}/999999", ADMIN).status_code == 404
        assert api.request("GET", f"{BASE}/99999999999999999999", ADMIN).status_code == 422


class TestApprove:
    def test_anonymous_is_401(self, api: Api) -> None:
        assert api.request("POST", f"{BASE}/1/approve", None, json={}).status_code == 401

    def test_requester_cannot_approve(self, api: Api, gpus: None) -> None:
        created = api.submit()
        response = api.request("POST", f"{BASE}/{created['id']}/approve", json={})
        assert response.status_code == 403

    def test_creates_one_provisioning_tenant(self, api: Api, gpus: None, session: Session) -> None:
        created = api.submit()
        granted = {
            "gpus": 1,
            "gpu_model": GPU_MODEL,
            "cpu": 8,
            "memory_gib": 32,
            "storage_gib": 100,
        }
        response = api.approve(created["id"], quota=granted, comment="One GPU to start with.")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "approved"
        assert body["decision"]["by"] == ADMIN.sub
        assert body["decision"]["comment"] == "One GPU to start with."
        assert body["decision"]["quota"] == granted
        assert body["quota"]["gpus"] == 2  # what was asked stays on record
        tenant = body["tenant"]
        assert tenant["slug"] == "kiruna-ai-pilot"
        assert tenant["namespace"] == "t-kiruna-ai-pilot"
        assert tenant["status"] == "provisioning"
        assert tenant["quota"] == granted
        assert tenant["expires_on"] == created["end_date"]
        assert session.scalar(select(func.count()).select_from(Tenant)) == 1

    def test_default_grant_is_the_request(self, api: Api, gpus: None) -> None:
        created = api.submit()
        body = api.approve(created["id"]).json()
        assert body["tenant"]["quota"] == created["quota"]

    def test_second_approval_is_409_naming_the_state(
        self, api: Api, gpus: None, session: Session
    ) -> None:
        created = api.submit()
        assert api.approve(created["id"]).status_code == 200
        before = _counts(session)
        response = api.approve(created["id"])
        assert response.status_code == 409
        assert response.json()["error"] == "invalid_state"
        assert "is approved" in response.json()["detail"]
        assert _counts(session) == before

    def test_same_name_gets_hash_suffix(self, api: Api, gpus: None) -> None:
        first = api.approve(api.submit(quota=_no_gpu())["id"]).json()["tenant"]["slug"]
        second = api.approve(api.submit(quota=_no_gpu())["id"]).json()["tenant"]["slug"]
        assert first == "kiruna-ai-pilot"
        assert second.startswith("kiruna-ai-pilot-") and len(second) == len(first) + 7

    def test_over_capacity_is_409_and_writes_nothing(
        self, api: Api, gpus: None, session: Session
    ) -> None:
        created = api.submit()
        before = _counts(session)
        too_many = {
            "gpus": 11,
            "gpu_model": GPU_MODEL,
            "cpu": 8,
            "memory_gib": 32,
            "storage_gib": 1,
        }
        response = api.approve(created["id"], quota=too_many)
        assert response.status_code == 409
        assert response.json()["error"] == "capacity_exceeded"
        assert "only 10 are free" in response.json()["detail"]
        assert _counts(session) == before
        assert api.request("GET", f"{BASE}/{created['id']}").json()["status"] == "pending"

    def test_capacity_is_spent_by_approvals(self, api: Api, gpus: None) -> None:
        for _ in range(5):
            assert api.approve(api.submit()["id"]).status_code == 200
        response = api.approve(api.submit()["id"])
        assert response.status_code == 409
        assert "only 0 are free" in response.json()["detail"]

    def test_unknown_gpu_model_in_grant_is_422(self, api: Api, gpus: None) -> None:
        created = api.submit()
        quota = {"gpus": 1, "gpu_model": "H900", "cpu": 1, "memory_gib": 1, "storage_gib": 1}
        response = api.approve(created["id"], quota=quota)
        assert response.status_code == 422
        assert response.json()["detail"].startswith("quota.gpu_model:")


class TestReject:
    def test_anonymous_is_401(self, api: Api) -> None:
        assert (
            api.request("POST", f"{BASE}/1/reject", None, json={"reason": "x"}).status_code == 401
        )

    def test_reject_then_approve_is_409(self, api: Api, gpus: None) -> None:
        created = api.submit()
        response = api.request(
            "POST", f"{BASE}/{created['id']}/reject", ADMIN, json={"reason": "No legal basis."}
        )
        assert response.status_code == 200
        assert response.json()["status"] == "rejected"
        assert response.json()["decision"]["comment"] == "No legal basis."
        again = api.approve(created["id"])
        assert again.status_code == 409
        assert "is rejected" in again.json()["detail"]

    def test_reason_is_required(self, api: Api, gpus: None) -> None:
        created = api.submit()
        response = api.request("POST", f"{BASE}/{created['id']}/reject", ADMIN, json={})
        assert response.status_code == 422
        assert response.json()["detail"].startswith("reason:")

    def test_requester_cannot_reject(self, api: Api, gpus: None) -> None:
        created = api.submit()
        response = api.request("POST", f"{BASE}/{created['id']}/reject", json={"reason": "x"})
        assert response.status_code == 403


class TestWithdraw:
    def test_anonymous_is_401(self, api: Api) -> None:
        assert api.request("POST", f"{BASE}/1/withdraw", None).status_code == 401

    def test_requester_withdraws(self, api: Api, gpus: None) -> None:
        created = api.submit()
        response = api.request("POST", f"{BASE}/{created['id']}/withdraw")
        assert response.status_code == 200
        assert response.json()["status"] == "withdrawn"
        again = api.request("POST", f"{BASE}/{created['id']}/withdraw")
        assert again.status_code == 409
        assert "is withdrawn" in again.json()["detail"]

    def test_colleague_is_403_and_other_agency_404(self, api: Api, gpus: None) -> None:
        created = api.submit()
        url = f"{BASE}/{created['id']}/withdraw"
        assert api.request("POST", url, KIRUNA_COLLEAGUE).status_code == 403
        assert api.request("POST", url, LULEA_REQUESTER).status_code == 404
        assert api.request("POST", url, ADMIN).status_code == 403


def _no_gpu() -> dict[str, Any]:
    return {"gpus": 0, "cpu": 2, "memory_gib": 8, "storage_gib": 10}
