"""50 concurrent approvals at capacity for 10 GPUs: no oversubscription, no duplicate tenant.

Each approval runs in its own thread with its own session and connection on a committed
database, as concurrent API requests would; on PostgreSQL the row locks do the work, on SQLite
the single write lock does.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text

from controlplane import database as database_module
from controlplane.audit.service import verify_chain
from controlplane.auth.principal import User
from controlplane.database import Database
from controlplane.errors import SandladaError
from controlplane.models import RequestStatus, SandboxRequest, Tenant
from controlplane.requests import service as requests
from controlplane.requests.schemas import ApproveIn, SandboxRequestIn
from controlplane.settings import Settings
from tests.fixtures.tokens import ADMIN, KIRUNA, KIRUNA_REQUESTER, TestIssuer
from tests.integration.controlplane.conftest import (
    GPU_MODEL,
    ServedApp,
    create_capacity,
    request_body,
)

ATTEMPTS = 50
DISTINCT_REQUESTS = 30
CAPACITY = 10


def _user(persona_sub: str, *, admin: bool) -> User:
    return User(
        subject=persona_sub,
        username=persona_sub,
        name=persona_sub,
        email=None,
        roles=frozenset({"platform-admin"} if admin else ()),
        groups=frozenset(),
        organisation_number="2120002742",
        organisation_claim=KIRUNA,
        is_platform_admin=admin,
    )


def test_concurrent_approvals_never_oversubscribe(fresh_database_url: str) -> None:
    database = Database.from_url(fresh_database_url, pool_size=ATTEMPTS, max_overflow=0)
    requester = _user(KIRUNA_REQUESTER.sub, admin=False)
    admin = _user(ADMIN.sub, admin=True)
    try:
        with database.session(write=True) as session:
            create_capacity(session, CAPACITY)
            ids = []
            for _ in range(DISTINCT_REQUESTS):
                # One name for all: concurrent approvals also race for the same slug.
                body = SandboxRequestIn.model_validate(
                    {
                        "name": "Kiruna AI-pilot",
                        "agency": {
                            "name": "Kiruna kommun",
                            "organisation_number": KIRUNA,
                            "kind": "municipality",
                        },
                        "purpose": "p",
                        "legal_basis": "l",
                        "data_classification": "open",
                        "ai_act_risk": "limited",
                        "quota": {
                            "gpus": 1,
                            "gpu_model": GPU_MODEL,
                            "cpu": 1,
                            "memory_gib": 1,
                            "storage_gib": 1,
                        },
                        "end_date": (datetime.now(UTC).date() + timedelta(days=30)).isoformat(),
                    }
                )
                ids.append(requests.submit(session, requester, body).id)
            session.commit()

        barrier = threading.Barrier(ATTEMPTS)
        outcomes: list[str] = []
        lock = threading.Lock()

        def approve(request_id: int) -> None:
            barrier.wait(timeout=60)
            outcome = "approved"
            with database.session(write=True) as session:
                try:
                    requests.approve(session, admin, request_id, ApproveIn(), 1.0)
                    session.commit()
                except SandladaError as exc:
                    session.rollback()
                    outcome = exc.code
                except Exception as exc:  # recorded, so the assertion shows what went wrong
                    session.rollback()
                    outcome = f"unexpected {type(exc).__name__}: {exc}"
            with lock:
                outcomes.append(outcome)

        threads = [
            threading.Thread(target=approve, args=(ids[i % DISTINCT_REQUESTS],))
            for i in range(ATTEMPTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(t.is_alive() for t in threads)

        tally = Counter(outcomes)
        assert set(tally) <= {"approved", "capacity_exceeded", "invalid_state"}, tally
        assert tally["approved"] == CAPACITY, tally
        assert sum(tally.values()) == ATTEMPTS

        with database.session() as session:
            tenants = session.scalars(select(Tenant)).all()
            assert sum(t.gpus for t in tenants) == CAPACITY
            assert len(tenants) == CAPACITY
            assert len({t.request_id for t in tenants}) == CAPACITY
            assert len({t.slug for t in tenants}) == CAPACITY
            approved = session.scalar(
                select(func.count())
                .select_from(SandboxRequest)
                .where(SandboxRequest.status == RequestStatus.APPROVED)
            )
            assert approved == CAPACITY
            assert verify_chain(session).ok
    finally:
        database.dispose()


def test_concurrent_approvals_over_http(served_settings: Settings, oidc_issuer: TestIssuer) -> None:
    """The same rule through the served app: session dependency, locks and error rendering."""
    database = Database.from_url(served_settings.database_url)
    with database.session(write=True) as session:
        create_capacity(session, 5)
    database.dispose()
    with (
        ServedApp(served_settings) as served,
        httpx.Client(base_url=served.url, timeout=60) as client,
    ):
        requester = oidc_issuer.headers(KIRUNA_REQUESTER, expires_in=600)
        admin = oidc_issuer.headers(ADMIN, expires_in=600)
        ids = []
        for n in range(12):
            response = client.post(
                "/api/v1/sandbox-requests", headers=requester, json=request_body(name=f"h{n}")
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        barrier = threading.Barrier(len(ids))
        statuses: list[tuple[int, str]] = []

        def approve(request_id: int) -> None:
            barrier.wait(timeout=60)
            response = client.post(
                f"/api/v1/sandbox-requests/{request_id}/approve",
                headers=admin,
                json={
                    "quota": {
                        "gpus": 2,
                        "gpu_model": GPU_MODEL,
                        "cpu": 1,
                        "memory_gib": 1,
                        "storage_gib": 1,
                    }
                },
            )
            statuses.append((response.status_code, response.json().get("error", "")))

        threads = [threading.Thread(target=approve, args=(i,)) for i in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        # 5 GPUs, 2 per approval: two fit, the rest are refused as capacity, none fails.
        assert sorted(statuses) == [(200, "")] * 2 + [(409, "capacity_exceeded")] * 10
        capacity = client.get("/api/v1/capacity", headers=admin).json()
        assert capacity == [
            {"gpu_model": GPU_MODEL, "total": 5, "granted": 4, "free": 1, "admin_override": True}
        ]


def test_lock_not_had_in_time_is_503_database_busy(
    served_settings: Settings, oidc_issuer: TestIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer holds the lock past the wait: 503 with Retry-After, never a 500."""
    monkeypatch.setattr(database_module, "LOCK_WAIT_SECONDS", 1)
    url = served_settings.database_url
    with (
        ServedApp(served_settings) as served,
        httpx.Client(base_url=served.url, timeout=60) as client,
    ):
        requester = oidc_issuer.headers(KIRUNA_REQUESTER, expires_in=600)
        admin = oidc_issuer.headers(ADMIN, expires_in=600)
        body = request_body(quota={"gpus": 0, "cpu": 1, "memory_gib": 1, "storage_gib": 1})
        submitted = client.post("/api/v1/sandbox-requests", headers=requester, json=body)
        assert submitted.status_code == 201, submitted.text
        request_id = submitted.json()["id"]
        path = f"/api/v1/sandbox-requests/{request_id}/approve"

        with _lock_held(url, request_id):
            busy = client.post(path, headers=admin, json={})
            swedish = client.post(path, headers={**admin, "Accept-Language": "sv"}, json={})
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"] == "database_busy"
        assert busy.headers["Retry-After"] == "1"
        assert "try again" in busy.json()["detail"]
        assert swedish.status_code == 503, swedish.text
        assert "försök igen" in swedish.json()["detail"]
        # Nothing was half-written: the retry after the lock is gone approves once.
        retried = client.post(path, headers=admin, json={})
        assert retried.status_code == 200, retried.text
        assert retried.json()["status"] == "approved"


@contextmanager
def _lock_held(url: str, request_id: int) -> Iterator[None]:
    """SQLite: the database write lock; PostgreSQL: the request's row lock."""
    if url.startswith("sqlite"):
        raw = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            raw.execute("BEGIN IMMEDIATE")
            yield
            raw.rollback()
        finally:
            raw.close()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(
                text("SELECT id FROM sandbox_requests WHERE id = :id FOR UPDATE"),
                {"id": request_id},
            )
            yield
            connection.rollback()
    finally:
        engine.dispose()
