"""GET /api/v1/tenants/{slug}/usage: per-day series for members and platform admins only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.metering import service
from controlplane.metering.intervals import EndSource, PodInterval, Requests
from controlplane.models import Tenant
from tests.fixtures.tokens import ADMIN, KIRUNA_COLLEAGUE, LULEA_REQUESTER, Persona
from tests.integration.controlplane.conftest import Api

STOCKHOLM = ZoneInfo("Europe/Stockholm")
L4 = "NVIDIA-L4"


@pytest.fixture
def slug(api: Api, gpus: None) -> str:
    created = api.submit()
    response = api.approve(created["id"])
    assert response.status_code == 200, response.text
    slug: str = response.json()["tenant"]["slug"]
    return slug


def member(slug: str) -> Persona:
    return Persona("m-1", "maja", None, groups=(f"/t-{slug}-members",))


def url(slug: str) -> str:
    return f"/api/v1/tenants/{slug}/usage"


def record_pod(session: Session, slug: str, start: datetime, hours: float) -> None:
    tenant_id = session.scalars(select(Tenant.id).where(Tenant.slug == slug)).one()
    pod = PodInterval(
        uid=f"uid-{start.isoformat()}",
        namespace=f"t-{slug}",
        name="p",
        node_name="kwok-l4-0",
        requests=Requests(cpu_cores=4.0, memory_gib=16.0, gpus=2, gpu_resource="nvidia.com/gpu"),
        started_at=start,
        ended_at=start + timedelta(hours=hours),
        end_source=EndSource.FINISHED,
    )
    service.record_pod(
        session,
        tenant_id=tenant_id,
        interval=pod,
        gpu_model=L4,
        now=datetime.now(UTC),
        zone=STOCKHOLM,
    )
    session.commit()


class TestUsage:
    def test_anonymous_is_401(self, api: Api, slug: str) -> None:
        params = {"from": "2026-11-01", "to": "2026-11-02"}
        assert api.request("GET", url(slug), None, params=params).status_code == 401

    def test_other_agency_is_404_and_non_member_403(self, api: Api, slug: str) -> None:
        params = {"from": "2026-11-01", "to": "2026-11-02"}
        assert api.request("GET", url(slug), LULEA_REQUESTER, params=params).status_code == 404
        assert api.request("GET", url(slug), KIRUNA_COLLEAGUE, params=params).status_code == 403

    def test_series_per_day_for_member_and_admin(
        self, api: Api, slug: str, session: Session
    ) -> None:
        # 23:00 UTC on 3 Nov is midnight on 4 Nov in Stockholm: all 3 hours fall on the 4th.
        record_pod(session, slug, datetime(2026, 11, 3, 23, 0, tzinfo=UTC), 3.0)
        # 22:30 UTC on 5 Nov is 23:30 local: 30 minutes on the 5th, 1 h on the 6th.
        record_pod(session, slug, datetime(2026, 11, 5, 22, 30, tzinfo=UTC), 1.5)
        params = {"from": "2026-11-03", "to": "2026-11-06", "step": "day"}
        response = api.request("GET", url(slug), member(slug), params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["from"] == "2026-11-03"
        assert body["timezone"] == "Europe/Stockholm"
        days = {d["day"]: d for d in body["days"]}
        assert list(days) == ["2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06"]
        assert days["2026-11-03"]["gpu_hours"] == {}
        assert days["2026-11-04"]["gpu_hours"] == {L4: pytest.approx(6.0)}
        assert days["2026-11-04"]["cpu_core_hours"] == pytest.approx(12.0)
        assert days["2026-11-04"]["memory_gib_hours"] == pytest.approx(48.0)
        assert days["2026-11-05"]["gpu_hours"] == {L4: pytest.approx(1.0)}
        assert days["2026-11-06"]["gpu_hours"] == {L4: pytest.approx(2.0)}
        assert body["total"]["gpu_hours"] == {L4: pytest.approx(9.0)}
        assert body["total"]["storage_gib_days"] == 0.0
        admin = api.request("GET", url(slug), ADMIN, params=params)
        assert admin.status_code == 200
        assert admin.json() == body

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"from": "2026-13-01", "to": "2026-11-02"}, "from"),
            ({"from": "2026-11-01", "to": "yesterday"}, "to"),
            ({"from": "2026-11-01", "to": "2026-11-31"}, "to"),
            ({"from": "2026-11-05", "to": "2026-11-01"}, "from"),
            ({"from": "2020-01-01", "to": "2026-11-01"}, "to"),
            ({"to": "2026-11-01"}, "from"),
            ({"from": "9999-12-31", "to": "9999-12-31"}, "from"),
            ({"from": "2026-11-01", "to": "0001-01-01"}, "to"),
            ({"from": "2026-11-01", "to": "2026-11-02", "step": "hour"}, "step"),
        ],
    )
    def test_bad_parameters_are_422_naming_them(
        self, api: Api, slug: str, params: dict[str, str], field: str
    ) -> None:
        response = api.request("GET", url(slug), ADMIN, params=params)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid_input"
        assert response.json()["field"] == field
