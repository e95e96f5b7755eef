"""Tenants on the shared MLflow server cannot see each other's experiments, runs or artifacts.

Against a real ``mlflow server`` (workspaces + basic auth, see ``tests/fixtures/mlflow.py``):
tenant A logs a run the way a notebook does (the MLflow client in a process whose environment
holds only A's credentials), then every read, search and write path of the REST API is tried
with tenant B's credentials, in each workspace B could name, and without credentials.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.mlflow.server import MlflowServer
from operators.mlflow_workspaces import (
    WORKSPACE_HEADER,
    TenantMlflowCredentials,
    ensure_tenant_workspace,
    remove_tenant_workspace,
)

# A notebook's job, run with nothing but the tenant's environment: log params, a metric and a
# file, then read them back through the client.
_NOTEBOOK = """
import json, pathlib, sys, tempfile
import mlflow
from mlflow import MlflowClient

experiment, secret = sys.argv[1], sys.argv[2]
mlflow.set_experiment(experiment)
with mlflow.start_run() as run:
    mlflow.log_params({"learning_rate": "0.01", "epochs": "3"})
    mlflow.log_metric("accuracy", 0.93)
    path = pathlib.Path(tempfile.mkdtemp(), "model-card.txt")
    path.write_text(secret)
    mlflow.log_artifact(str(path))
client = MlflowClient()
fetched = client.get_run(run.info.run_id)
local = client.download_artifacts(run.info.run_id, "model-card.txt", tempfile.mkdtemp())
print(json.dumps({
    "run_id": run.info.run_id,
    "experiment_id": run.info.experiment_id,
    "params": fetched.data.params,
    "metrics": fetched.data.metrics,
    "artifact": pathlib.Path(local).read_text(),
}))
"""


@dataclass(frozen=True)
class LoggedRun:
    credentials: TenantMlflowCredentials
    experiment_name: str
    experiment_id: str
    run_id: str
    secret: str
    client_view: dict[str, Any]


def _log_run_as(credentials: TenantMlflowCredentials, experiment: str) -> LoggedRun:
    secret = f"secret-{secrets.token_hex(8)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(credentials.env(), MLFLOW_DISABLE_TELEMETRY="true")
    done = subprocess.run(
        [sys.executable, "-c", _NOTEBOOK, experiment, secret],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    view = json.loads(done.stdout.strip().splitlines()[-1])
    return LoggedRun(
        credentials=credentials,
        experiment_name=experiment,
        experiment_id=view["experiment_id"],
        run_id=view["run_id"],
        secret=secret,
        client_view=view,
    )


def _as(server: MlflowServer, credentials: TenantMlflowCredentials | None) -> httpx.Client:
    auth = (credentials.username, credentials.password) if credentials else None
    return httpx.Client(base_url=server.url, auth=auth, timeout=30.0)


@dataclass(frozen=True)
class Tenants:
    a: LoggedRun
    b: LoggedRun


@pytest.fixture(scope="module")
def tenants(
    mlflow_server: MlflowServer, mlflow_admin: httpx.Client, mlflow_password_key: bytes
) -> Iterator[Tenants]:
    suffix = secrets.token_hex(3)
    slugs = (f"alpha-{suffix}", f"beta-{suffix}")
    creds = [
        ensure_tenant_workspace(mlflow_admin, slug, password_key=mlflow_password_key)
        for slug in slugs
    ]
    # Both tenants log a run, so B's refusals below cannot come from B's credentials not
    # working at all.
    runs = Tenants(a=_log_run_as(creds[0], "churn-a"), b=_log_run_as(creds[1], "churn-b"))
    yield runs
    for slug in slugs:
        remove_tenant_workspace(mlflow_admin, slug)


def _read_requests(run: LoggedRun) -> list[tuple[str, str, dict[str, Any]]]:
    """Every way to read A's run, experiment, metrics or artifact: (method, path, kwargs)."""
    ws, exp, rid = run.credentials.workspace, run.experiment_id, run.run_id
    return [
        ("GET", "/api/2.0/mlflow/runs/get", {"params": {"run_id": rid}}),
        ("GET", "/api/2.0/mlflow/experiments/get", {"params": {"experiment_id": exp}}),
        (
            "GET",
            "/api/2.0/mlflow/experiments/get-by-name",
            {"params": {"experiment_name": run.experiment_name}},
        ),
        (
            "GET",
            "/api/2.0/mlflow/metrics/get-history",
            {"params": {"run_id": rid, "metric_key": "accuracy"}},
        ),
        ("GET", "/api/2.0/mlflow/artifacts/list", {"params": {"run_id": rid}}),
        ("GET", "/get-artifact", {"params": {"run_id": rid, "path": "model-card.txt"}}),
        (
            "GET",
            f"/api/2.0/mlflow-artifacts/artifacts/workspaces/{ws}/{exp}/{rid}/artifacts/model-card.txt",
            {},
        ),
        ("GET", f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{rid}/artifacts/model-card.txt", {}),
        ("GET", f"/api/2.0/mlflow-artifacts/artifacts?path={exp}/{rid}/artifacts", {}),
    ]


def _write_requests(run: LoggedRun) -> list[tuple[str, str, dict[str, Any]]]:
    rid = run.run_id
    return [
        (
            "POST",
            "/api/2.0/mlflow/runs/log-parameter",
            {"json": {"run_id": rid, "key": "injected", "value": "1"}},
        ),
        ("POST", "/api/2.0/mlflow/runs/delete", {"json": {"run_id": rid}}),
        (
            "POST",
            "/api/2.0/mlflow/experiments/delete",
            {"json": {"experiment_id": run.experiment_id}},
        ),
        ("DELETE", f"/api/2.0/mlflow-artifacts/artifacts/{run.experiment_id}", {}),
    ]


class TestOwnTenant:
    def test_notebook_client_reads_back_params_metrics_and_artifact(self, tenants: Tenants) -> None:
        view = tenants.a.client_view
        assert view["params"] == {"learning_rate": "0.01", "epochs": "3"}
        assert view["metrics"] == {"accuracy": 0.93}
        assert view["artifact"] == tenants.a.secret

    def test_every_read_path_answers_the_owner(
        self, mlflow_server: MlflowServer, tenants: Tenants
    ) -> None:
        a = tenants.a
        with _as(mlflow_server, a.credentials) as client:
            for method, path, kwargs in _read_requests(a):
                headers = {WORKSPACE_HEADER: a.credentials.workspace}
                response = client.request(method, path, headers=headers, **kwargs)
                assert response.status_code == 200, (path, response.text[:300])
            artifact = client.get(
                "/get-artifact",
                params={"run_id": a.run_id, "path": "model-card.txt"},
                headers={WORKSPACE_HEADER: a.credentials.workspace},
            )
            assert artifact.text == a.secret

    def test_search_lists_own_experiment_and_run(
        self, mlflow_server: MlflowServer, tenants: Tenants
    ) -> None:
        a = tenants.a
        headers = {WORKSPACE_HEADER: a.credentials.workspace}
        with _as(mlflow_server, a.credentials) as client:
            experiments = client.post(
                "/api/2.0/mlflow/experiments/search", json={"max_results": 100}, headers=headers
            ).json()
            runs = client.post(
                "/api/2.0/mlflow/runs/search",
                json={"experiment_ids": [a.experiment_id]},
                headers=headers,
            ).json()
        assert [e["experiment_id"] for e in experiments["experiments"]] == [a.experiment_id]
        assert [r["info"]["run_id"] for r in runs["runs"]] == [a.run_id]

    def test_ensure_is_idempotent(
        self, mlflow_admin: httpx.Client, mlflow_password_key: bytes, tenants: Tenants
    ) -> None:
        a = tenants.a.credentials
        slug = a.workspace.removeprefix("t-")
        again = ensure_tenant_workspace(mlflow_admin, slug, password_key=mlflow_password_key)
        assert again == a
        roles = mlflow_admin.get(
            "/api/3.0/mlflow/users/roles/list", params={"username": a.username}
        ).json()["roles"]
        # One tenant role, plus MLflow's synthetic per-user role holding owner grants on what
        # the user created; all of them only in the tenant's own workspace.
        assert [r["name"] for r in roles if not r["name"].startswith("__user_")] == [
            "sandlada-tenant"
        ]
        assert {r["workspace"] for r in roles} == {a.workspace}


class TestOtherTenant:
    @pytest.mark.parametrize("workspace", ["own", "victim", "none"])
    def test_cannot_read_run_experiment_metrics_or_artifacts(
        self, mlflow_server: MlflowServer, tenants: Tenants, workspace: str
    ) -> None:
        a, b = tenants.a, tenants.b
        headers = {
            "own": {WORKSPACE_HEADER: b.credentials.workspace},
            "victim": {WORKSPACE_HEADER: a.credentials.workspace},
            "none": {},
        }[workspace]
        with _as(mlflow_server, b.credentials) as client:
            for method, path, kwargs in _read_requests(a):
                response = client.request(method, path, headers=headers, **kwargs)
                assert response.status_code in (403, 404), (path, response.status_code)
                assert a.secret not in response.text
                assert a.run_id not in response.text

    @pytest.mark.parametrize("workspace", ["own", "victim"])
    def test_cannot_write_into_or_delete_the_run(
        self, mlflow_server: MlflowServer, tenants: Tenants, workspace: str
    ) -> None:
        a, b = tenants.a, tenants.b
        ws = b.credentials.workspace if workspace == "own" else a.credentials.workspace
        with _as(mlflow_server, b.credentials) as client:
            for method, path, kwargs in _write_requests(a):
                response = client.request(method, path, headers={WORKSPACE_HEADER: ws}, **kwargs)
                assert response.status_code in (403, 404), (path, response.status_code)
        with _as(mlflow_server, a.credentials) as client:
            run = client.get(
                "/api/2.0/mlflow/runs/get",
                params={"run_id": a.run_id},
                headers={WORKSPACE_HEADER: a.credentials.workspace},
            ).json()["run"]
        assert run["info"]["lifecycle_stage"] == "active"
        assert "injected" not in {p["key"] for p in run["data"].get("params", [])}

    @pytest.mark.parametrize("workspace", ["own", "victim", "none"])
    def test_search_lists_nothing_of_the_other_tenant(
        self, mlflow_server: MlflowServer, tenants: Tenants, workspace: str
    ) -> None:
        a, b = tenants.a, tenants.b
        headers = {
            "own": {WORKSPACE_HEADER: b.credentials.workspace},
            "victim": {WORKSPACE_HEADER: a.credentials.workspace},
            "none": {},
        }[workspace]
        with _as(mlflow_server, b.credentials) as client:
            experiments = client.post(
                "/api/2.0/mlflow/experiments/search",
                json={"max_results": 1000, "view_type": "ALL"},
                headers=headers,
            )
            runs = client.post(
                "/api/2.0/mlflow/runs/search",
                json={"experiment_ids": [a.experiment_id], "run_view_type": "ALL"},
                headers=headers,
            )
            graphql = client.post(
                "/graphql",
                json={
                    "query": "query($id: String) { mlflowGetRun(input: {runId: $id})"
                    " { run { info { runId } } } }",
                    "variables": {"id": a.run_id},
                },
                headers=headers,
            )
        seen = [e["workspace"] for e in experiments.json().get("experiments", [])]
        assert a.credentials.workspace not in seen
        if workspace == "own":
            # Positive control: B does see its own experiment in its own workspace.
            assert experiments.status_code == 200
            assert b.experiment_id in [
                e["experiment_id"] for e in experiments.json()["experiments"]
            ]
        assert runs.status_code in (200, 403, 404)
        assert runs.json().get("runs", []) == []
        assert a.run_id not in graphql.text

    def test_workspace_listing_shows_only_own(
        self, mlflow_server: MlflowServer, tenants: Tenants
    ) -> None:
        with _as(mlflow_server, tenants.b.credentials) as client:
            listed = client.get("/api/3.0/mlflow/workspaces").json()["workspaces"]
        assert [w["name"] for w in listed] == [tenants.b.credentials.workspace]

    def test_cannot_create_in_the_other_workspace_or_the_default_one(
        self, mlflow_server: MlflowServer, tenants: Tenants
    ) -> None:
        with _as(mlflow_server, tenants.b.credentials) as client:
            for headers in ({WORKSPACE_HEADER: tenants.a.credentials.workspace}, {}):
                response = client.post(
                    "/api/2.0/mlflow/experiments/create",
                    json={"name": f"planted-{secrets.token_hex(3)}"},
                    headers=headers,
                )
                assert response.status_code in (403, 404), (headers, response.text[:300])


class TestUnauthenticated:
    @pytest.mark.parametrize("password", [None, "wrong-password"])
    def test_refused(
        self, mlflow_server: MlflowServer, tenants: Tenants, password: str | None
    ) -> None:
        a = tenants.a
        auth = (a.credentials.username, password) if password else None
        with httpx.Client(base_url=mlflow_server.url, auth=auth, timeout=30.0) as client:
            for method, path, kwargs in _read_requests(a):
                response = client.request(
                    method, path, headers={WORKSPACE_HEADER: a.credentials.workspace}, **kwargs
                )
                assert response.status_code == 401, (path, response.status_code)
            search = client.post("/api/2.0/mlflow/experiments/search", json={})
            assert search.status_code == 401


def _status_as(server: MlflowServer, credentials: TenantMlflowCredentials, exp_id: str) -> int:
    with _as(server, credentials) as client:
        return client.get(
            "/api/2.0/mlflow/experiments/get",
            params={"experiment_id": exp_id},
            headers={WORKSPACE_HEADER: credentials.workspace},
        ).status_code


def _login_status(server: MlflowServer, credentials: TenantMlflowCredentials) -> int:
    """A request that depends on nothing but the credentials (no workspace, no resource)."""
    with _as(server, credentials) as client:
        return client.get("/api/3.0/mlflow/workspaces").status_code


class TestRemoval:
    def test_removed_tenant_credentials_stop_working_and_data_is_gone(
        self, mlflow_server: MlflowServer, mlflow_admin: httpx.Client, mlflow_password_key: bytes
    ) -> None:
        slug = f"gamma-{secrets.token_hex(3)}"
        creds = ensure_tenant_workspace(mlflow_admin, slug, password_key=mlflow_password_key)
        run = _log_run_as(creds, "to-be-removed")
        artifacts = Path(mlflow_server.state_dir, "artifacts", "workspaces", creds.workspace)
        assert any(artifacts.rglob("model-card.txt"))
        assert _status_as(mlflow_server, creds, run.experiment_id) == 200

        remove_tenant_workspace(mlflow_admin, slug)

        assert _login_status(mlflow_server, creds) == 401
        # The workspace is gone too, and MLflow resolves it before authenticating: 404.
        assert _status_as(mlflow_server, creds, run.experiment_id) in (401, 404)
        assert mlflow_admin.get(f"/api/3.0/mlflow/workspaces/{creds.workspace}").status_code == 404
        assert not any(artifacts.rglob("*.txt"))
        # Removing again is a no-op, as a retried delete handler needs.
        remove_tenant_workspace(mlflow_admin, slug)

    def test_suspension_keeps_data_and_ensure_restores_access(
        self, mlflow_server: MlflowServer, mlflow_admin: httpx.Client, mlflow_password_key: bytes
    ) -> None:
        slug = f"delta-{secrets.token_hex(3)}"
        creds = ensure_tenant_workspace(mlflow_admin, slug, password_key=mlflow_password_key)
        run = _log_run_as(creds, "kept")

        remove_tenant_workspace(mlflow_admin, slug, keep_data=True)
        assert _login_status(mlflow_server, creds) == 401
        assert _status_as(mlflow_server, creds, run.experiment_id) == 401
        kept = mlflow_admin.get(
            "/api/2.0/mlflow/experiments/get",
            params={"experiment_id": run.experiment_id},
            headers={WORKSPACE_HEADER: creds.workspace},
        )
        assert kept.status_code == 200

        restored = ensure_tenant_workspace(mlflow_admin, slug, password_key=mlflow_password_key)
        assert restored == creds
        assert _status_as(mlflow_server, creds, run.experiment_id) == 200
        remove_tenant_workspace(mlflow_admin, slug)
