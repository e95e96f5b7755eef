"""GET /api/v1/tenants and /api/v1/tenants/{slug}: who sees which tenant."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.models import Tenant
from controlplane.tenancy import service as tenancy
from controlplane.tenancy.schemas import TenantOut
from tests.fixtures.tokens import (
    ADMIN,
    KIRUNA_COLLEAGUE,
    LULEA,
    LULEA_REQUESTER,
    NO_AGENCY,
    Persona,
)
from tests.integration.controlplane.conftest import Api

BASE = "/api/v1/tenants"
NO_GPU = {"gpus": 0, "cpu": 2, "memory_gib": 8, "storage_gib": 10}


def _tenant(api: Api, persona: Persona | None = None, **overrides: Any) -> dict[str, Any]:
    created = api.submit(persona, **overrides) if persona else api.submit(**overrides)
    response = api.approve(created["id"])
    assert response.status_code == 200, response.text
    tenant: dict[str, Any] = response.json()["tenant"]
    return tenant


def _lulea(api: Api) -> dict[str, Any]:
    agency = {"name": "Luleå kommun", "organisation_number": LULEA, "kind": "municipality"}
    return _tenant(api, LULEA_REQUESTER, name="Luleå språkmodell", agency=agency, quota=NO_GPU)


class TestListTenants:
    def test_anonymous_is_401(self, api: Api) -> None:
        assert api.request("GET", BASE, None).status_code == 401

    def test_scoped_to_agency_and_groups(self, api: Api, gpus: None) -> None:
        kiruna = _tenant(api)
        lulea = _lulea(api)
        assert lulea["slug"] == "lulea-sprakmodell"
        assert [t["slug"] for t in api.request("GET", BASE, KIRUNA_COLLEAGUE).json()] == [
            kiruna["slug"]
        ]
        assert [t["slug"] for t in api.request("GET", BASE, ADMIN).json()] == [
            kiruna["slug"],
            lulea["slug"],
        ]
        assert api.request("GET", BASE, NO_AGENCY).json() == []
        member = Persona("m", "m", None, groups=(f"/t-{lulea['slug']}-members",))
        assert [t["slug"] for t in api.request("GET", BASE, member).json()] == [lulea["slug"]]

    def test_list_document_is_what_the_model_renders(
        self, api: Api, gpus: None, session: Session
    ) -> None:
        # The list route writes its JSON without building TenantOut objects; it must read
        # exactly as the model would render each tenant (same keys, order, date formats).
        _tenant(api)
        _lulea(api)
        listed = api.request("GET", BASE, ADMIN)
        assert listed.status_code == 200
        expected = [
            tenancy.tenant_out(tenant).model_dump(mode="json")
            for tenant in sorted(session.scalars(select(Tenant)), key=lambda t: t.slug)
        ]
        assert listed.json() == expected
        assert list(listed.json()[0]) == list(TenantOut.model_fields)
        assert listed.content == TypeAdapter(list[TenantOut]).dump_json(
            [TenantOut.model_validate(item) for item in expected]
        )

    def test_paging(self, api: Api, gpus: None) -> None:
        slugs = sorted(_tenant(api, name=f"p{i}", quota=NO_GPU)["slug"] for i in range(3))
        page = api.request("GET", BASE, ADMIN, params={"limit": 2, "offset": 1}).json()
        assert [t["slug"] for t in page] == slugs[1:3]
        assert api.request("GET", BASE, ADMIN, params={"limit": 0}).status_code == 422


class TestGetTenant:
    def test_anonymous_is_401(self, api: Api) -> None:
        assert api.request("GET", f"{BASE}/x", None).status_code == 401

    def test_shape(self, api: Api, gpus: None) -> None:
        tenant = _tenant(api)
        body = api.request("GET", f"{BASE}/{tenant['slug']}").json()
        assert body["slug"] == "kiruna-ai-pilot"
        assert body["agency"]["organisation_number"] == "212000-2742"
        assert body["status"] == "provisioning"
        assert body["quota"]["gpus"] == 2

    def test_other_agency_is_404_member_of_group_sees_it(self, api: Api, gpus: None) -> None:
        tenant = _tenant(api)
        url = f"{BASE}/{tenant['slug']}"
        response = api.request("GET", url, LULEA_REQUESTER)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        admin_of_it = Persona("a", "a", LULEA, groups=(f"t-{tenant['slug']}-admins",))
        assert api.request("GET", url, admin_of_it).status_code == 200

    def test_unknown_and_invalid_slugs_are_404(self, api: Api) -> None:
        assert api.request("GET", f"{BASE}/nope", ADMIN).status_code == 404
        assert api.request("GET", f"{BASE}/Not_A_Slug", ADMIN).status_code == 404
