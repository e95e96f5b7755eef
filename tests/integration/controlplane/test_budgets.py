"""Tenant budgets: API, alerts at 80 % and 100 % exactly once, webhook delivery, enforcement.

The webhook receiver is a real HTTP server on loopback; alerts are evaluated with the same
``run_once`` the app's loop and ``sandlada budgets evaluate`` use, on a committed database.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from controlplane import cli
from controlplane.costs import budgets, service
from controlplane.costs.budgets import BudgetExceededError, ensure_launch_allowed
from controlplane.costs.schemas import BudgetIn
from controlplane.database import Database
from controlplane.metering.days import day_start
from controlplane.models import BudgetAlert, Tenant, UsageDaily, UsageInterval
from infra.process import free_port
from tests.fixtures.tokens import ADMIN, LULEA_REQUESTER, Persona
from tests.integration.controlplane.conftest import Api
from tests.integration.controlplane.test_costs import TEST_ACTOR, add_prices, add_usage, make_tenant

TZ = "Europe/Stockholm"
SLUG = "kiruna-a"
MEMBER = Persona("m-1", "maja", None, groups=(f"t-{SLUG}-members",))
TENANT_ADMIN = Persona("a-1", "alva", None, groups=(f"/t-{SLUG}-admins",))
URL = f"/api/v1/tenants/{SLUG}/budget"


@dataclass
class Receiver:
    """A webhook receiver: records every POST, answers with the next queued status (200)."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def thresholds(self) -> list[int]:
        return [body["threshold_percent"] for body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server_ref: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state = server_ref["r"]
            length = int(self.headers.get("Content-Length", "0"))
            state.received.append(json.loads(self.rfile.read(length)))
            state.keys.append(self.headers.get("Idempotency-Key", ""))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    server_ref["r"] = Receiver(url=f"http://127.0.0.1:{port}/hooks/budget")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_ref["r"]
    finally:
        server.shutdown()
        server.server_close()


def _today() -> date:
    return service.today(TZ)


def _setup_spending(database: Database, *, enforce: bool = False) -> None:
    """A tenant with a 100 SEK budget, CPU at 1 SEK per core-hour, 50 core-hours used today."""
    with database.session() as session:
        add_prices(
            session,
            _today() - timedelta(days=40),
            gpu={},
            cpu="1.00",
            memory="0",
            storage="0",
        )
        tenant = make_tenant(session, SLUG)
        add_usage(session, tenant, _today(), cpu_core_hours=50)
        budgets.set_budget(
            session, TEST_ACTOR, tenant, BudgetIn(monthly_sek=Decimal(100), enforce=enforce), TZ
        )
        session.commit()


def _spend(database: Database, core_hours: float) -> None:
    """Set today's metered CPU to ``core_hours`` (what the rollup does as usage accrues)."""
    with database.session() as session:
        session.execute(
            update(UsageDaily)
            .where(UsageDaily.day == _today())
            .values(cpu_core_seconds=core_hours * 3600)
        )
        session.commit()


def _alerts(database: Database) -> list[BudgetAlert]:
    with database.session() as session:
        return list(session.scalars(select(BudgetAlert).order_by(BudgetAlert.id)))


@pytest.fixture
def committed(fresh_database_url: str) -> Iterator[Database]:
    database = Database.from_url(fresh_database_url)
    yield database
    database.dispose()


def test_each_alert_fires_once_at_80_and_100(committed: Database, receiver: Receiver) -> None:
    _setup_spending(committed)
    assert budgets.run_once(committed, TZ, receiver.url) == (0, 0)
    _spend(committed, 85)
    assert budgets.run_once(committed, TZ, receiver.url) == (1, 1)
    assert budgets.run_once(committed, TZ, receiver.url) == (0, 0)
    _spend(committed, 120)
    assert budgets.run_once(committed, TZ, receiver.url) == (1, 1)
    _spend(committed, 300)
    for _ in range(3):
        assert budgets.run_once(committed, TZ, receiver.url) == (0, 0)

    assert receiver.thresholds() == [80, 100]
    first = receiver.received[0]
    assert first["type"] == "budget.threshold_reached"
    assert first["tenant"] == SLUG
    assert first["agency"] == {"organisation_number": "212000-2742", "name": "Kiruna kommun"}
    assert first["month"] == str(service.current_month(TZ))
    assert (first["budget_sek"], first["spent_sek"]) == ("100.00", "85.00")
    assert receiver.received[1]["spent_sek"] == "120.00"
    month = first["month"]
    assert first["message"] == {
        "en": f"Tenant kiruna-a has used 80 % of its budget for {month} (85.00 of 100.00 SEK).",
        "sv": f"Miljön kiruna-a har förbrukat 80 % av sin budget för {month} (85.00 av 100.00 kr).",
    }
    assert receiver.keys == [body["id"] for body in receiver.received]
    alerts = _alerts(committed)
    assert [(a.threshold_percent, a.delivery_state, a.attempts) for a in alerts] == [
        (80, "delivered", 1),
        (100, "delivered", 1),
    ]


def test_both_thresholds_at_once_and_concurrent_evaluations_record_once(
    committed: Database, receiver: Receiver
) -> None:
    _setup_spending(committed)
    _spend(committed, 150)
    results: list[tuple[int, int]] = []

    def evaluate() -> None:
        results.append(budgets.run_once(committed, TZ, receiver.url))

    threads = [threading.Thread(target=evaluate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(recorded for recorded, _ in results) == 2
    assert sorted(receiver.thresholds()) == [80, 100]
    assert len(_alerts(committed)) == 2


def test_failed_delivery_is_kept_and_retried(committed: Database, receiver: Receiver) -> None:
    _setup_spending(committed)
    _spend(committed, 90)
    receiver.statuses = [503]
    now = datetime.now(UTC)
    assert budgets.run_once(committed, TZ, receiver.url, now=now) == (1, 0)
    (alert,) = _alerts(committed)
    assert (alert.delivery_state, alert.attempts, alert.last_error) == ("pending", 1, "HTTP 503")
    assert alert.next_attempt_at is not None and alert.next_attempt_at > now
    # Not due yet: nothing is sent.
    assert budgets.run_once(committed, TZ, receiver.url, now=now) == (0, 0)
    assert len(receiver.received) == 1
    later = alert.next_attempt_at + timedelta(seconds=1)
    assert budgets.run_once(committed, TZ, receiver.url, now=later) == (0, 1)
    (alert,) = _alerts(committed)
    assert (alert.delivery_state, alert.attempts, alert.last_error) == ("delivered", 2, None)
    # The same event twice, with the same id for the receiver to deduplicate.
    assert receiver.keys[0] == receiver.keys[1]
    assert receiver.thresholds() == [80, 80]


def test_unreachable_webhook_gives_up_but_keeps_the_event(committed: Database) -> None:
    _setup_spending(committed)
    _spend(committed, 90)
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    now = datetime.now(UTC)
    budgets.run_once(committed, TZ, dead, now=now, timeout=2)
    for attempt in range(1, budgets.MAX_ATTEMPTS):
        now += timedelta(hours=2)
        budgets.run_once(committed, TZ, dead, now=now, timeout=2)
        (alert,) = _alerts(committed)
        assert alert.attempts == attempt + 1
    (alert,) = _alerts(committed)
    assert alert.delivery_state == "failed"
    assert alert.last_error is not None and "ConnectError" in alert.last_error
    assert budgets.run_once(committed, TZ, dead, now=now + timedelta(days=1)) == (0, 0)


def test_without_a_webhook_alerts_are_recorded_as_skipped(committed: Database) -> None:
    _setup_spending(committed)
    _spend(committed, 100)
    assert budgets.run_once(committed, TZ, None) == (2, 0)
    assert [a.delivery_state for a in _alerts(committed)] == ["skipped", "skipped"]


def test_cli_evaluate(committed: Database, receiver: Receiver) -> None:
    _setup_spending(committed)
    _spend(committed, 81)
    env = {
        "SANDLADA_DATABASE_URL": committed.engine.url.render_as_string(hide_password=False),
        "SANDLADA_ENVIRONMENT": "test",
        "SANDLADA_BUDGET_WEBHOOK_URL": receiver.url,
    }
    result = CliRunner().invoke(cli.app, ["budgets", "evaluate"], env=env)
    assert result.exit_code == 0, result.output
    assert "1 alert(s) recorded, 1 delivered" in result.stdout
    assert receiver.thresholds() == [80]


class TestEnforcement:
    def _tenant(self, session: Session, *, enforce: bool, core_hours: float) -> Tenant:
        add_prices(
            session, _today() - timedelta(days=40), gpu={}, cpu="1.00", memory="0", storage="0"
        )
        tenant = make_tenant(session, SLUG)
        add_usage(session, tenant, _today(), cpu_core_hours=core_hours)
        budgets.set_budget(
            session, TEST_ACTOR, tenant, BudgetIn(monthly_sek=Decimal(100), enforce=enforce), TZ
        )
        return tenant

    def test_refuses_over_100_percent_when_enforced(self, session: Session) -> None:
        tenant = self._tenant(session, enforce=True, core_hours=100)
        with pytest.raises(BudgetExceededError) as caught:
            ensure_launch_allowed(session, tenant)
        assert caught.value.status_code == 409
        assert caught.value.code == "budget_exceeded"
        assert "100.00 of its 100.00 SEK budget" in caught.value.detail
        assert "nya notebooks kan inte startas" in caught.value.render("sv")

    def test_allows_below_100_percent(self, session: Session) -> None:
        ensure_launch_allowed(session, self._tenant(session, enforce=True, core_hours=99.99))

    def test_allows_over_100_percent_when_not_enforced(self, session: Session) -> None:
        ensure_launch_allowed(session, self._tenant(session, enforce=False, core_hours=500))

    def test_allows_without_budget(self, session: Session) -> None:
        ensure_launch_allowed(session, make_tenant(session, SLUG))


def test_a_running_pod_counts_before_it_is_rolled_up(session: Session) -> None:
    """An open interval (not yet in usage_daily) pushes the tenant over its enforced budget."""
    tenant = TestEnforcement()._tenant(session, enforce=True, core_hours=0)
    ensure_launch_allowed(session, tenant)
    now = datetime.now(UTC)
    month_start = day_start(service.current_month(TZ).first_day, ZoneInfo(TZ))
    session.add(
        UsageInterval(
            pod_uid="running-pod",
            tenant_id=tenant.id,
            namespace=f"t-{SLUG}",
            pod_name="nb-analys",
            node_name="node-1",
            gpu_model="",
            gpus=0,
            # 100 000 cores × the seconds since it started at 1 SEK per core-hour: over 100 SEK
            # after four seconds, whenever in the month the test runs.
            cpu_cores=100_000,
            memory_gib=1,
            started_at=max(now - timedelta(hours=2), month_start),
            last_seen_at=now,
        )
    )
    session.flush()
    with pytest.raises(BudgetExceededError):
        ensure_launch_allowed(session, tenant)
    assert len(budgets.evaluate(session, TZ, webhook_configured=False)) == 2


class TestBudgetApi:
    def test_who_may_read_and_set(self, api: Api, session: Session) -> None:
        make_tenant(session, SLUG)
        session.commit()
        body = {"monthly_sek": "2500.50", "enforce": True}
        assert api.request("GET", URL, None).status_code == 401
        assert api.request("GET", URL, MEMBER).status_code == 404  # no budget yet
        assert api.request("PUT", URL, MEMBER, json=body).status_code == 403
        assert api.request("PUT", URL, LULEA_REQUESTER, json=body).status_code == 404
        response = api.request("PUT", URL, TENANT_ADMIN, json=body)
        assert response.status_code == 200, response.text
        assert response.json()["monthly_sek"] == "2500.50"
        read = api.request("GET", URL, MEMBER).json()
        assert read["tenant"] == SLUG
        assert (read["monthly_sek"], read["enforce"], read["spent_sek"]) == (
            "2500.50",
            True,
            "0.00",
        )
        assert read["launches_refused"] is False
        assert read["updated_by"] == TENANT_ADMIN.sub
        changed = api.request("PUT", URL, ADMIN, json={"monthly_sek": 100})
        assert changed.json()["enforce"] is False
        assert api.request("DELETE", URL, MEMBER).status_code == 403
        assert api.request("DELETE", URL, TENANT_ADMIN).status_code == 204
        assert api.request("GET", URL, MEMBER).status_code == 404

    def test_shows_spending_and_alerts(self, api: Api, session: Session) -> None:
        add_prices(
            session, _today() - timedelta(days=40), gpu={}, cpu="1.00", memory="0", storage="0"
        )
        tenant = make_tenant(session, SLUG)
        add_usage(session, tenant, _today(), cpu_core_hours=120)
        session.commit()
        api.request("PUT", URL, TENANT_ADMIN, json={"monthly_sek": 100, "enforce": True})
        budgets.evaluate(session, TZ, webhook_configured=False)
        session.commit()
        read = api.request("GET", URL, MEMBER).json()
        assert (read["spent_sek"], read["percent_used"]) == ("120.00", "120.0")
        assert read["launches_refused"] is True
        assert [(a["threshold_percent"], a["delivery_state"]) for a in read["alerts"]] == [
            (80, "skipped"),
            (100, "skipped"),
        ]

    @pytest.mark.parametrize(
        "body",
        [
            {"monthly_sek": 0},
            {"monthly_sek": "-5"},
            {"monthly_sek": "10.001"},
            {"monthly_sek": "ten"},
            {"monthly_sek": 10, "extra": 1},
            {"enforce": True},
        ],
    )
    def test_bad_body_is_422(self, api: Api, session: Session, body: dict[str, Any]) -> None:
        make_tenant(session, SLUG)
        session.commit()
        response = api.request("PUT", URL, TENANT_ADMIN, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid_input"
