"""Fixtures for the portal's browser tests: the control plane served by uvicorn, Chromium, axe.

``portal`` serves the whole app (API + portal) on a free port from a thread, on a migrated
SQLite file, against the real Keycloak and the local cluster (GPU capacity synced from the kwok
nodes, the Tenant operator as a subprocess). Keycloak only redirects to registered URIs, and
the realm registers the dev port 8000 only, so the fixture adds this server's callback URL to
the ``sandlada-portal`` client through the master-realm admin API and removes it afterwards.

``browser`` is Debian's Chromium (``/usr/bin/chromium``, installed by infra/setup.d/30-browser.sh)
driven by Playwright; ``axe_source`` is axe-core from the npm cache the same script fills.
Screenshots go to ``var/artifacts/portal/`` (git-ignored).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from keycloak import KeycloakAdmin
from playwright.sync_api import Browser, Page, sync_playwright
from stdnum import luhn

from controlplane import migrate
from controlplane.app import create_app
from controlplane.audit.service import Actor
from controlplane.capacity import service as capacity
from controlplane.cluster.storage import connect
from controlplane.costs import service as costs
from controlplane.database import Database
from controlplane.metering.collector import run_collector
from controlplane.models.pricing import GpuPrice, PriceList
from controlplane.settings import Settings
from infra.keycloak.launcher import CONSOLE_ADMIN_PASSWORD, CONSOLE_ADMIN_USERNAME, KeycloakInfo
from infra.keycloak.realm import PORTAL_CLIENT_ID
from infra.process import free_port
from operators.testing import OperatorProcess

CHROMIUM = Path(os.environ.get("SANDLADA_CHROMIUM", "/usr/bin/chromium"))
CACHE = Path(os.environ.get("SANDLADA_CACHE_DIR", Path.home() / ".cache" / "sandlada"))
AXE = CACHE / "npm" / "node_modules" / "axe-core" / "axe.min.js"
A100 = "NVIDIA-A100-SXM4-80GB"
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "artifacts" / "portal"


def wait_for(probe: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)  # polling a condition, not waiting blindly
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass(frozen=True)
class Portal:
    url: str
    database: Database
    settings: Settings


def _master_admin(keycloak: KeycloakInfo) -> KeycloakAdmin:
    admin = KeycloakAdmin(
        server_url=keycloak.base_url + "/",
        username=CONSOLE_ADMIN_USERNAME,
        password=CONSOLE_ADMIN_PASSWORD,
        realm_name="master",
        user_realm_name="master",
        timeout=30,
    )
    admin.change_current_realm(keycloak.realm)
    return admin


@pytest.fixture(scope="module")
def redirect_registration(keycloak: KeycloakInfo) -> Iterator[Callable[[str], None]]:
    """``register(base_url)`` lets the portal client redirect to ``base_url/*`` until teardown."""
    admin = _master_admin(keycloak)
    client_id = admin.get_client_id(PORTAL_CLIENT_ID)
    assert client_id is not None
    added: list[str] = []

    def change(add: list[str], remove: list[str]) -> None:
        client = admin.get_client(client_id)
        uris = [u for u in client.get("redirectUris", []) if u not in remove] + add
        attributes = dict(client.get("attributes", {}))
        logout = [u for u in attributes.get("post.logout.redirect.uris", "").split("##") if u]
        logout = [u for u in logout if u not in remove] + add
        attributes["post.logout.redirect.uris"] = "##".join(logout)
        admin.update_client(client_id, {"redirectUris": uris, "attributes": attributes})

    def register(base_url: str) -> None:
        pattern = base_url.rstrip("/") + "/*"
        change([pattern], [])
        added.append(pattern)

    yield register
    if added:
        change([], added)


@pytest.fixture(scope="module")
def operator(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(cluster.kubeconfig, log)
    # Generous: the machine is shared, and a loaded one takes over a minute to start kopf.
    process.start(timeout=300)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def portal(
    keycloak: KeycloakInfo,
    cluster: Any,
    operator: OperatorProcess,
    redirect_registration: Callable[[str], None],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Portal]:
    url = f"sqlite:///{tmp_path_factory.mktemp('portal-db') / 'sandlada.db'}"
    migrate.upgrade(url)
    settings = Settings(
        environment="test",
        database_url=url,
        oidc_issuer=keycloak.issuer,
        keycloak_url=keycloak.base_url,
        kubeconfig=cluster.kubeconfig,
        tenant_sync_seconds=0.2,
        # The app's budget loop, often: the admin-page test waits for its alerts.
        budget_evaluation_seconds=1.0,
        portal_session_secret=secrets.token_urlsafe(32),  # type: ignore[arg-type]
        portal_mlflow_url="http://127.0.0.1:5000",
    )
    database = Database.from_url(url)
    kube = connect(cluster.kubeconfig)
    assert kube is not None
    with database.session(write=True) as session, session.begin():
        capacity.sync_from_nodes(
            session, Actor("test:portal"), kube.gpu_capacity(), settings.gpu_overcommit
        )
    kube.close()
    with database.session(write=True) as session, session.begin():
        # A price list in force since the first of the month, as an earlier month's admin would
        # have created it (the API only accepts future ones). High prices, so seconds of
        # notebook use cost whole kronor and the per-day plot has something to show.
        session.add(
            PriceList(
                effective_from=costs.current_month(settings.report_timezone).first_day,
                cpu_core_hour_sek=Decimal("3600.00"),
                memory_gib_hour_sek=Decimal("36.00"),
                storage_gib_month_sek=Decimal("1.00"),
                note="portal browser tests",
                created_by="test:portal",
                gpu_prices=[
                    GpuPrice(gpu_model="NVIDIA-A100-SXM4-80GB", gpu_hour_sek=Decimal("45"))
                ],
            )
        )
    app = create_app(settings, database)
    # The real metering collector (list + watch of pods and volumes) on the same database.
    stop_collector = threading.Event()
    collector = threading.Thread(
        target=run_collector,
        args=(url, cluster.kubeconfig, settings.report_timezone),
        kwargs={"stop": stop_collector, "tick_seconds": 1.0},
        name="portal-meter",
        daemon=True,
    )
    collector.start()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="portal-uvicorn", daemon=True)
    thread.start()
    wait_for(lambda: server.started, "uvicorn to start", timeout=30)
    base = f"http://127.0.0.1:{port}"
    redirect_registration(base)
    try:
        yield Portal(base, database, settings)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        stop_collector.set()
        collector.join(timeout=30)
        database.dispose()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing at {AXE}; run `make infra` (infra/setup.d/30-browser.sh)")
    return AXE.read_text()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing; run `make infra` (infra/setup.d/30-browser.sh)")
    with sync_playwright() as playwright:
        # --no-sandbox: the tests may run as root (CI containers), where Chromium's sandbox
        # refuses to start.
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


@dataclass
class KeycloakUser:
    username: str
    password: str
    user_id: str
    organisation_number: str


def valid_organisation_number() -> str:
    """A random organisation number with a correct check digit (group 2: state agencies)."""
    body = "2" + "".join(str(secrets.randbelow(10)) for _ in range(8))
    number = body + luhn.calc_check_digit(body)
    return f"{number[:6]}-{number[6:]}"


def _create_user(admin: KeycloakAdmin, number: str) -> KeycloakUser:
    username = f"portal-{uuid.uuid4().hex[:8]}"
    password = secrets.token_urlsafe(12)
    user_id = admin.create_user(
        {
            "username": username,
            "email": f"{username}@kommun.example",
            "emailVerified": True,
            "firstName": "Maja",
            "lastName": "Portalsson",
            "enabled": True,
            "attributes": {"organisation_number": [number]},
            "credentials": [{"type": "password", "value": password, "temporary": False}],
        }
    )
    return KeycloakUser(username, password, user_id, number)


@pytest.fixture(scope="module")
def requester(keycloak_controlplane_admin: KeycloakAdmin) -> Iterator[KeycloakUser]:
    """A person of a fresh agency, so their pages show only this test's requests."""
    user = _create_user(keycloak_controlplane_admin, valid_organisation_number())
    try:
        yield user
    finally:
        keycloak_controlplane_admin.delete_user(user.user_id)


@pytest.fixture(scope="module")
def colleague(
    keycloak_controlplane_admin: KeycloakAdmin, requester: KeycloakUser
) -> Iterator[KeycloakUser]:
    """Someone at the requester's agency whom the requester invites."""
    user = _create_user(keycloak_controlplane_admin, requester.organisation_number)
    try:
        yield user
    finally:
        keycloak_controlplane_admin.delete_user(user.user_id)


@dataclass
class Shots:
    """Accessibility checks and screenshots, collected for the report at the end."""

    axe_source: str
    checked: list[str]

    def check(self, page: Page, name: str) -> None:
        """axe-core on the page as it is now (0 violations) and a screenshot named ``name``."""
        page.add_script_tag(content=self.axe_source)
        result = page.evaluate(
            """async () => await axe.run(document, {
                runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                                'best-practice']},
                resultTypes: ['violations'],
            })"""
        )
        violations = [
            f"{v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(str(n["target"]) for n in v["nodes"][:3])
            for v in result["violations"]
        ]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        assert violations == [], f"axe-core violations on {name} ({page.url}): {violations}"
        self.checked.append(name)


@pytest.fixture(scope="module")
def shots(axe_source: str) -> Shots:
    return Shots(axe_source, [])
