"""Queries on usage intervals and daily rollups (SQLite and PostgreSQL).

Writes that must happen once are conditional: an interval is inserted with ON CONFLICT DO
NOTHING on its UID, closed with ``WHERE ended_at IS NULL`` and folded with a compare-and-set on
``rolled_up_to``; the daily row is an ON CONFLICT DO UPDATE that adds. Whoever wins the
condition writes; everyone else writes nothing.

Every addition to ``usage_daily`` goes through :meth:`UsageRepository.add_daily`, which adds
the same amounts to the tenant's ``usage_monthly`` segment in the same transaction (the cost
report's summary; see ``controlplane.models.usage``).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CursorResult,
    Date,
    Float,
    and_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    null,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from controlplane.models import (
    PriceList,
    StorageInterval,
    Tenant,
    UsageDaily,
    UsageInterval,
    UsageMonthly,
)
from controlplane.models.base import UtcDateTime
from controlplane.models.usage import NO_PRICE_LIST

Interval = UsageInterval | StorageInterval
IntervalModel = type[UsageInterval] | type[StorageInterval]


def _affected(result: Any) -> int:
    # DML results are CursorResults; Session.execute is typed as returning a plain Result.
    assert isinstance(result, CursorResult)
    return result.rowcount


def _insert_for(dialect: str, table: Any) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _insert(session: Session, table: Any) -> Any:
    return _insert_for(session.get_bind().dialect.name, table)


_AMOUNTS = ("gpu_seconds", "cpu_core_seconds", "memory_gib_seconds", "storage_gib_seconds")


@functools.cache
def _monthly_upsert(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO UPDATE adding one day's amounts to its usage_monthly row."""
    table: Any = UsageMonthly.__table__
    day = bindparam("day", type_=Date())
    in_force = (
        select(func.max(PriceList.effective_from))
        .where(PriceList.effective_from <= day)
        .scalar_subquery()
    )
    insert = _insert_for(dialect, table)
    statement = insert.values(
        tenant_id=bindparam("tenant_id"),
        month=bindparam("month", type_=Date()),
        price_from=func.coalesce(in_force, literal(NO_PRICE_LIST, Date())),
        gpu_model=bindparam("gpu_model"),
        first_day=day,
        last_day=day,
        **{name: bindparam(name, type_=Float()) for name in _AMOUNTS},
    )
    least, greatest = (
        (func.least, func.greatest) if dialect == "postgresql" else (func.min, func.max)
    )
    # Adding 0.0 leaves a float as it is, so every amount is added whatever the interval had.
    return statement.on_conflict_do_update(
        index_elements=["tenant_id", "month", "price_from", "gpu_model"],
        set_={
            **{name: table.c[name] + statement.excluded[name] for name in _AMOUNTS},
            "first_day": least(table.c.first_day, statement.excluded.first_day),
            "last_day": greatest(table.c.last_day, statement.excluded.last_day),
        },
    )


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
        # populate_existing: the conditional UPDATEs here bypass the identity map, so a row
        # loaded earlier in this session must be refreshed, not returned as it was.
        query = (
            select(model)
            .where(getattr(model, key) == uid)
            .execution_options(populate_existing=True)
        )
        row = self.session.scalars(query).one_or_none()
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
        """Add to one (tenant, day, model) row, creating it if needed, and the same amounts to
        the tenant's monthly summary (:meth:`add_monthly`)."""
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
        self.add_monthly(tenant_id, day, gpu_model, values)

    def add_monthly(
        self, tenant_id: int, day: date, gpu_model: str, values: dict[str, float]
    ) -> None:
        """Add one day's amounts to the (tenant, month, price segment, model) summary row.

        The segment is the ``effective_from`` of the price list in force on ``day``, read in
        the same statement (a scalar subquery on the unique ``effective_from`` index). The
        statement is built once per dialect with bound parameters: it runs on every fold, and
        building and cache-keying an upsert per call cost more than executing it.
        """
        statement = _monthly_upsert(self.session.get_bind().dialect.name)
        self.session.execute(
            statement,
            {
                "tenant_id": tenant_id,
                "month": day.replace(day=1),
                "day": day,
                "gpu_model": gpu_model,
                "gpu_seconds": values.get("gpu_seconds", 0.0),
                "cpu_core_seconds": values.get("cpu_core_seconds", 0.0),
                "memory_gib_seconds": values.get("memory_gib_seconds", 0.0),
                "storage_gib_seconds": values.get("storage_gib_seconds", 0.0),
            },
        )

    def has_daily_from(self, day: date) -> bool:
        """Whether any usage_daily row is for ``day`` or later (an index probe)."""
        query = select(UsageDaily.id).where(UsageDaily.day >= day).limit(1)
        return self.session.execute(query).first() is not None

    def rebuild_monthly(self, since: date | None = None) -> int:
        """Recompute ``usage_monthly`` from ``usage_daily`` (months from ``since``'s on, or
        all), set-based; returns the summary rows written.

        For usage written into ``usage_daily`` by other means than :meth:`add_daily` (a bulk
        load) and for summary rows whose price segment no longer matches the price lists. The
        same statement as migration 0006's backfill.
        """
        postgres = self.session.get_bind().dialect.name == "postgresql"
        month = (
            "CAST(date_trunc('month', d.day) AS DATE)"
            if postgres
            else "date(d.day, 'start of month')"
        )
        sentinel = "CAST(:sentinel AS DATE)" if postgres else ":sentinel"
        where = "WHERE d.day >= :since" if since is not None else ""
        first = since.replace(day=1) if since is not None else NO_PRICE_LIST
        deleted = delete(UsageMonthly).where(UsageMonthly.month >= first)
        self.session.execute(deleted.execution_options(synchronize_session=False))
        statement = text(
            f"""
            INSERT INTO usage_monthly (tenant_id, month, price_from, gpu_model, gpu_seconds,
                                       cpu_core_seconds, memory_gib_seconds,
                                       storage_gib_seconds, first_day, last_day)
            SELECT tenant_id, month, price_from, gpu_model, sum(gpu_seconds),
                   sum(cpu_core_seconds), sum(memory_gib_seconds), sum(storage_gib_seconds),
                   min(day), max(day)
            FROM (
                SELECT d.tenant_id, {month} AS month,
                       coalesce((SELECT max(p.effective_from) FROM price_lists p
                                 WHERE p.effective_from <= d.day), {sentinel}) AS price_from,
                       d.gpu_model, d.day, d.gpu_seconds, d.cpu_core_seconds,
                       d.memory_gib_seconds, d.storage_gib_seconds
                FROM usage_daily d {where}
            ) AS segments
            GROUP BY tenant_id, month, price_from, gpu_model
            """  # noqa: S608 - only fixed SQL fragments are formatted in; values are bound
        )
        parameters: dict[str, Any] = {"sentinel": NO_PRICE_LIST.isoformat()}
        if since is not None:
            # pysqlite stores dates as ISO text; bind the same text there.
            parameters["since"] = first if postgres else first.isoformat()
        return _affected(self.session.execute(statement, parameters))

    def unfolded(
        self, model: IntervalModel, cutoff: datetime, *, closed_backlog: bool = False
    ) -> list[Interval]:
        """Intervals with usage due for usage_daily: open ones not folded up to ``cutoff``.

        Closing an interval folds it in the same transaction, so closed intervals are always
        folded; ``closed_backlog`` also finds closed ones that are not (rows written by other
        means, e.g. a bulk import) at the price of scanning every closed interval.
        """
        mark = func.coalesce(model.rolled_up_to, model.started_at)
        due = and_(model.ended_at.is_(None), mark < cutoff)
        if closed_backlog:
            due = or_(due, and_(model.ended_at.is_not(None), mark < model.ended_at))
        return self._select(model, due)

    def open_intervals(self, model: IntervalModel) -> list[Interval]:
        return self._select(model, model.ended_at.is_(None))

    def _select(self, model: IntervalModel, *conditions: Any) -> list[Interval]:
        query = select(model).where(*conditions).order_by(model.id)
        rows = self.session.scalars(query.execution_options(populate_existing=True)).all()
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

    def usage_snapshot(
        self, tenant_id: int, first: date, last: date, end: datetime
    ) -> Sequence[Any]:
        """The tenant's usage_daily rows for ``first``..``last`` and its open intervals started
        before ``end``, in ONE statement: one snapshot, so an interval closed (and folded) or
        folded at midnight between two reads is never counted twice or missed."""
        none_time = cast(null(), UtcDateTime())
        zero = literal(0.0)
        daily = select(
            literal("daily").label("kind"),
            UsageDaily.day,
            UsageDaily.gpu_model,
            UsageDaily.gpu_seconds,
            UsageDaily.cpu_core_seconds,
            UsageDaily.memory_gib_seconds,
            UsageDaily.storage_gib_seconds,
            none_time.label("started_at"),
            none_time.label("rolled_up_to"),
            zero.label("gpus"),
            zero.label("cpu_cores"),
            zero.label("memory_gib"),
            zero.label("size_gib"),
        ).where(UsageDaily.tenant_id == tenant_id, UsageDaily.day.between(first, last))
        pods = select(
            literal("pod"),
            cast(null(), Date()),
            UsageInterval.gpu_model,
            zero,
            zero,
            zero,
            zero,
            UsageInterval.started_at,
            UsageInterval.rolled_up_to,
            cast(UsageInterval.gpus, Float()),
            UsageInterval.cpu_cores,
            UsageInterval.memory_gib,
            zero,
        ).where(
            UsageInterval.tenant_id == tenant_id,
            UsageInterval.ended_at.is_(None),
            UsageInterval.started_at < end,
        )
        volumes = select(
            literal("storage"),
            cast(null(), Date()),
            literal(""),
            zero,
            zero,
            zero,
            zero,
            StorageInterval.started_at,
            StorageInterval.rolled_up_to,
            zero,
            zero,
            zero,
            StorageInterval.size_gib,
        ).where(
            StorageInterval.tenant_id == tenant_id,
            StorageInterval.ended_at.is_(None),
            StorageInterval.started_at < end,
        )
        return self.session.execute(union_all(daily, pods, volumes)).all()
