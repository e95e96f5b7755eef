"""The idle culler's kopf wiring in the real operator process (``python -m operators``).

The decision and the Jupyter probing are covered against real Jupyter servers in
``tests/integration/test_culler.py``; this proves the timer runs in the operator: with
``SANDLADA_CULLER_INTERVAL_SECONDS=1``, a Notebook whose ``status.startedAt`` says it started
two days ago (past its one-day maximum age) is stopped by the operator on its own, with the
reason in status and an Event, while a fresh one is left running.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client as k8s

from operators.testing import OperatorProcess
from tenants.catalog import NotebookDefaults, load_catalog
from tenants.notebook import PLURAL, notebook_body
from tenants.resource import GROUP, VERSION
from tests.fixtures.cluster import api_client, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]


@pytest.fixture
def operator(
    cluster: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OperatorProcess]:
    monkeypatch.setenv("SANDLADA_CULLER_INTERVAL_SECONDS", "1")
    process = OperatorProcess(cluster.kubeconfig, tmp_path / "operator.log")
    try:
        process.start(timeout=240)  # the shared 2-core machine can be slow to import kopf
        yield process
    finally:
        process.stop()


@pytest.fixture
def namespace(cluster: Any) -> Iterator[str]:
    core = k8s.CoreV1Api(api_client(cluster))
    name = f"t-culler-e2e-{uuid.uuid4().hex[:6]}"
    body: Any = {"metadata": {"name": name}}
    core.create_namespace(body)
    yield name
    core.delete_namespace(name)


def test_operator_stops_a_notebook_past_its_maximum_age(
    cluster: Any, operator: OperatorProcess, namespace: str
) -> None:
    custom = k8s.CustomObjectsApi(api_client(cluster))
    profile = load_catalog().get("cpu-small")
    assert profile is not None
    defaults = NotebookDefaults(idle_timeout_seconds=3600, max_age_seconds=86_400)
    for name in ("old", "young"):
        body = notebook_body(namespace, name, profile, "sub-1", "Anna", defaults)
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def get(name: str) -> dict[str, Any]:
        raw: Any = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        return dict(raw)

    # Let the Notebook operator write its first status (it resets startedAt and stopReason
    # when it starts a notebook), so the backdating below is not raced by it.
    def phase(name: str) -> str | None:
        status: dict[str, Any] = get(name).get("status") or {}
        return status.get("phase")

    wait_until(lambda: phase("old") and phase("young"), timeout=120, what="first statuses")

    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def backdate_and_check() -> dict[str, Any] | None:
        # The Notebook operator may (re)write startedAt as it works on the pod: say it again
        # until the culler has acted on it.
        notebook = get("old")
        if notebook["spec"].get("stopped"):
            return notebook
        if (notebook.get("status") or {}).get("startedAt") != two_days_ago:
            patch: Any = {"status": {"startedAt": two_days_ago}}
            custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                "old",
                patch,
                _content_type="application/merge-patch+json",
            )
        return None

    stopped = wait_until(backdate_and_check, timeout=120, what="the culler to stop 'old'")
    assert stopped["status"]["stopReason"] == "max-age"
    assert "maximum age of 1 d" in stopped["status"]["message"]
    events = k8s.CoreV1Api(api_client(cluster)).list_namespaced_event(
        namespace, field_selector="involvedObject.name=old"
    )
    assert any(e.reason == "MaxAgeReached" for e in events.items)
    young = get("young")
    assert not young["spec"].get("stopped", False)
    assert (young.get("status") or {}).get("stopReason") is None
