"""Queries on usage intervals and daily rollups (SQLite and PostgreSQL).

Writes that must happen once are conditional: an interval is inserted with ON CONFLICT DO
NOTHING on its UID, closed with ``WHERE ended_at IS NULL`` and folded with a compare-and-set on
``rolled_up_to``; the daily row is an ON CONFLICT DO UPDATE that adds. Whoever wins the
condition writes; everyone else writes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import CursorResult, Row, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from controlplane.models import StorageInterval, Tenant, UsageDaily, UsageInterval

Interval = UsageInterval | StorageInterval
IntervalModel = type[UsageInterval] | type[StorageInterval]
DailyRow = Row[date, str, float, float, float, float]


def _affected(result: Any) -> int:
    # DML results are CursorResults; Session.execute is typed as returning a plain Result.
    assert isinstance(result, CursorResult)
    return result.rowcount


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


class UsageRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def tenant_ids(self, slugs: Collection[str]) -> dict[str, int]:
        rows = self.session.execute(select(Tenant.slug, Tenant.id).where(Tenant.slug.in_(slugs)))
        return dict(rows.tuples().all())

    def insert_ignore(self, model: IntervalModel, key: str, values: dict[str, Any]) -> bool:
        """Insert one interval unless its UID is known; True if inserted."""
        statement = (
            _insert(self.session, model.__table__)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[key])
            # RETURNING, not rowcount: on PostgreSQL the rowcount SQLAlchemy reports for this
            # one-row insert was 1 even when the conflict inserted nothing (seen in tests).
            .returning(model.__table__.c.id)
        )
        return self.session.execute(statement).first() is not None

    def close(
        self, model: IntervalModel, key: str, uid: str, ended_at: datetime, **extra: Any
    ) -> bool:
        """Set the end of an open interval; True if this call closed it."""
        statement = (
            update(model)
            .where(getattr(model, key) == uid, model.ended_at.is_(None))
            .values(ended_at=ended_at, **extra)
            .execution_options(synchronize_session=False)
        )
        return bool(_affected(self.session.execute(statement)))

    def get(self, model: IntervalModel, key: str, uid: str) -> Interval | None:
        row = self.session.scalars(select(model).where(getattr(model, key) == uid)).one_or_none()
        assert row is None or isinstance(row, UsageInterval | StorageInterval)
        return row

    def advance(
        self, model: IntervalModel, interval_id: int, old: datetime | None, new: datetime
    ) -> bool:
        """Compare-and-set ``rolled_up_to`` from ``old`` to ``new``; True if this call did."""
        condition = model.rolled_up_to.is_(None) if old is None else model.rolled_up_to == old
        statement = (
            update(model)
            .where(model.id == interval_id, condition)
            .values(rolled_up_to=new)
            .execution_options(synchronize_session=False)
        )
        return bool(_affected(self.session.execute(statement)))

    def add_daily(self, tenant_id: int, day: date, gpu_model: str, **seconds: float) -> None:
        """Add to one (tenant, day, model) row, creating it if needed."""
        values = {
            "gpu_seconds": 0.0,
            "cpu_core_seconds": 0.0,
            "memory_gib_seconds": 0.0,
            "storage_gib_seconds": 0.0,
            **seconds,
        }
        table = UsageDaily.__table__
        statement = _insert(self.session, table).values(
            tenant_id=tenant_id, day=day, gpu_model=gpu_model, **values
        )
        statement = statement.on_conflict_do_update(
            index_elements=["tenant_id", "day", "gpu_model"],
            set_={
                name: table.c[name] + statement.excluded[name]
                for name, amount in values.items()
                if amount
            }
            or {"gpu_seconds": table.c.gpu_seconds},
        )
        self.session.execute(statement)

    def unfolded(self, model: IntervalModel, cutoff: datetime) -> list[Interval]:
        """Intervals with usage not yet in usage_daily: closed ones not folded to their end,
        open ones not folded up to ``cutoff``."""
        mark = func.coalesce(model.rolled_up_to, model.started_at)
        return self._select(
            model,
            or_(
                and_(model.ended_at.is_(None), mark < cutoff),
                and_(model.ended_at.is_not(None), mark < model.ended_at),
            ),
        )

    def open_intervals(self, model: IntervalModel) -> list[Interval]:
        return self._select(model, model.ended_at.is_(None))

    def _select(self, model: IntervalModel, *conditions: Any) -> list[Interval]:
        rows = self.session.scalars(select(model).where(*conditions).order_by(model.id)).all()
        return [row for row in rows if isinstance(row, UsageInterval | StorageInterval)]

    def touch(self, model: IntervalModel, uids: Collection[str], key: str, at: datetime) -> None:
        """Record that these open intervals were seen alive at ``at``."""
        if not uids:
            return
        self.session.execute(
            update(model)
            .where(getattr(model, key).in_(sorted(uids)), model.ended_at.is_(None))
            .values(last_seen_at=at)
            .execution_options(synchronize_session=False)
        )

    def daily_rows(self, tenant_id: int, first: date, last: date) -> Sequence[DailyRow]:
        return self.session.execute(
            select(
                UsageDaily.day,
                UsageDaily.gpu_model,
                UsageDaily.gpu_seconds,
                UsageDaily.cpu_core_seconds,
                UsageDaily.memory_gib_seconds,
                UsageDaily.storage_gib_seconds,
            ).where(UsageDaily.tenant_id == tenant_id, UsageDaily.day.between(first, last))
        ).all()

    def pending_for_tenant(
        self, model: IntervalModel, tenant_id: int, start: datetime, end: datetime
    ) -> list[Interval]:
        """The tenant's intervals overlapping [start, end) with usage not yet folded."""
        mark = func.coalesce(model.rolled_up_to, model.started_at)
        return self._select(
            model,
            model.tenant_id == tenant_id,
            model.started_at < end,
            or_(model.ended_at.is_(None), and_(mark < model.ended_at, model.ended_at > start)),
        )
