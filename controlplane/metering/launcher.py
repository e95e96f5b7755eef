"""Start and stop the metering collector as a local child process (used by `sandlada dev`).

Exactly one collector should meter; a running one (recorded in var/meter/meter.json) is reused.
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

from infra.process import pid_alive

STATE = Path("var") / "meter"


def _say(message: str) -> None:
    sys.stderr.write(f"==> {message}\n")
    sys.stderr.flush()


def running_pid(state: Path = STATE) -> int | None:
    try:
        recorded = json.loads((state / "meter.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    pid = int(recorded["pid"])
    return pid if pid_alive(pid) else None


def start(
    env: dict[str, str] | None = None, say: Callable[[str], None] = _say, state: Path = STATE
) -> int:
    """Run `python -m controlplane.metering` in its own session; reuse a running one."""
    pid = running_pid(state)
    if pid is not None:
        say(f"metering: already running (pid {pid})")
        return pid
    state.mkdir(parents=True, exist_ok=True)
    log_file = state / "meter.log"
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "controlplane.metering"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    (state / "meter.json").write_text(json.dumps({"pid": process.pid}))
    say(f"metering: started (pid {process.pid}, log {log_file})")
    return process.pid


def stop(timeout: float = 15.0, state: Path = STATE) -> bool:
    """Stop the collector `start` recorded; True if one ran."""
    pid = running_pid(state)
    (state / "meter.json").unlink(missing_ok=True)
    if pid is None:
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid):
        os.killpg(pid, signal.SIGKILL)
    return True
