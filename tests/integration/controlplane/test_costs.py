"""Price lists and the monthly cost report: API, CSV = JSON, totals, scope, CLI (issue 7).

Usage enters as ``usage_daily`` rows (and their monthly summary, which the report reads) through
the metering's own upsert, so the figures are known, and every expected amount is worked out by
hand in comments.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from controlplane import cli
from controlplane.audit.service import Actor
from controlplane.costs import service
from controlplane.costs.pricing import Month
from controlplane.costs.schemas import PriceListIn
from controlplane.database import Database
from controlplane.metering.repository import UsageRepository
from controlplane.models import (
    Agency,
    AgencyKind,
    AiActRisk,
    DataClassification,
    PriceList,
    RequestStatus,
    SandboxRequest,
    Tenant,
    TenantStatus,
)
from tests.fixtures.tokens import (
    ADMIN,
    KIRUNA,
    KIRUNA_REQUESTER,
    LULEA,
    LULEA_REQUESTER,
    NO_AGENCY,
)
from tests.integration.controlplane.conftest import Api

A100 = "NVIDIA-A100-SXM4-80GB"
L4 = "NVIDIA-L4"
HOUR = 3600.0
DAY = 86400.0
PRICES = "/api/v1/price-lists"
REPORT = "/api/v1/reports/costs"
TEST_ACTOR = Actor("test-admin", "test")


# Factories (also used by test_budgets.py)


def make_tenant(session: Session, slug: str, organisation_number: str = KIRUNA) -> Tenant:
    compact = organisation_number.replace("-", "")
    agency = session.scalars(
        select(Agency).where(Agency.organisation_number == compact)
    ).first() or Agency(
        organisation_number=compact,
        name={"2120002742": "Kiruna kommun", "2120002692": "Luleå kommun"}.get(compact, "Annan"),
        kind=AgencyKind.MUNICIPALITY,
    )
    request = SandboxRequest(
        name=slug,
        agency=agency,
        requester_subject="someone",
        requester_name="Someone",
        purpose="Cost tests.",
        legal_basis="Kommunallagen.",
        data_classification=DataClassification.INTERNAL,
        ai_act_risk=AiActRisk.MINIMAL,
        requested_quota={},
        end_date=date(2030, 1, 1),
        status=RequestStatus.APPROVED,
    )
    tenant = Tenant(
        slug=slug,
        request=request,
        agency=agency,
        status=TenantStatus.READY,
        gpus=0,
        gpu_model=None,
        cpu=8,
        memory_gib=32,
        storage_gib=100,
        expires_on=date(2030, 1, 1),
    )
    session.add(tenant)
    session.flush()
    return tenant


def add_usage(
    session: Session,
    tenant: Tenant,
    day: date,
    gpu_model: str = "",
    *,
    gpu_hours: float = 0,
    cpu_core_hours: float = 0,
    memory_gib_hours: float = 0,
    storage_gib_days: float = 0,
) -> None:
    # Through the metering's own upsert, which also keeps the monthly summary the report reads.
    UsageRepository(session).add_daily(
        tenant.id,
        day,
        gpu_model,
        gpu_seconds=gpu_hours * HOUR,
        cpu_core_seconds=cpu_core_hours * HOUR,
        memory_gib_seconds=memory_gib_hours * HOUR,
        storage_gib_seconds=storage_gib_days * DAY,
    )
    session.flush()


def add_prices(
    session: Session,
    effective_from: date,
    *,
    gpu: dict[str, str],
    cpu: str,
    memory: str,
    storage: str,
) -> None:
    """A price list version, published the day before it takes effect (as the API requires)."""
    body = PriceListIn(
        effective_from=effective_from,
        gpu_hour_sek={model: Decimal(value) for model, value in gpu.items()},
        cpu_core_hour_sek=Decimal(cpu),
        memory_gib_hour_sek=Decimal(memory),
        storage_gib_month_sek=Decimal(storage),
    )
    service.create_price_list(session, TEST_ACTOR, body, effective_from - timedelta(days=1))


def october(session: Session) -> None:
    """Two price lists (1 and 16 October 2026), two Kiruna tenants and one Luleå tenant."""
    add_prices(
        session,
        date(2026, 10, 1),
        gpu={A100: "40.00", L4: "12.00"},
        cpu="0.50",
        memory="0.05",
        storage="3.00",
    )
    add_prices(
        session,
        date(2026, 10, 16),
        gpu={A100: "50.00", L4: "15.00"},
        cpu="0.60",
        memory="0.10",
        storage="6.00",
    )
    kiruna_a = make_tenant(session, "kiruna-a")
    kiruna_b = make_tenant(session, "kiruna-b")
    lulea = make_tenant(session, "lulea-x", LULEA)
    # Outside the month: must not count.
    add_usage(session, kiruna_a, date(2026, 9, 30), A100, gpu_hours=100, cpu_core_hours=100)
    add_usage(session, kiruna_a, date(2026, 11, 1), A100, gpu_hours=100, cpu_core_hours=100)
    # kiruna-a: GPU 10 h × 40 + 2.5 h × 50 = 525.00; CPU 80 × 0.50 + 10 × 0.60 = 46.00;
    # memory 320 × 0.05 + 40 × 0.10 = 20.00; storage 300/30 × 3 + 300/30 × 6 = 90.00 → 681.00
    add_usage(
        session,
        kiruna_a,
        date(2026, 10, 10),
        A100,
        gpu_hours=10,
        cpu_core_hours=80,
        memory_gib_hours=320,
    )
    add_usage(session, kiruna_a, date(2026, 10, 10), storage_gib_days=300)
    add_usage(
        session,
        kiruna_a,
        date(2026, 10, 20),
        A100,
        gpu_hours=2.5,
        cpu_core_hours=10,
        memory_gib_hours=40,
    )
    add_usage(session, kiruna_a, date(2026, 10, 20), storage_gib_days=300)
    # kiruna-b: L4 1 h × 12 + 1 h × 15 = 27.00; CPU 0.01 h × 0.50 = 0.005 → 0.01 → 27.01
    add_usage(session, kiruna_b, date(2026, 10, 5), L4, gpu_hours=1, cpu_core_hours=0.01)
    add_usage(session, kiruna_b, date(2026, 10, 25), L4, gpu_hours=1)
    # lulea-x: CPU 24 h × 0.60 = 14.40
    add_usage(session, lulea, date(2026, 10, 31), cpu_core_hours=24)
    session.commit()


def _money(value: str) -> Decimal:
    return Decimal(value)


class TestPriceLists:
    body: dict[str, Any] = {  # noqa: RUF012 - read-only test data
        "gpu_hour_sek": {A100: "45.50", L4: 12},
        "cpu_core_hour_sek": "0.45",
        "memory_gib_hour_sek": 0.06,
        "storage_gib_month_sek": "2.5",
        "note": "2027 prices",
    }

    def _future(self, days: int = 30) -> str:
        return (service.today("Europe/Stockholm") + timedelta(days=days)).isoformat()

    def test_anonymous_401_non_admin_403(self, api: Api) -> None:
        assert api.request("GET", PRICES, None).status_code == 401
        body = {**self.body, "effective_from": self._future()}
        assert api.request("POST", PRICES, None, json=body).status_code == 401
        assert api.request("POST", PRICES, KIRUNA_REQUESTER, json=body).status_code == 403

    def test_admin_publishes_a_future_version(self, api: Api, session: Session) -> None:
        response = api.request(
            "POST", PRICES, ADMIN, json={**self.body, "effective_from": self._future()}
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["status"] == "scheduled"
        assert created["gpu_hour_sek"] == {A100: "45.5000", L4: "12.0000"}
        assert created["memory_gib_hour_sek"] == "0.0600"
        assert created["currency"] == "SEK"
        stored = session.get(PriceList, created["id"])
        assert stored is not None and stored.cpu_core_hour_sek == Decimal("0.4500")
        listed = api.request("GET", PRICES, KIRUNA_REQUESTER).json()
        assert [p["id"] for p in listed] == [created["id"]]

    @pytest.mark.parametrize("days", [0, -1, -400])
    def test_today_or_past_is_refused(self, api: Api, days: int, session: Session) -> None:
        response = api.request(
            "POST", PRICES, ADMIN, json={**self.body, "effective_from": self._future(days)}
        )
        assert response.status_code == 422
        assert response.json()["detail"].startswith("effective_from:")
        assert "cannot change" in response.json()["detail"]
        assert session.scalars(select(PriceList)).all() == []

    def test_history_is_immutable_and_statuses_follow_the_calendar(
        self, api: Api, session: Session
    ) -> None:
        today = service.today("Europe/Stockholm")
        add_prices(
            session, today - timedelta(days=60), gpu={A100: "1"}, cpu="1", memory="1", storage="1"
        )
        add_prices(
            session, today - timedelta(days=10), gpu={A100: "2"}, cpu="2", memory="2", storage="2"
        )
        session.commit()
        scheduled = api.request(
            "POST", PRICES, ADMIN, json={**self.body, "effective_from": self._future()}
        ).json()
        listed = api.request("GET", PRICES, ADMIN).json()
        assert [p["status"] for p in listed] == ["superseded", "in_force", "scheduled"]
        # Neither an applied version can be withdrawn nor a second one added on the same day.
        response = api.request("DELETE", f"{PRICES}/{listed[1]['id']}", ADMIN)
        assert response.status_code == 409
        again = api.request(
            "POST", PRICES, ADMIN, json={**self.body, "effective_from": self._future()}
        )
        assert again.status_code == 409
        # A scheduled one can, by an admin only.
        url = f"{PRICES}/{scheduled['id']}"
        assert api.request("DELETE", url, KIRUNA_REQUESTER).status_code == 403
        assert api.request("DELETE", url, ADMIN).status_code == 204
        assert api.request("DELETE", url, ADMIN).status_code == 404
        assert len(api.request("GET", PRICES, ADMIN).json()) == 2

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"cpu_core_hour_sek": "-1"}, "cpu_core_hour_sek"),
            ({"cpu_core_hour_sek": "0.12345"}, "cpu_core_hour_sek"),
            ({"memory_gib_hour_sek": "lots"}, "memory_gib_hour_sek"),
            ({"gpu_hour_sek": {"": "1"}}, "gpu_hour_sek"),
            ({"effective_from": "2026-02-30"}, "effective_from"),
            ({"surprise": 1}, "surprise"),
        ],
    )
    def test_bad_input_is_422_naming_the_field(
        self, api: Api, change: dict[str, Any], field: str
    ) -> None:
        body = {**self.body, "effective_from": self._future(), **change}
        response = api.request("POST", PRICES, ADMIN, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["detail"].startswith(field)


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


class TestCostReport:
    def test_month_spanning_a_price_change(self, api: Api, session: Session) -> None:
        october(session)
        response = api.request("GET", REPORT, ADMIN, params={"month": "2026-10"})
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["month"] == "2026-10"
        assert report["timezone"] == "Europe/Stockholm"
        assert [(p["first_day"], p["last_day"]) for p in report["price_lists"]] == [
            ("2026-10-01", "2026-10-15"),
            ("2026-10-16", "2026-10-31"),
        ]
        kiruna, lulea = report["agencies"]
        assert (kiruna["organisation_number"], lulea["organisation_number"]) == (KIRUNA, LULEA)
        a, b = kiruna["tenants"]
        assert a == {
            "tenant": "kiruna-a",
            "gpu_hours": {A100: "12.5000"},
            "gpu_cost_sek": {A100: "525.00"},
            "cpu_core_hours": "90.0000",
            "cpu_cost_sek": "46.00",
            "memory_gib_hours": "360.0000",
            "memory_cost_sek": "20.00",
            "storage_gib_days": "600.0000",
            "storage_cost_sek": "90.00",
            "total_sek": "681.00",
        }
        assert b["gpu_cost_sek"] == {L4: "27.00"}
        assert b["cpu_cost_sek"] == "0.01"
        assert b["total_sek"] == "27.01"
        assert lulea["tenants"][0]["total_sek"] == "14.40"
        assert kiruna["totals"]["total_sek"] == "708.01"
        assert kiruna["totals"]["gpu_hours"] == {A100: "12.5000", L4: "2.0000"}
        assert report["total_sek"] == "722.41"
        assert report["unpriced"] == []

    def test_agency_totals_equal_the_sum_of_their_lines(self, api: Api, session: Session) -> None:
        october(session)
        report = api.request("GET", REPORT, ADMIN, params={"month": "2026-10"}).json()
        columns = [
            "cpu_core_hours",
            "cpu_cost_sek",
            "memory_gib_hours",
            "memory_cost_sek",
            "storage_gib_days",
            "storage_cost_sek",
            "total_sek",
        ]
        for agency in report["agencies"]:
            for column in columns:
                assert _money(agency["totals"][column]) == sum(
                    (_money(line[column]) for line in agency["tenants"]), Decimal(0)
                ), (agency["name"], column)
            for per_model in ("gpu_hours", "gpu_cost_sek"):
                for model, value in agency["totals"][per_model].items():
                    assert _money(value) == sum(
                        (_money(line[per_model].get(model, "0")) for line in agency["tenants"]),
                        Decimal(0),
                    )
        assert _money(report["total_sek"]) == sum(
            (_money(a["totals"]["total_sek"]) for a in report["agencies"]), Decimal(0)
        )

    def test_csv_and_json_agree(self, api: Api, session: Session) -> None:
        october(session)
        params = {"month": "2026-10"}
        report = api.request("GET", REPORT, ADMIN, params=params).json()
        response = api.request("GET", REPORT, ADMIN, params={**params, "format": "csv"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert "costs-2026-10.csv" in response.headers["content-disposition"]
        rows = _csv_rows(response.text)
        expected: list[tuple[str, str, dict[str, Any]]] = []
        for agency in report["agencies"]:
            expected += [("tenant", line["tenant"], line) for line in agency["tenants"]]
            expected.append(("agency_total", "", agency["totals"]))
        assert len(rows) == len(expected)
        models = sorted({m for a in report["agencies"] for m in a["totals"]["gpu_hours"]})
        for row, (kind, tenant, items) in zip(rows, expected, strict=True):
            assert (row["month"], row["line"], row["tenant"]) == ("2026-10", kind, tenant)
            for model in models:
                assert row[f"gpu_hours:{model}"] == items["gpu_hours"].get(model, "")
                assert row[f"gpu_cost_sek:{model}"] == items["gpu_cost_sek"].get(model, "")
            for column in service.CSV_FIXED:
                assert row[column] == items[column], (tenant, column)
        # and the CSV's own totals hold too
        kiruna_lines = [r for r in rows if r["line"] == "tenant" and r["tenant"].startswith("k")]
        kiruna_total = next(r for r in rows if r["line"] == "agency_total")
        assert _money(kiruna_total["total_sek"]) == sum(
            (_money(r["total_sek"]) for r in kiruna_lines), Decimal(0)
        )

    def test_usage_before_any_price_list_is_flagged(self, api: Api, session: Session) -> None:
        tenant = make_tenant(session, "early")
        add_usage(session, tenant, date(2026, 3, 3), L4, gpu_hours=2, cpu_core_hours=2)
        session.commit()
        report = api.request("GET", REPORT, ADMIN, params={"month": "2026-03"}).json()
        line = report["agencies"][0]["tenants"][0]
        assert line["gpu_hours"] == {L4: "2.0000"}
        assert line["total_sek"] == "0.00"
        assert report["unpriced"] == [
            {"tenant": "early", "first_day": "2026-03-01", "last_day": "2026-03-31", "what": "all"}
        ]

    def test_scope(self, api: Api, session: Session) -> None:
        october(session)
        params = {"month": "2026-10"}
        assert api.request("GET", REPORT, None, params=params).status_code == 401
        own = api.request("GET", REPORT, KIRUNA_REQUESTER, params=params).json()
        assert [a["organisation_number"] for a in own["agencies"]] == [KIRUNA]
        assert own["total_sek"] == "708.01"
        named = api.request(
            "GET", REPORT, KIRUNA_REQUESTER, params={**params, "agency": "2120002742"}
        )
        assert named.json()["total_sek"] == "708.01"
        other = api.request("GET", REPORT, KIRUNA_REQUESTER, params={**params, "agency": LULEA})
        assert other.status_code == 403
        assert api.request("GET", REPORT, NO_AGENCY, params=params).status_code == 403
        lulea = api.request("GET", REPORT, LULEA_REQUESTER, params=params).json()
        assert lulea["total_sek"] == "14.40"
        filtered = api.request("GET", REPORT, ADMIN, params={**params, "agency": LULEA}).json()
        assert [a["name"] for a in filtered["agencies"]] == ["Luleå kommun"]
        unknown = api.request("GET", REPORT, ADMIN, params={**params, "agency": "556036-0793"})
        assert unknown.json()["agencies"] == []

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"month": "2026-13"}, "month"),
            ({"month": "oktober"}, "month"),
            ({}, "month"),
            ({"month": "2026-10", "agency": "212000-2743"}, "agency"),
            ({"month": "2026-10", "format": "xml"}, "format"),
        ],
    )
    def test_bad_query_is_422_naming_it(self, api: Api, params: dict[str, str], field: str) -> None:
        response = api.request("GET", REPORT, ADMIN, params=params)
        assert response.status_code == 422
        assert response.json()["detail"].startswith(f"{field}:"), response.json()


def test_cli_report_matches_the_api(api: Api, session: Session, fresh_database_url: str) -> None:
    database = Database.from_url(fresh_database_url)
    with database.session() as fresh:
        october(fresh)
    database.dispose()
    env = {"SANDLADA_DATABASE_URL": fresh_database_url, "SANDLADA_ENVIRONMENT": "test"}
    runner = CliRunner()
    result = runner.invoke(cli.app, ["report", "costs", "--month", "2026-10"], env=env)
    assert result.exit_code == 0, result.output
    # The same figures through the API on another database with the same rows.
    october(session)
    api_csv = api.request("GET", REPORT, ADMIN, params={"month": "2026-10", "format": "csv"})
    assert result.stdout == api_csv.text
    as_json = runner.invoke(
        cli.app,
        ["report", "costs", "--month", "2026-10", "--agency", LULEA, "--format", "json"],
        env=env,
    )
    assert as_json.exit_code == 0, as_json.output
    assert '"total_sek": "14.40"' in as_json.stdout
    bad = runner.invoke(cli.app, ["report", "costs", "--month", "2026-1"], env=env)
    assert bad.exit_code == 2
    assert "--month" in bad.stderr


def test_tenant_month_cost_is_the_report_total(session: Session) -> None:
    october(session)
    tenant = session.scalars(select(Tenant).where(Tenant.slug == "kiruna-a")).one()
    assert service.tenant_month_cost(
        session, tenant.id, Month(2026, 10), "Europe/Stockholm"
    ) == Decimal("681.00")
