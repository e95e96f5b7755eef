"""The audit trail: an event per state change, a hash chain, and tamper detection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from controlplane.audit.service import Actor, event_hash, record, verify_chain
from controlplane.database import Database
from controlplane.models import AuditEvent
from tests.fixtures.tokens import ADMIN, KIRUNA_REQUESTER
from tests.integration.controlplane.conftest import Api, create_capacity

BASE = "/api/v1/audit"
SANDLADA = str(Path(sys.executable).with_name("sandlada"))


class TestAuditApi:
    def test_anonymous_is_401_and_requester_403(self, api: Api) -> None:
        assert api.request("GET", BASE, None).status_code == 401
        assert api.request("GET", BASE, KIRUNA_REQUESTER).status_code == 403

    def test_every_state_change_is_recorded(self, api: Api, gpus: None) -> None:
        created = api.submit()
        api.approve(created["id"], comment="ok")
        withdrawn = api.submit(name="other")
        api.request("POST", f"/api/v1/sandbox-requests/{withdrawn['id']}/withdraw")
        events = api.request("GET", BASE, ADMIN).json()
        assert [e["action"] for e in events] == [
            "capacity.set",
            "sandbox_request.submitted",
            "tenant.created",
            "sandbox_request.approved",
            "sandbox_request.submitted",
            "sandbox_request.withdrawn",
        ]
        approved = events[3]
        assert approved["actor"] == ADMIN.sub
        assert approved["before"]["status"] == "pending"
        assert approved["after"]["status"] == "approved"
        assert approved["after"]["tenant"] == "kiruna-ai-pilot"
        assert all(e["prev_hash"] == p["hash"] for p, e in pairwise(events))
        only_request = api.request(
            "GET",
            BASE,
            ADMIN,
            params={"subject_type": "sandbox_request", "subject_id": str(created["id"])},
        ).json()
        assert [e["action"] for e in only_request] == [
            "sandbox_request.submitted",
            "sandbox_request.approved",
        ]


class TestChain:
    def _three_events(self, session: Session) -> list[AuditEvent]:
        for n in range(3):
            record(session, Actor("tester"), "test.event", "thing", n, after={"n": n, "å": "ö"})
        session.flush()
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))

    def test_intact_chain_verifies(self, session: Session) -> None:
        self._three_events(session)
        report = verify_chain(session)
        assert report.ok and report.events == 3

    def test_changed_content_is_detected(self, session: Session) -> None:
        events = self._three_events(session)
        session.execute(
            update(AuditEvent).where(AuditEvent.id == events[1].id).values(after={"n": 99})
        )
        session.expire_all()
        report = verify_chain(session)
        assert not report.ok
        assert report.first_bad_id == events[1].id
        assert "changed" in (report.problem or "")

    def test_removed_event_is_detected(self, session: Session) -> None:
        events = self._three_events(session)
        session.execute(delete(AuditEvent).where(AuditEvent.id == events[1].id))
        session.expire_all()
        report = verify_chain(session)
        assert not report.ok
        assert report.first_bad_id == events[2].id
        assert "link" in (report.problem or "")

    def test_rewritten_hash_is_detected_downstream(self, session: Session) -> None:
        # A forger who recomputes the changed event's own hash still breaks the next link.
        events = self._three_events(session)
        session.execute(
            update(AuditEvent).where(AuditEvent.id == events[1].id).values(actor="mallory")
        )
        session.expire_all()
        forged = session.get(AuditEvent, events[1].id)
        assert forged is not None
        session.execute(
            update(AuditEvent).where(AuditEvent.id == forged.id).values(hash=event_hash(forged))
        )
        session.expire_all()
        report = verify_chain(session)
        assert not report.ok
        assert report.first_bad_id == events[2].id


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SANDLADA_DATABASE_URL": database_url}
    return subprocess.run(
        [SANDLADA, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_audit_verify_detects_tampering(fresh_database_url: str) -> None:
    database = Database.from_url(fresh_database_url)
    try:
        with database.session(write=True) as session:
            create_capacity(session, 4)
            create_capacity(session, 6)
            create_capacity(session, 8)
        ok = _cli(fresh_database_url, "audit", "verify", "--output", "json")
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout) == {
            "ok": True,
            "events": 3,
            "first_bad_id": None,
            "problem": None,
        }
        with database.session(write=True) as session, session.begin():
            second = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()[1]
            session.execute(
                update(AuditEvent).where(AuditEvent.id == second.id).values(actor="mallory")
            )
        broken = _cli(fresh_database_url, "audit", "verify", "--output", "json")
        assert broken.returncode == 1
        assert json.loads(broken.stdout)["first_bad_id"] == second.id
    finally:
        database.dispose()
