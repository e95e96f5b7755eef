"""Control-plane test helpers: the app on the test's rolled-back connection, and factories."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from controlplane.app import create_app
from controlplane.audit.service import Actor
from controlplane.capacity import service as capacity_service
from controlplane.database import Database
from controlplane.settings import Settings
from tests.fixtures.tokens import ADMIN, KIRUNA, KIRUNA_REQUESTER, Persona, TestIssuer

GPU_MODEL = "NVIDIA-A100-SXM4-80GB"


@pytest.fixture
def settings(oidc_issuer: TestIssuer, engine: Any) -> Settings:
    return Settings(
        environment="test",
        database_url=str(engine.url.render_as_string(hide_password=False)),
        oidc_issuer=oidc_issuer.url,
        # Rotation tests mint with a brand-new key right after the first fetch.
        jwks_min_refetch_seconds=0,
    )


@pytest.fixture
def app(settings: Settings, database: Database) -> FastAPI:
    return create_app(settings, database)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


class Api:
    """Calls the API as a persona; keeps tests about behaviour, not plumbing."""

    def __init__(self, client: TestClient | httpx.Client, issuer: TestIssuer) -> None:
        self.client = client
        self.issuer = issuer

    def request(
        self, method: str, path: str, persona: Persona | None = KIRUNA_REQUESTER, **kwargs: Any
    ) -> httpx.Response:
        headers = self.issuer.headers(persona) if persona is not None else {}
        headers.update(kwargs.pop("headers", {}))
        return self.client.request(method, path, headers=headers, **kwargs)

    def submit(self, persona: Persona = KIRUNA_REQUESTER, **overrides: Any) -> dict[str, Any]:
        response = self.request(
            "POST", "/api/v1/sandbox-requests", persona, json=request_body(**overrides)
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def approve(self, request_id: int, **body: Any) -> httpx.Response:
        return self.request(
            "POST", f"/api/v1/sandbox-requests/{request_id}/approve", ADMIN, json=body
        )


@pytest.fixture
def api(client: TestClient, oidc_issuer: TestIssuer) -> Api:
    return Api(client, oidc_issuer)


def request_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "kiruna-ai-pilot",
        "agency": {"name": "Kiruna kommun", "organisation_number": KIRUNA, "kind": "municipality"},
        "purpose": "Transcribe council meetings with a speech model.",
        "legal_basis": "Offentlighets- och sekretesslagen; kommunallagen 2 kap.",
        "data_classification": "internal",
        "ai_act_risk": "minimal",
        "quota": {
            "gpus": 2,
            "gpu_model": GPU_MODEL,
            "cpu": 16,
            "memory_gib": 64,
            "storage_gib": 200,
        },
        "end_date": (datetime.now(UTC).date() + timedelta(days=180)).isoformat(),
    }
    body.update(overrides)
    return body


def create_capacity(session: Session, total: int, gpu_model: str = GPU_MODEL) -> None:
    capacity_service.set_capacity(session, Actor("test"), gpu_model, total, 1.0)
    session.commit()


@pytest.fixture
def gpus(session: Session) -> None:
    """10 A100s in the cluster."""
    create_capacity(session, 10)


class ServedApp:
    """The app served by uvicorn on loopback from a thread, on its own committed database."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> ServedApp:
        self.thread.start()
        # uvicorn sets `started` once it listens; wait on the thread, not a sleep.
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn exited before it started")
            self.thread.join(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.app.state.database.dispose()


@pytest.fixture
def served_settings(oidc_issuer: TestIssuer, fresh_database_url: str) -> Settings:
    return Settings(
        environment="test",
        database_url=fresh_database_url,
        oidc_issuer=oidc_issuer.url,
        jwks_min_refetch_seconds=0,
    )
