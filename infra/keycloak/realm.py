"""Names and local-development credentials of the ``sandlada`` realm (realm-sandlada.json).

Everything here is for local development and tests only: the realm file carries these demo
users and client secrets so `make dev` and the tests work without any setup. A production
realm has its own secrets (injected, never committed) and no demo users. The integration tests
(tests/integration/test_keycloak_realm.py) fail if these drift from the realm file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REALM = "sandlada"
REALM_FILE = Path(__file__).with_name("realm-sandlada.json")

PORTAL_CLIENT_ID = "sandlada-portal"
PORTAL_DEV_SECRET = "sandlada-portal-dev-secret"  # noqa: S105 - dev-only, documented
CLI_CLIENT_ID = "sandlada-cli"
CONTROLPLANE_CLIENT_ID = "sandlada-controlplane"
CONTROLPLANE_DEV_SECRET = "sandlada-controlplane-dev-secret"  # noqa: S105 - dev-only, documented
# Tokens for the portal and CLI carry this audience; the control plane checks it.
API_AUDIENCE = CONTROLPLANE_CLIENT_ID
PLATFORM_ADMIN_ROLE = "platform-admin"
KIRUNA_ORGANISATION_NUMBER = "212000-2742"


@dataclass(frozen=True)
class DemoUser:
    """A demo user of the realm file (local development only)."""

    username: str
    password: str
    email: str
    first_name: str
    last_name: str
    realm_roles: tuple[str, ...] = ()
    organisation_number: str | None = None


DEMO_ADMIN = DemoUser(
    "admin",
    "admin-dev",
    "admin@sandlada.example",
    "Astrid",
    "Lindqvist",
    realm_roles=(PLATFORM_ADMIN_ROLE,),
)
DEMO_REQUESTER = DemoUser(
    "requester",
    "requester-dev",
    "requester@kiruna.example",
    "Anna",
    "Nilsson",
    organisation_number=KIRUNA_ORGANISATION_NUMBER,
)
DEMO_SCIENTIST = DemoUser(
    "scientist",
    "scientist-dev",
    "scientist@kiruna.example",
    "Erik",
    "Lindberg",
    organisation_number=KIRUNA_ORGANISATION_NUMBER,
)
DEMO_USERS = (DEMO_ADMIN, DEMO_REQUESTER, DEMO_SCIENTIST)
