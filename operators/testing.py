"""Run the operator as a real subprocess, for end-to-end tests and benchmarks.

Like `kopf.testing.KopfRunner`, but in its own process, so a test can SIGKILL it in the middle
of a reconcile and start it again, exactly as a crashing pod would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Self

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OperatorProcess:
    """``python -m operators`` against ``kubeconfig``; its log goes to ``log_path``."""

    def __init__(self, kubeconfig: Path, log_path: Path, *, install_crd: bool = True) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.install_crd = install_crd
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def health_url(self) -> str:
        """kopf's liveness endpoint: 200 once start-up ran and the apiserver answers."""
        return f"http://127.0.0.1:{self.port}/healthz"

    def start(self, timeout: float = 180.0) -> None:
        """Start the operator and wait until its health endpoint answers 200."""
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "SANDLADA_OPERATOR_HEALTH_URL": f"http://127.0.0.1:{self.port}/healthz",
            "SANDLADA_OPERATOR_INSTALL_CRD": "true" if self.install_crd else "false",
        }
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "operators"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"operator exited with {self._process.returncode}; see {self.log_path}"
                )
            try:
                if httpx.get(self.health_url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)  # polling a port that is not listening yet
        # Never leave an unhealthy operator running: it would keep reconciling the shared
        # cluster with whatever code it started with.
        self.stop()
        raise TimeoutError(f"operator not healthy within {timeout}s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: no clean-up, no chance to finish what it was doing."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)
        self._close_log()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM and wait, as Kubernetes stops a pod."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
