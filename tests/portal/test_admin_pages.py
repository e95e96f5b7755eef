"""The tenant page's budget and lifecycle parts in Chromium, in Swedish and English.

A platform admin asks for a sandbox for a fresh agency and approves it (the Tenant operator
makes it Ready on the local cluster), sets a monthly budget through the form (the field's
errors in both languages), starts a real notebook whose metered costs pass a 1-krona budget,
sees the 80 % and 100 % alerts the app's budget loop records and the launch refused, then
suspends, resumes and offboards the sandbox through the confirmation page. Every new page and
state is checked with axe-core in both languages and photographed (var/artifacts/portal/).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, cast

import pytest
from kubernetes import client as k8s
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from controlplane.models import AuditEvent, Tenant, TenantStatus
from infra.cluster.launcher import ClusterInfo
from infra.keycloak.realm import DEMO_ADMIN
from tenants.resource import GROUP, PLURAL, VERSION
from tests.fixtures.cluster import api_client
from tests.portal.conftest import (
    KeycloakUser,
    Portal,
    Shots,
    wait_for,
)
from tests.portal.test_journeys import _fill_request, check_both, new_context, set_language, sign_in

pytestmark = [pytest.mark.cluster, pytest.mark.keycloak, pytest.mark.timeout(900)]


@pytest.fixture
def admin(browser: Browser, portal: Portal) -> Iterator[Page]:
    context = new_context(browser, "en")
    page = context.new_page()
    sign_in(page, portal, DEMO_ADMIN.username, DEMO_ADMIN.password)
    yield page
    context.close()


def _new_tenant(page: Page, portal: Portal, agency: KeycloakUser) -> str:
    """A sandbox for ``agency``, asked for and approved by the admin; its slug."""
    name = f"adm-{uuid.uuid4().hex[:6]}"
    page.goto(portal.url + "/portal/requests/new")
    _fill_request(page, name, agency, gpus=0)
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("p.notice")).to_be_visible()
    request_id = int(page.url.split("?")[0].rsplit("/", 1)[1])
    page.goto(f"{portal.url}/portal/admin/requests/{request_id}")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("p.notice")).to_contain_text(f"Request {request_id} was approved")
    page.goto(f"{portal.url}/portal/requests/{request_id}")
    return page.locator(".facts a[href^='/portal/tenants/']").inner_text()


def _audit_actions(portal: Portal, slug: str) -> list[str]:
    with portal.database.session() as session:
        return list(
            session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.subject_type == "tenant", AuditEvent.subject_id == slug)
                .order_by(AuditEvent.id)
            )
        )


def _status(portal: Portal, slug: str) -> Tenant:
    with portal.database.session() as session:
        tenant = session.scalars(select(Tenant).where(Tenant.slug == slug)).one()
        session.expunge(tenant)
        return tenant


def _suspended_in_cluster(cluster: ClusterInfo, slug: str) -> bool:
    with api_client(cluster) as api:
        body = cast(
            "dict[str, Any]",
            k8s.CustomObjectsApi(api).get_cluster_custom_object(GROUP, VERSION, PLURAL, slug),
        )
    return bool(body["spec"].get("suspended"))


def test_budget_and_lifecycle_on_the_tenant_page(  # noqa: PLR0917 - pytest fixtures
    portal: Portal,
    admin: Page,
    shots: Shots,
    cluster: ClusterInfo,
    browser: Browser,
    requester: KeycloakUser,
) -> None:
    page = admin
    # The sandbox belongs to the requester's agency: its people see the budget, not the forms.
    slug = _new_tenant(page, portal, requester)
    tenant_url = f"{portal.url}/portal/tenants/{slug}"
    try:
        page.goto(tenant_url)

        def ready() -> bool:
            page.reload()
            return page.locator(".tag").first.inner_text() == "Ready"

        wait_for(ready, f"tenant {slug} to be Ready in the portal", timeout=90)
        budget = page.locator("#budget")
        expect(budget).to_contain_text("This sandbox has no monthly budget.")
        check_both(page, portal, shots, "tenant-admin-no-budget", "en")

        # The form's errors at the field, in English, then in Swedish.
        for typed, text in (
            ("", "Fill in this field."),
            ("tjugo", "Enter an amount in kronor"),
            ("0", "greater than 0"),
            ("12.345", "at most two decimals"),
        ):
            page.fill("#field-budget_monthly_sek", typed)
            page.get_by_role("button", name="Save the budget").click()
            field = page.locator("#field-budget_monthly_sek")
            expect(field).to_have_attribute("aria-invalid", "true")
            expect(field).to_have_attribute(
                "aria-describedby", "hint-budget_monthly_sek error-budget_monthly_sek"
            )
            expect(page.locator("#error-budget_monthly_sek")).to_contain_text(text)
            expect(page.locator("#error-summary")).to_be_visible()
        shots.check(page, "tenant-budget-error-en")
        set_language(page, portal, "sv")
        page.goto(tenant_url)
        page.fill("#field-budget_monthly_sek", "2000000000")
        page.get_by_role("button", name="Spara budgeten").click()
        expect(page.locator("#error-budget_monthly_sek")).to_contain_text("högst 1 000 000 000")
        shots.check(page, "tenant-budget-error-sv")
        assert "budget.set" not in _audit_actions(portal, slug)

        # A Swedish amount (thousands space, decimal comma), not enforced.
        page.fill("#field-budget_monthly_sek", "25 000,50")
        page.get_by_role("button", name="Spara budgeten").click()
        expect(page.locator("#budget p.notice")).to_have_text("Budgeten har sparats.")
        expect(budget.locator("[data-budget]")).to_have_attribute("data-budget", "25000.50")
        expect(budget).to_contain_text("Bara larm; starter nekas inte")
        # The form shows the amount as Swedish writes it (no-break space, decimal comma).
        expect(page.locator("#field-budget_monthly_sek")).to_have_value("25\xa0000,50")
        expect(page.locator("#field-budget_enforce")).not_to_be_checked()
        check_both(page, portal, shots, "tenant-budget", "sv")
        set_language(page, portal, "en")
        _agency_reader_sees_the_budget(browser, portal, shots, requester, tenant_url)

        # A real notebook, priced by the portal fixture's price list (1 SEK per core-second),
        # passes a 1-krona enforced budget: the app's budget loop records both alerts.
        page.goto(tenant_url)
        page.fill("#field-notebook_name", "kalkyl")
        page.select_option("#field-profile", "cpu-small")
        page.get_by_role("button", name="Start", exact=True).click()
        expect(page.locator("#notebook-kalkyl .tag")).to_have_text("Running", timeout=90_000)
        page.fill("#field-budget_monthly_sek", "1")
        page.check("#field-budget_enforce")
        page.get_by_role("button", name="Save the budget").click()
        expect(page.locator("#budget p.notice")).to_have_text("The budget was saved.")

        def alerted() -> bool:
            page.goto(tenant_url)
            return page.locator("table.budget-alerts tbody tr").count() == 2

        wait_for(alerted, "the 80 % and 100 % alerts on the tenant page", timeout=120)
        rows = page.locator("table.budget-alerts tbody tr")
        expect(rows.nth(0).locator("th")).to_have_text("80 %")
        expect(rows.nth(1).locator("th")).to_have_text("100 %")
        expect(rows.nth(0)).to_contain_text("Recorded (no webhook configured)")
        percent = Decimal(budget.locator("[data-percent]").get_attribute("data-percent") or "0")
        assert percent >= 100
        expect(budget.locator("p.warning")).to_be_visible()
        expect(budget).to_contain_text("New notebook servers are refused")
        check_both(page, portal, shots, "tenant-budget-alerts", "en")

        # Over 100 % with the option on, a launch is refused with the reason on the page.
        page.fill("#field-notebook_name", "fler")
        page.select_option("#field-profile", "cpu-small")
        page.get_by_role("button", name="Start", exact=True).click()
        expect(page.locator("#error-summary")).to_contain_text("budget")
        page.get_by_role("button", name="Stop kalkyl").click()
        expect(page.locator("p.notice")).to_contain_text("kalkyl")

        page.get_by_role("button", name="Remove the budget").click()
        expect(page.locator("#budget p.notice")).to_have_text("The budget was removed.")
        expect(budget).to_contain_text("This sandbox has no monthly budget.")
        assert _audit_actions(portal, slug).count("budget.set") == 2
        assert "budget.deleted" in _audit_actions(portal, slug)

        # Suspend → resume, each audited and applied to the Tenant resource.
        page.get_by_role("button", name="Suspend").click()
        expect(page.locator("#lifecycle p.notice")).to_contain_text("suspended")
        expect(page.locator(".facts .tag").first).to_have_text("Suspended")
        assert _status(portal, slug).status is TenantStatus.SUSPENDED
        wait_for(lambda: _suspended_in_cluster(cluster, slug), "spec.suspended in the cluster")
        check_both(page, portal, shots, "tenant-suspended", "en")
        # A second suspend (e.g. from another tab) is refused, with the reason on the page.
        token = page.locator("#lifecycle input[name='csrf_token']").first.get_attribute("value")
        again = page.request.post(f"{tenant_url}/suspend", form={"csrf_token": token or ""})
        assert again.status == 409
        assert "cannot be suspended" in again.text()

        page.get_by_role("button", name="Resume").click()
        expect(page.locator("#lifecycle p.notice")).to_contain_text("resumed")
        expect(page.locator(".facts .tag").first).to_have_text("Ready")
        wait_for(lambda: not _suspended_in_cluster(cluster, slug), "spec.suspended cleared")

        # Offboard: a confirmation page that says what happens and when, then the sandbox is
        # suspended with its deletion scheduled after the retention period.
        page.get_by_role("link", name="Offboard…").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Offboard {slug}")
        days = round(portal.settings.tenant_retention_days)
        expect(page.locator("ul.consequences")).to_contain_text(f"kept for {days} days")
        check_both(page, portal, shots, "offboard-confirm", "en")
        page.get_by_role("button", name=f"Offboard {slug}").click()
        expect(page.locator("#lifecycle p.notice")).to_contain_text("offboarded")
        expect(page.locator("#lifecycle p.warning")).to_contain_text("deleted on")
        tenant = _status(portal, slug)
        assert tenant.status is TenantStatus.SUSPENDED and tenant.delete_after is not None
        check_both(page, portal, shots, "tenant-offboarded", "en")
        actions = _audit_actions(portal, slug)
        assert [a for a in actions if a.startswith("tenant.") and a != "tenant.groups_created"][
            -3:
        ] == ["tenant.suspended", "tenant.resumed", "tenant.offboarded"]
        expect(page.get_by_role("link", name="Offboard…")).to_have_count(0)
    finally:
        with api_client(cluster) as api:
            k8s.CustomObjectsApi(api).delete_cluster_custom_object(GROUP, VERSION, PLURAL, slug)


def _agency_reader_sees_the_budget(
    browser: Browser, portal: Portal, shots: Shots, reader: KeycloakUser, tenant_url: str
) -> None:
    """Someone of the tenant's agency (not a platform admin): the budget, no forms."""
    context = new_context(browser, "sv")
    try:
        page = context.new_page()
        sign_in(page, portal, reader.username, reader.password)
        page.goto(tenant_url)
        budget = page.locator("#budget")
        expect(budget.locator("[data-budget]")).to_have_attribute("data-budget", "25000.50")
        expect(budget).to_contain_text("Månadsbudget")
        expect(page.locator("#field-budget_monthly_sek")).to_have_count(0)
        expect(page.locator("#lifecycle")).to_have_count(0)
        check_both(page, portal, shots, "tenant-budget-reader", "sv")
        token = page.locator("input[name='csrf_token']").first.get_attribute("value") or ""
        for action in ("budget", "budget/remove", "suspend", "offboard"):
            refused = page.request.post(
                f"{tenant_url}/{action}",
                form={"csrf_token": token, "budget_monthly_sek": "1", "confirm": "x"},
                max_redirects=0,
            )
            assert refused.status == 403, (action, refused.status)
    finally:
        context.close()


def test_offboarding_needs_the_confirmation_step(admin: Page, portal: Portal) -> None:
    """A POST without the confirmation page's field changes nothing and leads to that page."""
    page = admin
    token = page.locator("input[name='csrf_token']").first.get_attribute("value")
    response = page.request.post(
        f"{portal.url}/portal/tenants/no-such-tenant/offboard",
        form={"csrf_token": token or ""},
        max_redirects=0,
    )
    assert response.status == 303
    assert response.headers["location"].endswith("/portal/tenants/no-such-tenant/offboard")
