"""The Keycloak launcher's bookkeeping and the realm file's shape, without starting Keycloak.

The realm's behaviour is proven against the real server in
tests/integration/test_keycloak_realm.py; these tests pin what must hold before a server is
involved: the per-checkout home over the shared distribution, the database reset when the realm
file changes, the environment the child gets, and that `stop` kills only what was recorded.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from infra.keycloak import launcher
from infra.keycloak.launcher import KeycloakConfig
from infra.keycloak.realm import (
    API_AUDIENCE,
    CLI_CLIENT_ID,
    CONTROLPLANE_CLIENT_ID,
    CONTROLPLANE_DEV_SECRET,
    DEMO_USERS,
    PORTAL_CLIENT_ID,
    PORTAL_DEV_SECRET,
    REALM,
    REALM_FILE,
)


@pytest.fixture
def realm() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(REALM_FILE.read_text())
    return loaded


def _client(realm: dict[str, Any], client_id: str) -> dict[str, Any]:
    (client,) = [c for c in realm["clients"] if c["clientId"] == client_id]
    found: dict[str, Any] = client
    return found


def test_realm_clients_match_the_constants(realm: dict[str, Any]) -> None:
    assert realm["realm"] == REALM
    portal = _client(realm, PORTAL_CLIENT_ID)
    assert not portal["publicClient"]
    assert portal["secret"] == PORTAL_DEV_SECRET
    assert portal["attributes"]["pkce.code.challenge.method"] == "S256"
    assert (portal["standardFlowEnabled"], portal["directAccessGrantsEnabled"]) == (True, False)
    cli = _client(realm, CLI_CLIENT_ID)
    assert cli["publicClient"]
    assert cli["directAccessGrantsEnabled"]
    controlplane = _client(realm, CONTROLPLANE_CLIENT_ID)
    assert controlplane["secret"] == CONTROLPLANE_DEV_SECRET
    assert controlplane["serviceAccountsEnabled"]
    (service_account,) = [
        u for u in realm["users"] if u.get("serviceAccountClientId") == CONTROLPLANE_CLIENT_ID
    ]
    assert set(service_account["clientRoles"]["realm-management"]) == {
        "manage-users",
        "view-users",
        "query-groups",
        "query-users",
    }


@pytest.mark.parametrize("client_id", [PORTAL_CLIENT_ID, CLI_CLIENT_ID])
def test_user_facing_clients_map_audience_flat_groups_and_organisation_number(
    realm: dict[str, Any], client_id: str
) -> None:
    mappers = {
        m["protocolMapper"]: m["config"] for m in _client(realm, client_id)["protocolMappers"]
    }
    assert mappers["oidc-audience-mapper"]["included.client.audience"] == API_AUDIENCE
    assert mappers["oidc-group-membership-mapper"]["full.path"] == "false"
    assert mappers["oidc-group-membership-mapper"]["claim.name"] == "groups"
    assert mappers["oidc-usermodel-attribute-mapper"]["user.attribute"] == "organisation_number"


def test_demo_users_match_the_constants(realm: dict[str, Any]) -> None:
    users = {u["username"]: u for u in realm["users"] if "serviceAccountClientId" not in u}
    assert set(users) == {user.username for user in DEMO_USERS}
    for user in DEMO_USERS:
        stored = users[user.username]
        assert stored["email"] == user.email
        assert (stored["firstName"], stored["lastName"]) == (user.first_name, user.last_name)
        (credential,) = stored["credentials"]
        assert credential == {"type": "password", "value": user.password, "temporary": False}
        assert stored["requiredActions"] == []
        assert set(stored["realmRoles"]) - {"default-roles-sandlada"} == set(user.realm_roles)
        assert stored.get("attributes", {}).get("organisation_number") == (
            [user.organisation_number] if user.organisation_number else None
        )


def test_user_profile_declares_the_organisation_number_admin_editable_only(
    realm: dict[str, Any],
) -> None:
    (component,) = realm["components"]["org.keycloak.userprofile.UserProfileProvider"]
    profile = json.loads(component["config"]["kc.user.profile.config"][0])
    (attribute,) = [a for a in profile["attributes"] if a["name"] == "organisation_number"]
    assert attribute["permissions"]["edit"] == ["admin"]


@pytest.fixture
def config(tmp_path: Path) -> KeycloakConfig:
    """A config over a fake, complete distribution and a copy of the realm file."""
    dist = tmp_path / "cache" / "keycloak" / "26.0.0"
    for name in ("bin", "lib", "conf", "themes"):
        (dist / name).mkdir(parents=True)
    (dist / ".complete").touch()
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    (java_home / "bin" / "java").touch()
    realm_file = tmp_path / "realm.json"
    realm_file.write_text(REALM_FILE.read_text())
    return KeycloakConfig(
        state_dir=tmp_path / "var" / "keycloak",
        realm_file=realm_file,
        version="26.0.0",
        java_home=java_home,
        cache_dir=tmp_path / "cache",
        port=18080,
    )


def test_home_links_the_distribution_and_copies_the_realm(config: KeycloakConfig) -> None:
    launcher._prepare_home(config, lambda _: None)
    home = config.home_dir
    for name in ("lib", "conf", "themes"):
        assert (home / name).readlink() == config.dist_dir / name
    assert (home / "providers").is_dir()
    imported = home / "data" / "import" / f"{REALM}-realm.json"
    assert imported.read_bytes() == config.realm_file.read_bytes()


def test_a_changed_realm_file_recreates_the_dev_database(config: KeycloakConfig) -> None:
    messages: list[str] = []
    launcher._prepare_home(config, messages.append)
    database = config.home_dir / "data" / "h2"
    database.mkdir()
    launcher._prepare_home(config, messages.append)
    assert database.exists(), "an unchanged realm file must keep the database"
    config.realm_file.write_text(config.realm_file.read_text().replace("Sandlåda", "Sandlada"))
    launcher._prepare_home(config, messages.append)
    assert not database.exists()
    assert any("changed" in message for message in messages)


def test_missing_distribution_says_how_to_get_it(config: KeycloakConfig) -> None:
    (config.dist_dir / ".complete").unlink()
    with pytest.raises(launcher.KeycloakError, match="make infra"):
        launcher._prepare_home(config, lambda _: None)


def test_child_environment_drops_the_callers_keycloak_settings(
    config: KeycloakConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KC_DB", "postgres")
    monkeypatch.setenv("JAVA_OPTS", "-Xmx8g")
    env = launcher._environment(config)
    assert "KC_DB" not in env
    assert "JAVA_OPTS" not in env
    assert env["JAVA_HOME"] == str(config.java_home)
    assert env["JAVA_OPTS_KC_HEAP"] == "-Xms64m -Xmx512m"
    command = launcher._command(config)
    assert f"-Dkc.home.dir={config.home_dir}" in command
    assert "--import-realm" in command
    assert "--hostname=http://127.0.0.1:18080" in command


def test_stop_kills_only_the_recorded_process(config: KeycloakConfig) -> None:
    config.state_dir.mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        # Same pid, another start time: a reused pid, which must be left alone.
        config.pid_file.write_text(json.dumps({"pid": sleeper.pid, "start_time": "1"}))
        assert launcher.stop(config) is False
        assert sleeper.poll() is None

        started = launcher._process_start_time(sleeper.pid)
        config.pid_file.write_text(json.dumps({"pid": sleeper.pid, "start_time": started}))
        assert launcher.stop(config, timeout=10) is True
        deadline = time.monotonic() + 10
        while sleeper.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sleeper.returncode is not None
        assert not config.pid_file.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
