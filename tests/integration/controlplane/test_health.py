"""/healthz, /readyz and /metrics, and error rendering outside the API routes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from controlplane.app import create_app
from controlplane.database import Database
from controlplane.settings import Settings
from tests.integration.controlplane.conftest import Api


def test_healthz(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_the_database(api: Api, settings: Settings) -> None:
    assert api.client.get("/readyz").json() == {"status": "ok"}
    unreachable = Database.from_url("postgresql+psycopg://nobody@127.0.0.1:9/none")
    with TestClient(create_app(settings, unreachable)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"


def test_metrics_count_requests_by_route(api: Api) -> None:
    api.request("GET", "/api/v1/sandbox-requests/12345")
    text = api.client.get("/metrics").text
    assert (
        'sandlada_http_requests_total{method="GET",route="/api/v1/sandbox-requests/{request_id}",'
        'status="404"} 1.0' in text
    )


def test_unknown_route_and_method_render_the_error_body(api: Api) -> None:
    assert api.client.get("/nope").json() == {"error": "not_found", "detail": "Not Found"}
    response = api.client.delete("/healthz")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
