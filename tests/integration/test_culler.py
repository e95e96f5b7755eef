"""The idle culler against real ``jupyter server`` processes and Notebook resources on the cluster.

Two Jupyter servers run on loopback with their own tokens; two Notebook resources in a fresh
tenant-style namespace stand for them, each with its token in ``nb-<name>-token``, and the
culler's endpoint resolution points at the local servers. One server is kept busy through its
REST API (contents requests move Jupyter's ``last_activity``), the other is left alone. The
culler runs its real checks (Secret read, ``GET /api/status``, status and spec patches, Event)
until the idle one is stopped; the busy one must still be running with its activity recorded.

Notebook timeouts are at least 60 s (the CRD says so), so the culler's clock is set 55 s ahead:
idleness beyond the timeout takes ~5 s of real time, awaited as a condition.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from infra.cluster.launcher import ClusterInfo
from infra.process import free_port
from operators.culler import CheckResult, Culler, NotebookView
from tenants.catalog import NotebookDefaults, load_catalog
from tenants.notebook import PLURAL, notebook_body, token_secret_name
from tenants.resource import GROUP, VERSION
from tests.fixtures.cluster import api_client, wait_until
from tests.fixtures.notebooks import ensure_notebook_crd

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

CLOCK_AHEAD = timedelta(seconds=55)
IDLE_TIMEOUT = 60


@dataclass
class JupyterServer:
    """A real ``jupyter server`` on loopback with a token."""

    url: str
    token: str
    process: subprocess.Popen[bytes]

    def get(self, path: str) -> httpx.Response:
        return httpx.get(
            f"{self.url}{path}", headers={"Authorization": f"token {self.token}"}, timeout=10
        )

    def status(self) -> dict[str, Any] | None:
        try:
            response = self.get("api/status")
        except httpx.HTTPError:
            return None
        body: dict[str, Any] | None = response.json() if response.status_code == 200 else None
        return body


def start_jupyter(directory: Path) -> JupyterServer:
    directory.mkdir(parents=True)
    port = free_port()
    token = uuid.uuid4().hex
    env = {
        **os.environ,
        # Keep runtime files, config and data of the throwaway server out of the home directory.
        "JUPYTER_RUNTIME_DIR": str(directory / "runtime"),
        "JUPYTER_CONFIG_DIR": str(directory / "config"),
        "JUPYTER_DATA_DIR": str(directory / "data"),
    }
    log = (directory / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={directory}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server = JupyterServer(f"http://127.0.0.1:{port}/", token, process)

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"jupyter server exited; see {directory / 'server.log'}")
        return server.status() is not None

    wait_until(up, timeout=60, what="jupyter server to answer /api/status")
    return server


@pytest.fixture
def jupyter_servers(tmp_path: Path) -> Iterator[Callable[[str], JupyterServer]]:
    started: list[JupyterServer] = []

    def start(name: str) -> JupyterServer:
        server = start_jupyter(tmp_path / name)
        started.append(server)
        return server

    yield start
    for server in started:
        server.process.terminate()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)


@pytest.fixture
def kube(cluster: ClusterInfo) -> Iterator[k8s.ApiClient]:
    api = api_client(cluster)
    ensure_notebook_crd(api)
    yield api
    api.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def namespace(kube: k8s.ApiClient) -> Iterator[str]:
    name = f"t-culler-{uuid.uuid4().hex[:8]}"
    core = k8s.CoreV1Api(kube)
    namespace_body: Any = {"metadata": {"name": name}}
    core.create_namespace(namespace_body)
    yield name
    core.delete_namespace(name)


def create_notebook(kube: k8s.ApiClient, namespace: str, name: str, token: str) -> None:
    catalog = load_catalog()
    profile = catalog.get("cpu-small")
    assert profile is not None
    defaults = NotebookDefaults(idle_timeout_seconds=IDLE_TIMEOUT, max_age_seconds=86_400)
    body = notebook_body(namespace, name, profile, "sub-1", "Anna Kiruna", defaults)
    secret: Any = {
        "metadata": {"name": token_secret_name(name)},
        "data": {"token": base64.b64encode(token.encode()).decode()},
    }
    k8s.CoreV1Api(kube).create_namespaced_secret(namespace, secret)
    k8s.CustomObjectsApi(kube).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )


def read_notebook(kube: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    body: Any = k8s.CustomObjectsApi(kube).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return dict(body)


def test_idle_notebook_is_stopped_active_one_survives(
    kube: k8s.ApiClient, namespace: str, jupyter_servers: Callable[[str], JupyterServer]
) -> None:
    active = jupyter_servers("active")
    idle = jupyter_servers("idle")
    create_notebook(kube, namespace, "active", active.token)
    create_notebook(kube, namespace, "idle", idle.token)
    servers = {"active": active, "idle": idle}

    def resolve(notebook: NotebookView) -> str | None:
        server = servers.get(notebook.name)
        return server.url if server else None

    culler = Culler(kube, resolve=resolve, clock=lambda: datetime.now(UTC) + CLOCK_AHEAD)
    try:

        def one_pass() -> CheckResult | None:
            # Someone works in the active notebook: an authenticated API call, as the UI makes.
            assert active.get("api/contents").status_code == 200
            results = {r.name: r for r in culler.run_once(namespace)}
            assert results["active"].probe_error is None, results["active"]
            assert not results["active"].stopped, results["active"]
            return results["idle"] if results["idle"].stopped else None

        result = wait_until(one_pass, timeout=90, what="the idle notebook to be culled")
    finally:
        culler.close()

    assert read_notebook(kube, namespace, "idle")["spec"]["stopped"] is True
    # The status as the apiserver stored the culler's patch (a Notebook operator running on
    # the shared cluster may write its own status afterwards).
    status = result.recorded
    assert status is not None
    assert status["stopReason"] == "idle"
    assert "without activity" in status["message"] and "utan aktivitet" in status["message"]
    assert datetime.fromisoformat(status["stoppedAt"]) <= datetime.now(UTC) + CLOCK_AHEAD
    # What Jupyter said, not what we assumed: the idle server's activity is its start.
    idle_status = idle.status()
    assert idle_status is not None
    assert status["lastActivity"][:19] == idle_status["last_activity"][:19]

    survivor = read_notebook(kube, namespace, "active")
    assert not survivor["spec"].get("stopped", False)
    assert survivor["status"].get("stopReason") is None
    recorded = datetime.fromisoformat(survivor["status"]["lastActivity"])
    active_status = active.status()
    assert active_status is not None
    assert recorded > datetime.fromisoformat(active_status["started"]) - timedelta(seconds=1)
    assert recorded > datetime.fromisoformat(status["lastActivity"])

    events = k8s.CoreV1Api(kube).list_namespaced_event(
        namespace, field_selector="involvedObject.name=idle"
    )
    reasons = [
        (e.reason, e.involved_object.kind, e.source.component if e.source else None)
        for e in events.items
    ]
    assert ("IdleTimeout", "Notebook", "sandlada-culler") in reasons
    # The explanation, in both languages (status.message says the same unless a Notebook
    # operator has written its own since).
    (message,) = [e.message or "" for e in events.items if e.reason == "IdleTimeout"]
    assert "without activity (idle timeout 1 min)" in message
    assert "utan aktivitet" in message
    on_active = k8s.CoreV1Api(kube).list_namespaced_event(
        namespace, field_selector="involvedObject.name=active"
    )
    assert all(e.source is None or e.source.component != "sandlada-culler" for e in on_active.items)


def test_unreachable_server_is_not_culled_for_idleness(kube: k8s.ApiClient, namespace: str) -> None:
    """No answer from Jupyter is no evidence of idleness: nothing is stopped."""
    create_notebook(kube, namespace, "gone", "t0ken")
    port = free_port()  # nothing listens here
    culler = Culler(
        kube,
        resolve=lambda _: f"http://127.0.0.1:{port}/",
        clock=lambda: datetime.now(UTC) + timedelta(hours=2),
        http_timeout=2,
    )
    try:
        (result,) = culler.run_once(namespace)
    finally:
        culler.close()
    assert result.probe_error is not None
    assert not result.stopped
    assert not read_notebook(kube, namespace, "gone")["spec"].get("stopped", False)


def test_notebook_past_max_age_is_stopped_even_if_unreachable(
    kube: k8s.ApiClient, namespace: str
) -> None:
    create_notebook(kube, namespace, "old", "t0ken")
    culler = Culler(
        kube,
        resolve=lambda _: None,
        clock=lambda: datetime.now(UTC) + timedelta(days=2),
    )
    try:
        (result,) = culler.run_once(namespace)
    finally:
        culler.close()
    assert result.decision is not None and result.decision.reason == "max-age"
    assert result.recorded is not None and result.recorded["stopReason"] == "max-age"
    body = read_notebook(kube, namespace, "old")
    assert body["spec"]["stopped"] is True
    events = k8s.CoreV1Api(kube).list_namespaced_event(
        namespace, field_selector="involvedObject.name=old"
    )
    assert any("maximum age of 1 d" in (e.message or "") for e in events.items)
    # A stopped notebook is left alone by later passes.
    again = Culler(
        kube, resolve=lambda _: None, clock=lambda: datetime.now(UTC) + timedelta(days=2)
    )
    try:
        assert [r.stopped for r in again.run_once(namespace)] == [False]
    finally:
        again.close()
