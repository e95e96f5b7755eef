"""Start, stop and inspect a local ``mlflow server`` process shared by all tenants.

The server runs with ``--enable-workspaces`` (one workspace per tenant) and MLflow's basic-auth
app (one user per tenant, granted only its own workspace), bound to 127.0.0.1. Everything it
writes lives under one state directory, by default ``var/mlflow/`` of the checkout:

- ``mlflow.db`` tracking store and ``auth.db`` users and grants (SQLite unless SQL URIs are
  given, e.g. PostgreSQL);
- ``artifacts/`` proxied artifact store (``workspaces/<name>/…`` per workspace);
- ``secrets.json`` admin password and Flask secret key, generated once, mode 0600;
- ``server.json`` pid and URL of the running server; ``server.log`` its output.

The child runs in its own session with output to the log file, so it never holds the caller's
terminal or stdout (a test runner or ``make dev`` can exit while it runs, and ``stop`` can end
its whole process group by id). Starting is idempotent: a healthy server is reused.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ADMIN_USERNAME = "admin"
DEFAULT_PORT = 5000
_HEALTH_PATH = "/health"
_AUTH_INI = """\
[mlflow]
# Tenants see nothing they were not granted: no default read access, and the reserved
# 'default' workspace is not opened to every user.
default_permission = NO_PERMISSIONS
grant_default_workspace_access = false
database_uri = {database_uri}
admin_username = {admin_username}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = {auth_cache_seconds}
"""


def checkout_root() -> Path:
    """The repository checkout this module lives in (``var/`` is git-ignored there)."""
    return Path(__file__).resolve().parents[2]


def default_state_dir() -> Path:
    return checkout_root() / "var" / "mlflow"


class MlflowServerError(RuntimeError):
    """The server could not be started or did not become healthy; the message says where to look."""


@dataclass(frozen=True)
class MlflowServerConfig:
    """How to run the server. Defaults give the shared dev server on port 5000."""

    state_dir: Path = field(default_factory=default_state_dir)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # One worker keeps the footprint small; the API is I/O bound on the store.
    workers: int = 1
    # None: a SQLite file in the state directory. Workspaces need a SQL store.
    backend_store_uri: str | None = None
    # None: ``auth.db`` (SQLite) in the state directory.
    auth_database_uri: str | None = None
    enable_workspaces: bool = True
    basic_auth: bool = True
    # MLflow's job runner starts a family of huey consumers (~1 GB RSS) that serve GenAI
    # features (scorers, online evaluation) notebooks' experiment tracking does not use.
    job_execution: bool = False
    # Every authenticated request otherwise re-hashes the password (scrypt, ~0.1-0.5 s of CPU
    # here), which dominates the API's cost. Revocation through the API is immediate on the
    # worker that handles it; other workers may accept a revoked password for this long.
    auth_cache_seconds: int = 30

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "server.json"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "server.log"

    @property
    def secrets_file(self) -> Path:
        return self.state_dir / "secrets.json"


@dataclass(frozen=True)
class MlflowServer:
    """A running server and how to reach it as its admin."""

    url: str
    pid: int
    admin_username: str
    admin_password: str
    state_dir: Path
    log_file: Path


def _load_or_create_secrets(config: MlflowServerConfig) -> dict[str, str]:
    """The admin password and Flask secret: generated on first use, stable afterwards.

    They must be stable because MLflow only applies the admin password when it creates the
    admin user in an empty auth database.
    """
    path = config.secrets_file
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded
    values = {
        "admin_password": secrets.token_urlsafe(24),
        "flask_secret_key": secrets.token_urlsafe(32),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    return values


def _read_pid_file(config: MlflowServerConfig) -> dict[str, str | int] | None:
    try:
        data: dict[str, str | int] = json.loads(config.pid_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data


def _is_our_process(pid: int) -> bool:
    """Whether ``pid`` is alive and still an mlflow server (pids get reused after a reboot)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return b"mlflow" in cmdline and b"server" in cmdline


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + _HEALTH_PATH, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _command(config: MlflowServerConfig) -> list[str]:
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    backend = config.backend_store_uri or f"sqlite:///{config.state_dir / 'mlflow.db'}"
    command = [
        str(mlflow_bin),
        "server",
        "--host",
        config.host,
        "--port",
        str(config.port),
        "--workers",
        str(config.workers),
        "--backend-store-uri",
        backend,
        "--serve-artifacts",
        "--artifacts-destination",
        str(config.state_dir / "artifacts"),
    ]
    if config.enable_workspaces:
        command.append("--enable-workspaces")
    if config.basic_auth:
        command += ["--app-name", "basic-auth"]
    return command


def _environment(config: MlflowServerConfig, values: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    # A caller's own tracking settings must not leak into the server it starts.
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env.pop(name, None)
    # Usage telemetry would leave the platform; tenants' data must not, and neither does this.
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "true" if config.job_execution else "false"
    env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = values["flask_secret_key"]
    if config.basic_auth:
        auth_ini = config.state_dir / "basic_auth.ini"
        auth_ini.write_text(
            _AUTH_INI.format(
                database_uri=config.auth_database_uri
                or f"sqlite:///{config.state_dir / 'auth.db'}",
                admin_username=ADMIN_USERNAME,
                auth_cache_seconds=config.auth_cache_seconds,
            )
        )
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(auth_ini)
        env["MLFLOW_AUTH_ADMIN_USERNAME"] = ADMIN_USERNAME
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = values["admin_password"]
    return env


def _handle(config: MlflowServerConfig, pid: int, values: dict[str, str]) -> MlflowServer:
    return MlflowServer(
        url=config.url,
        pid=pid,
        admin_username=ADMIN_USERNAME,
        admin_password=values["admin_password"],
        state_dir=config.state_dir,
        log_file=config.log_file,
    )


def status(config: MlflowServerConfig | None = None) -> MlflowServer | None:
    """The running, healthy server of this state directory, or None."""
    config = config or MlflowServerConfig()
    recorded = _read_pid_file(config)
    if recorded is None:
        return None
    pid = int(recorded["pid"])
    if not _is_our_process(pid) or recorded.get("url") != config.url or not _healthy(config.url):
        return None
    return _handle(config, pid, _load_or_create_secrets(config))


def _log_tail(config: MlflowServerConfig, lines: int = 20) -> str:
    try:
        return "\n".join(config.log_file.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def start(
    config: MlflowServerConfig | None = None,
    *,
    timeout: float = 180.0,
    progress: Callable[[str], None] | None = None,
) -> MlflowServer:
    """Start the server unless it already runs healthy; wait until ``/health`` answers."""
    config = config or MlflowServerConfig()
    say = progress or (lambda message: print(message, file=sys.stderr, flush=True))
    running = status(config)
    if running is not None:
        say(f"mlflow: already running at {running.url} (pid {running.pid})")
        return running

    recorded = _read_pid_file(config)
    if recorded is not None and _is_our_process(int(recorded["pid"])):
        # Started earlier and still coming up (or wedged): wait for it rather than start twice.
        pid = int(recorded["pid"])
    else:
        if _healthy(config.url):
            raise MlflowServerError(
                f"{config.url} already answers but is not the server of {config.state_dir}; "
                "stop it or choose another port"
            )
        config.state_dir.mkdir(parents=True, exist_ok=True)
        (config.state_dir / "artifacts").mkdir(exist_ok=True)
        values = _load_or_create_secrets(config)
        with config.log_file.open("ab") as log:
            process = subprocess.Popen(
                _command(config),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_environment(config, values),
                cwd=config.state_dir,
                start_new_session=True,
            )
        pid = process.pid
        config.pid_file.write_text(json.dumps({"pid": pid, "url": config.url}))
        say(f"mlflow: starting at {config.url} (pid {pid}, log {config.log_file})")

    deadline = time.monotonic() + timeout
    started = time.monotonic()
    next_report = started + 5.0
    while time.monotonic() < deadline:
        if _healthy(config.url):
            say(f"mlflow: healthy after {time.monotonic() - started:.1f}s")
            return _handle(config, pid, _load_or_create_secrets(config))
        if not _is_our_process(pid):
            config.pid_file.unlink(missing_ok=True)
            raise MlflowServerError(
                f"mlflow server exited during start-up; end of {config.log_file}:\n"
                + _log_tail(config)
            )
        if time.monotonic() >= next_report:
            waited = time.monotonic() - started
            say(f"mlflow: waiting for {config.url}{_HEALTH_PATH} ({waited:.0f}s)")
            next_report += 5.0
        time.sleep(0.25)
    raise MlflowServerError(
        f"mlflow server not healthy after {timeout:.0f}s; end of {config.log_file}:\n"
        + _log_tail(config)
    )


def stop(config: MlflowServerConfig | None = None, *, timeout: float = 30.0) -> bool:
    """Stop the server of this state directory; True if one was running."""
    config = config or MlflowServerConfig()
    recorded = _read_pid_file(config)
    if recorded is None:
        return False
    pid = int(recorded["pid"])
    config.pid_file.unlink(missing_ok=True)
    if not _is_our_process(pid):
        return False
    # The child leads its own session, so its process group holds the uvicorn workers (and the
    # job runner, if enabled) and no process of the caller's.
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


def _group_alive(pgid: int) -> bool:
    # Reap the leader if the caller started it (a test session does), so it does not linger
    # as a zombie; zombies do not count as alive below.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    return _group_has_members(pgid)


def _group_has_members(pgid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        # fields[0] is the state, fields[2] the process group id.
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc), for measuring the server's memory."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, queue = [], [pid]
    while queue:
        current = queue.pop()
        tree.append(current)
        queue.extend(children.get(current, []))
    return tree


def _sum_field(pid: int, filename: str, key: str) -> int:
    total = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/{filename}").read_text().splitlines():
                if line.startswith(key):
                    total += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` and its descendants, in bytes (shared pages count twice)."""
    return _sum_field(pid, "status", "VmRSS:")


def pss_bytes(pid: int) -> int:
    """Proportional set size of ``pid`` and its descendants: shared pages split, so it adds up."""
    return _sum_field(pid, "smaps_rollup", "Pss:")
