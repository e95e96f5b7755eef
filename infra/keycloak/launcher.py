"""Start, stop and inspect the local Keycloak (dev mode) that serves the ``sandlada`` realm.

Keycloak runs from the server distribution that ``infra/setup.d/20-keycloak.sh`` unpacks into
``$SANDLADA_CACHE_DIR/keycloak/<version>/`` (shared by every checkout on the machine, never
written per checkout). Everything one checkout's Keycloak writes lives under ``var/keycloak/``:

- ``home/``: the server's home directory. ``lib``, ``conf`` and ``themes`` link to the cached
  distribution; ``providers/`` and ``data/`` are real. ``data/h2/`` is the dev-file database,
  ``data/import/`` the realm file ``--import-realm`` reads at start. Keycloak derives both from
  its home directory and has no option to move them, so the home directory is per checkout.
- ``keycloak.log`` (the child's output), ``keycloak.json`` (pid, start time, URL: what ``stop``
  may kill), ``realm.sha256`` (which realm file the database was made from).

The child runs in its own session, stdin closed and output to the log, so it never holds the
caller's terminal or a CI pipe. ``start`` is idempotent: a Keycloak already answering the realm's
discovery document is reused. ``stop`` ends exactly the process group it recorded.

Keycloak imports a realm only if it does not exist yet, so an edited realm file would be ignored
by an existing database: ``start`` then recreates the (throwaway, dev-only) database.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from infra.keycloak.realm import REALM, REALM_FILE

DEFAULT_PORT = 8080
# The master realm's bootstrap administrator, for the admin console in local development only.
CONSOLE_ADMIN_USERNAME = "kcadmin"
CONSOLE_ADMIN_PASSWORD = "kcadmin-dev"  # noqa: S105 - dev-only, documented in the README
# Keycloak's own default outside containers; explicit because the machine is shared.
DEFAULT_HEAP = "-Xms64m -Xmx512m"


def checkout_root() -> Path:
    """The repository checkout this module lives in (``var/`` is git-ignored there)."""
    return Path(__file__).resolve().parents[2]


def _versions() -> dict[str, str]:
    """KEY=VALUE pairs of ``versions.env``, the file the setup script sources too."""
    values: dict[str, str] = {}
    for raw in Path(__file__).with_name("versions.env").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def _cache_dir() -> Path:
    configured = os.environ.get("SANDLADA_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "sandlada"


def _default_java_home() -> Path:
    return Path(os.environ.get("SANDLADA_KEYCLOAK_JAVA_HOME") or _versions()["KEYCLOAK_JAVA_HOME"])


class KeycloakError(RuntimeError):
    """Keycloak could not be started or did not become ready; the message says where to look."""


@dataclass(frozen=True)
class KeycloakConfig:
    """How to run Keycloak. The defaults give the shared dev server on 127.0.0.1:8080."""

    state_dir: Path = field(default_factory=lambda: checkout_root() / "var" / "keycloak")
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    realm: str = REALM
    realm_file: Path = REALM_FILE
    version: str = field(default_factory=lambda: _versions()["KEYCLOAK_VERSION"])
    java_home: Path = field(default_factory=_default_java_home)
    cache_dir: Path = field(default_factory=_cache_dir)
    heap: str = DEFAULT_HEAP

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{self.realm}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def dist_dir(self) -> Path:
        return self.cache_dir / "keycloak" / self.version

    @property
    def home_dir(self) -> Path:
        return self.state_dir / "home"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "keycloak.log"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "keycloak.json"

    @property
    def realm_hash_file(self) -> Path:
        return self.state_dir / "realm.sha256"


@dataclass(frozen=True)
class KeycloakInfo:
    """A Keycloak serving the realm, and the URLs clients need."""

    base_url: str
    realm: str
    issuer: str
    # None when the Keycloak answering was not started by this checkout (then `stop` leaves it).
    pid: int | None
    log_file: Path
    console_admin_username: str = CONSOLE_ADMIN_USERNAME
    console_admin_password: str = CONSOLE_ADMIN_PASSWORD

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    @property
    def admin_url(self) -> str:
        """The realm's admin REST API (``…/admin/realms/<realm>``)."""
        return f"{self.base_url}/admin/realms/{self.realm}"


# Processes this Python process started, so `stop` can reap them (no zombies in a test run).
_children: dict[int, subprocess.Popen[bytes]] = {}


def _process_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: with the pid, identifies a process across pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); a zombie is not a running Keycloak.
    return None if fields[0] == "Z" else fields[19]


def _read_pid_file(config: KeycloakConfig) -> dict[str, str | int] | None:
    try:
        data: dict[str, str | int] = json.loads(config.pid_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data


def _recorded_pid(config: KeycloakConfig) -> int | None:
    """The pid in the pid file if that very process (same start time) is still alive."""
    recorded = _read_pid_file(config)
    if recorded is None:
        return None
    pid = int(recorded["pid"])
    if _process_start_time(pid) != str(recorded.get("start_time")):
        return None
    return pid


def _realm_ready(config: KeycloakConfig) -> bool:
    """Whether the realm's discovery document answers with the issuer we expect."""
    try:
        response = httpx.get(config.discovery_url, timeout=3.0)
    except httpx.HTTPError:
        return False
    if response.status_code != 200:
        return False
    try:
        issuer: object = response.json().get("issuer")
    except ValueError:
        return False
    return issuer == config.issuer


def _port_answers(config: KeycloakConfig) -> bool:
    try:
        httpx.get(config.base_url + "/", timeout=2.0)
    except httpx.HTTPError:
        return False
    return True


def _info(config: KeycloakConfig, pid: int | None) -> KeycloakInfo:
    return KeycloakInfo(
        base_url=config.base_url,
        realm=config.realm,
        issuer=config.issuer,
        pid=pid,
        log_file=config.log_file,
    )


def status(config: KeycloakConfig | None = None) -> KeycloakInfo | None:
    """The Keycloak answering the realm's discovery document, or None."""
    config = config or KeycloakConfig()
    if not _realm_ready(config):
        return None
    return _info(config, _recorded_pid(config))


def _log_tail(config: KeycloakConfig, lines: int = 25) -> str:
    try:
        return "\n".join(config.log_file.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _realm_hash(config: KeycloakConfig) -> str:
    return hashlib.sha256(config.realm_file.read_bytes()).hexdigest()


def _realm_changed(config: KeycloakConfig) -> bool:
    """Whether the realm file differs from the one the current database was made from."""
    if not config.realm_hash_file.exists():
        return True
    return config.realm_hash_file.read_text().strip() != _realm_hash(config)


def _prepare_home(config: KeycloakConfig, say: Callable[[str], None]) -> None:
    """Lay out the per-checkout home directory over the cached distribution."""
    dist = config.dist_dir
    if not (dist / ".complete").exists():
        raise KeycloakError(
            f"no Keycloak {config.version} distribution in {dist}: run `make infra` "
            "(or `bash infra/setup.d/20-keycloak.sh`)"
        )
    if not (config.java_home / "bin" / "java").exists():
        raise KeycloakError(
            f"no Java at {config.java_home}: Keycloak {config.version} needs Java 21+ "
            "(set SANDLADA_KEYCLOAK_JAVA_HOME)"
        )
    home = config.home_dir
    home.mkdir(parents=True, exist_ok=True)
    for name in ("lib", "conf", "themes"):
        link = home / name
        if link.is_symlink() and link.readlink() == dist / name:
            continue
        if link.is_symlink() or link.exists():
            # Left from another version: point it at the current distribution.
            link.unlink()
        link.symlink_to(dist / name)
    (home / "providers").mkdir(exist_ok=True)

    data = home / "data"
    if (data / "h2").exists() and _realm_changed(config):
        say(
            f"keycloak: {config.realm_file.name} changed since the dev database was made; "
            "recreating it (users and groups created since are dropped)"
        )
        shutil.rmtree(data / "h2")
    import_dir = data / "import"
    import_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config.realm_file, import_dir / f"{config.realm}-realm.json")
    config.realm_hash_file.write_text(_realm_hash(config) + "\n")


def _command(config: KeycloakConfig) -> list[str]:
    return [
        str(config.dist_dir / "bin" / "kc.sh"),
        # kc.sh sets kc.home.dir to the distribution; a later -D wins, so data and the realm
        # import come from this checkout's home directory instead.
        f"-Dkc.home.dir={config.home_dir}",
        "start-dev",
        f"--http-host={config.host}",
        f"--http-port={config.port}",
        # A fixed frontend URL gives one issuer whether a client says 127.0.0.1 or localhost.
        f"--hostname={config.base_url}",
        "--import-realm",
    ]


def _environment(config: KeycloakConfig) -> dict[str, str]:
    # The caller's KC_* settings or JAVA_OPTS would silently change the server under test.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("KC_", "KEYCLOAK_", "JAVA_OPTS", "QUARKUS_"))
        and name != "JAVA_HOME"
    }
    env["JAVA_HOME"] = str(config.java_home)
    env["JAVA_OPTS_KC_HEAP"] = config.heap
    env["KC_BOOTSTRAP_ADMIN_USERNAME"] = CONSOLE_ADMIN_USERNAME
    env["KC_BOOTSTRAP_ADMIN_PASSWORD"] = CONSOLE_ADMIN_PASSWORD
    return env


@contextlib.contextmanager
def _start_lock(config: KeycloakConfig) -> Iterator[None]:
    """Serialise concurrent starts (a test session and `make dev`) of one checkout's Keycloak."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with (config.state_dir / "launcher.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _default_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def start(
    config: KeycloakConfig | None = None,
    *,
    timeout: float = 300.0,
    progress: Callable[[str], None] | None = None,
) -> KeycloakInfo:
    """Start Keycloak unless the realm already answers; wait for its discovery document."""
    config = config or KeycloakConfig()
    say = progress or _default_progress
    with _start_lock(config):
        running = status(config)
        if running is not None and running.pid is not None and _realm_changed(config):
            # A running server keeps the realm it imported; an edited realm file needs a fresh
            # database, which only a restart gives (see _prepare_home).
            say(f"keycloak: {config.realm_file.name} changed; restarting pid {running.pid}")
            stop(config)
            running = None
        if running is not None:
            owner = f"pid {running.pid}" if running.pid else "not started by this checkout"
            say(f"keycloak: already serving {running.issuer} ({owner})")
            return running

        pid = _recorded_pid(config)
        if pid is None:
            if _port_answers(config):
                raise KeycloakError(
                    f"{config.base_url} answers but does not serve the realm {config.realm!r} "
                    "with the expected issuer; stop whatever holds the port or choose another"
                )
            _prepare_home(config, say)
            with config.log_file.open("ab") as log:
                process = subprocess.Popen(
                    _command(config),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_environment(config),
                    cwd=config.state_dir,
                    start_new_session=True,
                )
            pid = process.pid
            _children[pid] = process
            config.pid_file.write_text(
                json.dumps(
                    {
                        "pid": pid,
                        "start_time": _process_start_time(pid),
                        "url": config.base_url,
                        "version": config.version,
                    }
                )
            )
            say(
                f"keycloak: starting {config.version} at {config.base_url} "
                f"(pid {pid}, log {config.log_file})"
            )
        else:
            # Started earlier and still coming up: wait for it rather than start twice.
            say(f"keycloak: pid {pid} is starting; waiting for it")
        return _wait_ready(config, pid, timeout, say)


def _wait_ready(
    config: KeycloakConfig, pid: int, timeout: float, say: Callable[[str], None]
) -> KeycloakInfo:
    started = time.monotonic()
    deadline = started + timeout
    next_report = started + 10.0
    while time.monotonic() < deadline:
        if _realm_ready(config):
            say(f"keycloak: realm {config.realm!r} ready after {time.monotonic() - started:.1f}s")
            return _info(config, pid)
        process = _children.get(pid)
        if (process is not None and process.poll() is not None) or _process_start_time(pid) is None:
            config.pid_file.unlink(missing_ok=True)
            raise KeycloakError(
                f"keycloak exited during start-up; end of {config.log_file}:\n" + _log_tail(config)
            )
        if time.monotonic() >= next_report:
            last = _log_tail(config, 1).strip()
            say(f"keycloak: {time.monotonic() - started:.0f}s, still starting ({last[:120]})")
            next_report += 10.0
        time.sleep(0.5)
    raise KeycloakError(
        f"keycloak did not serve {config.discovery_url} within {timeout:.0f}s "
        f"(pid {pid} left running; `sandlada dev keycloak down` stops it); "
        f"end of {config.log_file}:\n" + _log_tail(config)
    )


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is still in the process group."""
    process = _children.get(pgid)
    if process is not None:
        process.poll()  # reaps our own child so it does not linger as a zombie
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def stop(config: KeycloakConfig | None = None, *, timeout: float = 30.0) -> bool:
    """Stop the Keycloak this checkout started (its whole process group); True if one ran."""
    config = config or KeycloakConfig()
    pid = _recorded_pid(config)
    config.pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    # The child leads its own session, so its group is kc.sh and the JVM, nothing of ours.
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            _children.pop(pid, None)
            return True
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _children.pop(pid, None)
    return True


def _group_sum(pgid: int, filename: str, key: str) -> int:
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            for line in (stat.parent / filename).read_text().splitlines():
                if line.startswith(key):
                    total += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
            continue
    return total


def rss_bytes(pid: int) -> int:
    """Resident set size of the process group led by ``pid`` (the JVM), in bytes."""
    return _group_sum(pid, "status", "VmRSS:")


def pss_bytes(pid: int) -> int:
    """Proportional set size of the process group led by ``pid``: shared pages split."""
    return _group_sum(pid, "smaps_rollup", "Pss:")
