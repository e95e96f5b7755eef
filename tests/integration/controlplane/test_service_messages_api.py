"""The API's "cluster / identity provider not configured or unreachable" errors, sv and en.

The details come from the message catalogue in the language of ``Accept-Language``; the error
codes stay as they were (``cluster_not_configured`` 409, ``cluster_unavailable`` 503,
``unavailable`` 503).
"""

from __future__ import annotations

import socket
from pathlib import Path

import yaml
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from controlplane.app import create_app
from controlplane.database import Database
from controlplane.settings import Settings
from tests.fixtures.tokens import ADMIN, TestIssuer
from tests.integration.controlplane.conftest import Api
from tests.integration.controlplane.test_costs import make_tenant

SV = {"Accept-Language": "sv-SE"}


def _both(api: Api, method: str, path: str) -> tuple[dict[str, str], dict[str, str]]:
    english = api.request(method, path, ADMIN)
    swedish = api.request(method, path, ADMIN, headers=SV)
    assert english.status_code == swedish.status_code
    return english.json(), swedish.json()


def test_no_cluster_configured(api: Api) -> None:
    for path in ("/api/v1/capacity/sync", "/api/v1/tenants/sync"):
        english, swedish = _both(api, "POST", path)
        assert english["error"] == swedish["error"] == "cluster_not_configured"
        assert english["detail"] == (
            "no Kubernetes cluster is configured (SANDLADA_KUBECONFIG); tenants are recorded "
            "and provisioned once one is"
        )
        assert swedish["detail"] == (
            "inget Kubernetes-kluster är konfigurerat (SANDLADA_KUBECONFIG); miljöer "
            "registreras och skapas när ett kluster finns"
        )


def test_no_identity_administration_configured(api: Api, session: Session) -> None:
    make_tenant(session, "kiruna-m")
    session.commit()
    english, swedish = _both(api, "GET", "/api/v1/tenants/kiruna-m/members")
    assert english["error"] == swedish["error"] == "unavailable"
    assert english["detail"].startswith("identity administration is not configured")
    assert swedish["detail"].startswith("identitetsadministration är inte konfigurerad")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_unreachable_apiserver(
    settings: Settings, database: Database, oidc_issuer: TestIssuer, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "gone",
                        "cluster": {
                            "server": f"https://127.0.0.1:{_closed_port()}",
                            "insecure-skip-tls-verify": True,
                        },
                    }
                ],
                "users": [{"name": "gone", "user": {"token": "x"}}],
                "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "gone"}}],
                "current-context": "gone",
            }
        )
    )
    app = create_app(
        settings.model_copy(update={"kubeconfig": kubeconfig, "tenant_sync_seconds": 0}), database
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        english, swedish = _both(Api(client, oidc_issuer), "POST", "/api/v1/capacity/sync")
    assert english["error"] == swedish["error"] == "cluster_unavailable"
    assert english["detail"].startswith("Kubernetes is unreachable (")
    assert english["detail"].endswith("); try again shortly")
    assert swedish["detail"].startswith("Kubernetes går inte att nå just nu (")
    assert swedish["detail"].endswith("); försök igen om en stund")
