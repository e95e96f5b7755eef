"""The notebook launch API refuses new notebooks once an enforced budget is spent (issue 7).

The refusal comes before anything touches the cluster, so no cluster is configured here: with
the budget spent the launch is a 409 ``budget_exceeded``; without enforcement the same launch
goes on to the cluster step (and stops there, since none is configured).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from controlplane.costs import service
from tests.fixtures.tokens import Persona
from tests.integration.controlplane.conftest import Api
from tests.integration.controlplane.test_costs import add_prices, add_usage, make_tenant

SLUG = "kiruna-a"
TENANT_ADMIN = Persona("a-1", "alva", None, groups=(f"t-{SLUG}-admins",))
LAUNCH = f"/api/v1/tenants/{SLUG}/notebooks"
BUDGET = f"/api/v1/tenants/{SLUG}/budget"


@pytest.fixture
def spent(session: Session) -> None:
    """120 SEK spent this month (CPU at 1 SEK per core-hour)."""
    today = service.today("Europe/Stockholm")
    add_prices(session, today - timedelta(days=40), gpu={}, cpu="1.00", memory="0", storage="0")
    tenant = make_tenant(session, SLUG)
    add_usage(session, tenant, today, cpu_core_hours=120)
    session.commit()


def test_launch_refused_over_budget_when_enforced(api: Api, spent: None) -> None:
    api.request("PUT", BUDGET, TENANT_ADMIN, json={"monthly_sek": 100, "enforce": True})
    response = api.request(
        "POST", LAUNCH, TENANT_ADMIN, json={"name": "analys", "profile": "cpu-small"}
    )
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["error"] == "budget_exceeded"
    assert "120.00 of its 100.00 SEK budget" in body["detail"]
    swedish = api.request(
        "POST",
        LAUNCH,
        TENANT_ADMIN,
        json={"name": "analys", "profile": "cpu-small"},
        headers={"Accept-Language": "sv-SE"},
    )
    assert swedish.status_code == 409, swedish.text
    assert "förbrukat sin budget" in swedish.json()["detail"]
    assert "(120.00 av 100.00 kr)" in swedish.json()["detail"]


def test_launch_not_refused_when_not_enforced(api: Api, spent: None) -> None:
    api.request("PUT", BUDGET, TENANT_ADMIN, json={"monthly_sek": 100, "enforce": False})
    response = api.request(
        "POST", LAUNCH, TENANT_ADMIN, json={"name": "analys", "profile": "cpu-small"}
    )
    # Past the budget check, the launch reaches the cluster step.
    assert response.json()["error"] == "cluster_not_configured", response.text
