"""Queries on audit events."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from controlplane.database import is_postgresql
from controlplane.models import AuditEvent

# Arbitrary but fixed: the advisory lock that serialises appends to the chain on PostgreSQL.
_CHAIN_LOCK_KEY = 0x5A4E_D1A0


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def lock_chain(self) -> None:
        """Serialise appends until the transaction ends (SQLite writers are serial anyway)."""
        if is_postgresql(self.session):
            self.session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK_KEY}
            )

    def last(self) -> AuditEvent | None:
        return self.session.scalars(
            select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)
        ).first()

    def add(self, event: AuditEvent) -> AuditEvent:
        self.session.add(event)
        self.session.flush()
        return event

    def list(
        self,
        *,
        subject_type: str | None = None,
        subject_id: str | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[AuditEvent]:
        query = select(AuditEvent).where(AuditEvent.id > after_id)
        if subject_type is not None:
            query = query.where(AuditEvent.subject_type == subject_type)
        if subject_id is not None:
            query = query.where(AuditEvent.subject_id == subject_id)
        return list(self.session.scalars(query.order_by(AuditEvent.id).limit(limit)))

    def subjects_with(self, action: str, subject_type: str) -> set[str]:
        """Ids of the subjects that have at least one event of ``action``."""
        query = (
            select(AuditEvent.subject_id)
            .where(AuditEvent.action == action, AuditEvent.subject_type == subject_type)
            .distinct()
        )
        return set(self.session.scalars(query))

    def last_event(self, action: str, subject_type: str, subject_id: str) -> AuditEvent | None:
        query = select(AuditEvent).where(
            AuditEvent.action == action,
            AuditEvent.subject_type == subject_type,
            AuditEvent.subject_id == subject_id,
        )
        return self.session.scalars(query.order_by(AuditEvent.id.desc()).limit(1)).first()

    def iterate_in_order(self) -> Iterator[AuditEvent]:
        yield from self.session.scalars(
            select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=500)
        )
