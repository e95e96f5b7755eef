"""Write and verify the audit trail.

Each event stores the hash of the event before it and its own hash over its content, so that
changing, removing or reordering any stored event breaks the chain from there on, which
``sandlada audit verify`` reports.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from controlplane.audit.repository import AuditRepository
from controlplane.auth.principal import User
from controlplane.models import AuditEvent

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class Actor:
    """Who caused a change: a person (token subject) or a named system component."""

    subject: str
    name: str | None = None

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(subject=user.subject, name=user.username)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(event: AuditEvent) -> str:
    """The hash of an event's content and its predecessor's hash (canonical JSON, SHA-256)."""
    content = {
        "prev_hash": event.prev_hash,
        "occurred_at": _timestamp(event.occurred_at),
        "actor": event.actor,
        "actor_name": event.actor_name,
        "action": event.action,
        "subject_type": event.subject_type,
        "subject_id": event.subject_id,
        "before": event.before,
        "after": event.after,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    session: Session,
    actor: Actor,
    action: str,
    subject_type: str,
    subject_id: str | int,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event to the chain in the caller's transaction."""
    repository = AuditRepository(session)
    repository.lock_chain()
    last = repository.last()
    # Microseconds are kept but anything finer is not, so the stored value hashes the same.
    event = AuditEvent(
        occurred_at=datetime.now(UTC),
        actor=actor.subject,
        actor_name=actor.name,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        before=before,
        after=after,
        prev_hash=last.hash if last else GENESIS_HASH,
    )
    event.hash = event_hash(event)
    return repository.add(event)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    first_bad_id: int | None = None
    problem: str | None = None


def verify_chain(session: Session) -> ChainReport:
    """Walk the whole chain; report the first event whose links or content do not hold."""
    expected_prev = GENESIS_HASH
    count = 0
    for event in AuditRepository(session).iterate_in_order():
        count += 1
        if event.prev_hash != expected_prev:
            return ChainReport(
                ok=False,
                events=count,
                first_bad_id=event.id,
                problem="previous-hash link broken (an event was removed, reordered or inserted)",
            )
        if event_hash(event) != event.hash:
            return ChainReport(
                ok=False,
                events=count,
                first_bad_id=event.id,
                problem="content does not match its hash (the event was changed)",
            )
        expected_prev = event.hash
    return ChainReport(ok=True, events=count)


def list_events(
    session: Session,
    *,
    subject_type: str | None,
    subject_id: str | None,
    after_id: int,
    limit: int,
) -> list[AuditEvent]:
    return AuditRepository(session).list(
        subject_type=subject_type, subject_id=subject_id, after_id=after_id, limit=limit
    )
