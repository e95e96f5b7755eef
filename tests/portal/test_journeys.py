"""The portal in Chromium: request → approve → sandbox visible, in Swedish and English.

Real Keycloak sign-in (code flow with PKCE through Keycloak's own login form), the control
plane served by uvicorn, the local cluster with the Tenant operator. Every portal page is
checked with axe-core in both languages and photographed (var/artifacts/portal/).
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from kubernetes import client as k8s
from playwright.sync_api import Browser, BrowserContext, Page, expect

from infra.cluster.launcher import ClusterInfo
from infra.keycloak.realm import DEMO_ADMIN
from tenants.resource import GROUP, PLURAL, VERSION
from tests.fixtures.cluster import api_client
from tests.portal.conftest import KeycloakUser, Portal, Shots, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.keycloak, pytest.mark.timeout(900)]

OTHER = {"sv": "en", "en": "sv"}


def new_context(browser: Browser, language: str) -> BrowserContext:
    locale = {"sv": "sv-SE", "en": "en-GB"}[language]
    # bypass_csp: axe-core is injected as an inline script, which the portal's CSP forbids.
    context = browser.new_context(
        locale=locale, viewport={"width": 1280, "height": 900}, bypass_csp=True
    )
    # Generous: the machine running the tests is shared and often loaded.
    context.set_default_timeout(60_000)
    context.set_default_navigation_timeout(90_000)
    return context


def sign_in(page: Page, portal: Portal, username: str, password: str) -> None:
    page.goto(portal.url + "/portal/")
    page.locator("a.button[href$='/auth/login']").click()
    page.wait_for_url(
        re.compile(r".*/realms/sandlada/protocol/openid-connect/auth.*|.*/login-actions/.*")
    )
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#kc-login")
    page.wait_for_url(portal.url + "/portal/")


def set_language(page: Page, portal: Portal, language: str) -> None:
    page.context.add_cookies([{"name": "sandlada_lang", "value": language, "url": portal.url}])


def check_both(page: Page, portal: Portal, shots: Shots, name: str, language: str) -> None:
    """axe + screenshot of this page in ``language``, then in the other one, then back."""
    expect(page.locator("html")).to_have_attribute("lang", language)
    shots.check(page, f"{name}-{language}")
    set_language(page, portal, OTHER[language])
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", OTHER[language])
    shots.check(page, f"{name}-{OTHER[language]}")
    set_language(page, portal, language)
    page.reload()


@pytest.fixture
def requester_page(browser: Browser, portal: Portal, requester: KeycloakUser) -> Iterator[Page]:
    context = new_context(browser, "sv")
    page = context.new_page()
    sign_in(page, portal, requester.username, requester.password)
    yield page
    context.close()


@pytest.fixture
def admin_page(browser: Browser, portal: Portal) -> Iterator[Page]:
    context = new_context(browser, "en")
    page = context.new_page()
    sign_in(page, portal, DEMO_ADMIN.username, DEMO_ADMIN.password)
    yield page
    context.close()


def test_anonymous_pages_follow_accept_language_and_need_sign_in(
    browser: Browser, portal: Portal, shots: Shots
) -> None:
    for language, heading in (
        ("sv", "AI-miljöer för offentlig sektor"),
        ("en", "AI sandboxes for the public sector"),
    ):
        context = new_context(browser, language)
        page = context.new_page()
        page.goto(portal.url + "/portal/")
        expect(page.locator("html")).to_have_attribute("lang", language)
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        shots.check(page, f"welcome-{language}")
        # Keyboard: the first Tab reaches the skip link, which moves focus to the main content.
        page.keyboard.press("Tab")
        expect(page.locator(".skip-link")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("#main")).to_be_focused()
        context.close()
    response = httpx.get(portal.url + "/portal/requests/new", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/portal/auth/login?next=")


def _fill_request(page: Page, name: str, requester: KeycloakUser, gpus: int) -> None:
    page.fill("#field-name", name)
    page.fill("#field-purpose", "Sammanfatta ärenden inom socialtjänsten med en språkmodell.")
    page.fill("#field-legal_basis", "Uppgift av allmänt intresse (GDPR art. 6.1 e).")
    page.fill("#field-agency_name", "Portalkommun")
    page.fill("#field-organisation_number", requester.organisation_number)
    page.select_option("#field-agency_kind", "municipality")
    page.select_option("#field-data_classification", "internal")
    page.select_option("#field-ai_act_risk", "limited")
    page.fill("#field-gpus", str(gpus))
    if gpus:
        page.select_option("#field-gpu_model", "NVIDIA-A100-SXM4-80GB")
    page.fill("#field-cpu", "8")
    page.fill("#field-memory_gib", "32")
    page.fill("#field-storage_gib", "100")
    page.fill("#field-end_date", (datetime.now(UTC).date() + timedelta(days=90)).isoformat())


def test_request_approve_and_the_sandbox_appears(  # noqa: PLR0917 - pytest fixtures
    portal: Portal,
    requester: KeycloakUser,
    colleague: KeycloakUser,
    requester_page: Page,
    admin_page: Page,
    shots: Shots,
    cluster: ClusterInfo,
) -> None:
    page = requester_page
    check_both(page, portal, shots, "home-empty", "sv")

    # The form with the API's validation messages next to their fields (Swedish first).
    page.get_by_role("link", name="Ansök om en miljö").first.click()
    check_both(page, portal, shots, "request-form", "sv")
    page.fill("#field-name", "")
    page.fill("#field-organisation_number", "212000-2741")  # wrong check digit
    page.fill("#field-cpu", "0")
    page.get_by_role("button", name="Skicka ansökan").click()
    expect(page.locator("#error-summary")).to_be_focused()
    for field, text in (
        ("name", "Fyll i fältet."),
        ("organisation_number", "giltigt svenskt organisationsnummer"),
        ("cpu", "minst 1"),
    ):
        control = page.locator(f"#field-{field}")
        expect(control).to_have_attribute("aria-invalid", "true")
        expect(control).to_have_attribute("aria-describedby", re.compile(rf"\berror-{field}\b"))
        expect(page.locator(f"#error-{field}")).to_contain_text(text)
    shots.check(page, "request-form-errors-sv")

    # The same mistakes in English.
    set_language(page, portal, "en")
    page.goto(portal.url + "/portal/requests/new")
    page.fill("#field-name", "")
    page.fill("#field-cpu", "0")
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("#error-name")).to_contain_text("Fill in this field.")
    expect(page.locator("#error-cpu")).to_contain_text("at least 1")
    shots.check(page, "request-form-errors-en")
    set_language(page, portal, "sv")

    # Unacceptable risk is refused by the service, with the reason at the field.
    page.goto(portal.url + "/portal/requests/new")
    name = f"portal-{uuid.uuid4().hex[:6]}"
    _fill_request(page, name, requester, gpus=2)
    page.select_option("#field-ai_act_risk", "unacceptable")
    page.get_by_role("button", name="Skicka ansökan").click()
    expect(page.locator("#error-ai_act_risk")).to_contain_text("AI-förordning")

    # A valid request.
    page.select_option("#field-ai_act_risk", "limited")
    page.get_by_role("button", name="Skicka ansökan").click()
    expect(page.locator("p.notice")).to_be_visible()
    request_url = page.url.split("?")[0]
    request_id = int(request_url.rsplit("/", 1)[1])
    expect(page.locator(".tag")).to_have_text("Väntar")
    check_both(page, portal, shots, "request-detail", "sv")

    # A second request that the admin will reject.
    page.goto(portal.url + "/portal/requests/new")
    _fill_request(page, f"{name}-b", requester, gpus=0)
    page.get_by_role("button", name="Skicka ansökan").click()
    expect(page.locator("p.notice")).to_be_visible()
    rejected_id = int(page.url.split("?")[0].rsplit("/", 1)[1])

    # The admin: queue with capacity, review, approve with an edited quota.
    admin = admin_page
    admin.get_by_role("link", name="Request queue").click()
    expect(admin.get_by_role("link", name=name, exact=True)).to_be_visible()
    check_both(admin, portal, shots, "queue", "en")
    admin.get_by_role("link", name=name, exact=True).click()
    expect(admin.locator("table.capacity")).to_contain_text("NVIDIA-A100-SXM4-80GB")
    expect(admin.locator("#field-gpus")).to_have_value("2")
    check_both(admin, portal, shots, "review", "en")
    admin.fill("#field-gpus", "100000")
    admin.get_by_role("button", name="Approve").click()
    expect(admin.locator("#field-gpus")).to_have_attribute("aria-invalid", "true")
    admin.fill("#field-gpus", "1")
    admin.fill("#field-comment", "One GPU to start with.")
    admin.get_by_role("button", name="Approve").click()
    expect(admin.locator("p.notice")).to_contain_text(f"Request {request_id} was approved")

    # Reject the second one: the reason is required and tied to its field.
    admin.goto(f"{portal.url}/portal/admin/requests/{rejected_id}")
    admin.get_by_role("button", name="Reject").click()
    expect(admin.locator("#field-reason")).to_have_attribute("aria-invalid", "true")
    expect(admin.locator("#error-reason")).to_contain_text("Fill in this field.")
    shots.check(admin, "review-reject-error-en")
    admin.fill("#field-reason", "Two sandboxes for one project are not needed.")
    admin.get_by_role("button", name="Reject").click()
    expect(admin.locator("p.notice")).to_contain_text(f"Request {rejected_id} was rejected")

    # The requester sees the decision and the sandbox; the operator makes it Ready.
    page.goto(portal.url + "/portal/")
    tenant_link = page.locator("table a[href^='/portal/tenants/']").first
    expect(tenant_link).to_be_visible()
    slug = tenant_link.inner_text()
    check_both(page, portal, shots, "home", "sv")
    page.goto(f"{portal.url}/portal/requests/{rejected_id}")
    expect(page.locator(".facts")).to_contain_text("Two sandboxes for one project are not needed.")
    page.goto(f"{portal.url}/portal/tenants/{slug}")

    def ready() -> bool:
        page.reload()
        return page.locator(".tag").first.inner_text() == "Klar"

    wait_for(ready, f"tenant {slug} to be Ready in the portal", timeout=60)
    facts = page.locator(".facts")
    expect(facts).to_contain_text(f"t-{slug}")
    expect(facts).to_contain_text("1 GPU")
    # Membership comes from Keycloak: the requester is the sandbox's administrator.
    members = page.locator("table", has=page.get_by_role("columnheader", name="Roll"))
    expect(members).to_contain_text(requester.username)
    expect(members).to_contain_text("Administratör")
    expect(page.get_by_role("link", name="Öppna MLflow")).to_have_attribute(
        "href", "http://127.0.0.1:5000"
    )
    check_both(page, portal, shots, "tenant", "sv")

    # The requester, the tenant's admin, adds a colleague and removes them again.
    page.fill("#field-member_username", "nobody-" + uuid.uuid4().hex[:6])
    page.get_by_role("button", name="Lägg till", exact=True).click()
    expect(page.locator("#field-member_username")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error-member_username")).to_contain_text("Det finns inget konto")
    shots.check(page, "tenant-member-error-sv")
    page.fill("#field-member_username", colleague.username)
    page.get_by_role("button", name="Lägg till", exact=True).click()
    expect(page.locator("#members p.notice")).to_contain_text(colleague.username)
    expect(members).to_contain_text(colleague.username)
    page.get_by_role("button", name=f"Ta bort {colleague.username}").click()
    expect(page.locator("#members p.notice")).to_contain_text("inte längre")
    expect(members).not_to_contain_text(colleague.username)

    # A notebook server: launch, live status (the page polls; no reload), stop.
    page.fill("#field-notebook_name", "Fel Namn")
    page.get_by_role("button", name="Starta", exact=True).click()
    expect(page.locator("#field-notebook_name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error-notebook_name")).to_contain_text("små bokstäver")
    shots.check(page, "tenant-launch-error-sv")
    page.fill("#field-notebook_name", "analys")
    page.select_option("#field-profile", "cpu-small")
    page.get_by_role("button", name="Starta", exact=True).click()
    expect(page.locator("p.notice")).to_contain_text("analys")
    expect(page.locator("#notebook-analys .tag")).to_have_text("Körs", timeout=90_000)
    check_both(page, portal, shots, "tenant-notebook", "sv")

    # Usage and costs of the running notebook: per-day plot, table and CSV.
    page.get_by_role("link", name="Användning och kostnader").click()
    usage_url = page.url

    def costing() -> bool:
        page.goto(usage_url)
        return Decimal(page.locator("p.total").get_attribute("data-total") or "0") > 0

    wait_for(costing, "the running notebook to cost something", timeout=90)
    bars = page.locator("svg.chart rect.bar")
    heights = [float(bars.nth(i).get_attribute("height") or 0) for i in range(bars.count())]
    assert len(heights) >= 28 and max(heights) > 0 and min(heights) == 0
    check_both(page, portal, shots, "usage", "sv")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Ladda ner som CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert {r["tenant"] for r in rows} == {slug}
    assert sum(Decimal(r["cost_sek"]) for r in rows) > 0
    assert any(Decimal(r["cpu_core_hours"]) > 0 for r in rows)

    page.goto(f"{portal.url}/portal/tenants/{slug}")
    page.get_by_role("button", name="Stoppa analys").click()
    expect(page.locator("p.notice")).to_contain_text("har stoppats")
    # Stopping deletes the Notebook resource (its home volume stays): the row shows Stopped
    # while it goes, then leaves the list; the polling table follows either way.
    expect(page.locator("#notebook-analys .tag", has_text="Körs")).to_have_count(0, timeout=60_000)

    # The month's cost report (folded usage): the stopped notebook's interval is in it.
    def reported() -> bool:
        page.goto(portal.url + "/portal/costs")
        return Decimal(page.locator("p.total").get_attribute("data-total") or "0") > 0

    wait_for(reported, "the cost report to include the stopped notebook", timeout=90)
    expect(page.get_by_role("link", name=slug)).to_be_visible()
    check_both(page, portal, shots, "costs", "sv")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Ladda ner som CSV").click()
    report_rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert any(r["tenant"] == slug and Decimal(r["total_sek"]) > 0 for r in report_rows)

    # The audit log (platform admins only) shows the decisions.
    admin.get_by_role("link", name="Audit log").click()
    expect(admin.locator("table")).to_contain_text("sandbox_request.approved")
    check_both(admin, portal, shots, "audit", "en")
    forbidden = page.goto(portal.url + "/portal/admin/audit")
    assert forbidden is not None and forbidden.status == 403
    shots.check(page, "forbidden-sv")

    # Clean up the cluster side: the operator deletes the namespace with the Tenant.
    with api_client(cluster) as api:
        k8s.CustomObjectsApi(api).delete_cluster_custom_object(GROUP, VERSION, PLURAL, slug)


def test_forms_refuse_a_post_without_the_csrf_token(requester_page: Page, portal: Portal) -> None:
    response = requester_page.request.post(
        portal.url + "/portal/requests/new", form={"name": "no-token"}, max_redirects=0
    )
    assert response.status == 403
    cookies = {c["name"]: c for c in requester_page.context.cookies(portal.url)}
    session = cookies["sandlada_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    # environment=test is not development, so the cookie is Secure (browsers still send
    # Secure cookies to http://127.0.0.1).
    assert session["secure"] is True


def test_sign_out_ends_the_keycloak_session(
    requester_page: Page, portal: Portal, shots: Shots
) -> None:
    page = requester_page
    page.get_by_role("button", name="Logga ut").click()
    page.wait_for_url(re.compile(r".*/portal/\?signed_out=1$"))
    expect(page.locator("p.notice")).to_be_visible()
    assert "sandlada_session" not in {c["name"] for c in page.context.cookies(portal.url)}
    # Signing in again shows Keycloak's login form: the SSO session is gone too.
    page.locator("a.button[href$='/auth/login']").click()
    expect(page.locator("#username")).to_be_visible()
