"""`sandlada dev up|down`: the whole local platform, in order, with progress.

Order matters: the cluster first (the operator and the control plane talk to it), then Keycloak
(sign-in), the shared MLflow server, the Tenant operator (a child process, because the control
plane never imports `operators`), and finally the control plane itself in the foreground.
Every step reuses what already runs, so `make dev` twice is cheap.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from infra.cluster.launcher import Launcher
from infra.keycloak import launcher as keycloak
from infra.mlflow import server as mlflow
from infra.process import pid_alive as _alive

VAR = Path("var")
OPERATOR_STATE = VAR / "operator"


def _say(message: str) -> None:
    sys.stderr.write(f"==> {message}\n")
    sys.stderr.flush()


def _operator_pid() -> int | None:
    try:
        recorded = json.loads((OPERATOR_STATE / "operator.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    pid = int(recorded["pid"])
    return pid if _alive(pid) else None


def start_operator(
    kubeconfig: Path,
    say: Callable[[str], None] = _say,
    extra_env: dict[str, str] | None = None,
) -> int:
    """Run `python -m operators` in its own session against ``kubeconfig``; reuse a running one.

    ``extra_env`` adds settings, e.g. the MLflow server's URL and admin credentials.
    """
    running = _operator_pid()
    if running is not None:
        say(f"operator: already running (pid {running})")
        return running
    OPERATOR_STATE.mkdir(parents=True, exist_ok=True)
    log_file = OPERATOR_STATE / "operator.log"
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig.resolve()),
        "SANDLADA_OPERATOR_INSTALL_CRD": "true",
        **(extra_env or {}),
    }
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "operators"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    (OPERATOR_STATE / "operator.json").write_text(json.dumps({"pid": process.pid}))
    say(f"operator: started (pid {process.pid}, log {log_file})")
    return process.pid


def stop_operator(timeout: float = 15.0) -> bool:
    """Stop the operator `start_operator` recorded; True if one ran."""
    pid = _operator_pid()
    (OPERATOR_STATE / "operator.json").unlink(missing_ok=True)
    if pid is None:
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
    return True


def up() -> dict[str, str]:
    """Start every component the control plane needs; the environment for the control plane."""
    _say("1/4 local Kubernetes cluster")
    cluster = Launcher().up()
    _say(f"    cluster ready at {cluster.server} (kubeconfig {cluster.kubeconfig})")
    _say("2/4 Keycloak (realm sandlada)")
    realm = keycloak.start(progress=_say)
    _say(f"    Keycloak ready: {realm.issuer}")
    _say("3/4 MLflow tracking server")
    tracking = mlflow.start(progress=_say)
    _say(f"    MLflow ready at {tracking.url}")
    _say("4/4 Tenant operator")
    # The operator gives each tenant a workspace and credentials on this MLflow server.
    start_operator(
        cluster.kubeconfig,
        extra_env={
            "SANDLADA_OPERATOR_MLFLOW_URL": tracking.url,
            "SANDLADA_OPERATOR_MLFLOW_ADMIN_USERNAME": tracking.admin_username,
            "SANDLADA_OPERATOR_MLFLOW_ADMIN_PASSWORD": tracking.admin_password,
        },
    )
    return {
        "SANDLADA_KUBECONFIG": str(cluster.kubeconfig.resolve()),
        "SANDLADA_OIDC_ISSUER": realm.issuer,
        # Tenants' Tenant resources grant the MLflow started above (their egress policy).
        "SANDLADA_MLFLOW_ENABLED": "true",
    }


def down() -> None:
    """Stop everything `up` started, the reverse way."""
    _say("stopping the operator" if stop_operator() else "operator was not running")
    _say("stopping MLflow" if mlflow.stop() else "MLflow was not running")
    _say("stopping Keycloak" if keycloak.stop() else "Keycloak was not running")
    _say("stopping the cluster")
    Launcher().down(force=True)
