"""Metering logic: record intervals once, fold them into daily rows once, read usage series.

Services take a session and never commit; the collector commits one transaction per event, so
closing an interval and folding it into ``usage_daily`` land together or not at all.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from controlplane.metering.days import day_start, local_day, split_by_day
from controlplane.metering.intervals import EndSource, PodInterval, VolumeInterval
from controlplane.metering.repository import Interval, UsageRepository
from controlplane.models import StorageInterval, UsageInterval

POD_KEY = "pod_uid"
PVC_KEY = "pvc_uid"


def record_pod(
    session: Session,
    *,
    tenant_id: int,
    interval: PodInterval,
    gpu_model: str,
    now: datetime,
    zone: ZoneInfo,
) -> bool:
    """Record a started pod (open or closed) and fold what is due; True if anything changed."""
    repo = UsageRepository(session)
    changed = repo.insert_ignore(
        UsageInterval,
        POD_KEY,
        {
            "pod_uid": interval.uid,
            "tenant_id": tenant_id,
            "namespace": interval.namespace,
            "pod_name": interval.name,
            "node_name": interval.node_name,
            "gpu_model": gpu_model,
            "gpus": interval.requests.gpus,
            "cpu_cores": interval.requests.cpu_cores,
            "memory_gib": interval.requests.memory_gib,
            "started_at": interval.started_at,
            "ended_at": interval.ended_at,
            "end_source": interval.end_source,
            "last_seen_at": now,
        },
    )
    if interval.ended_at is not None:
        changed |= repo.close(
            UsageInterval,
            POD_KEY,
            interval.uid,
            interval.ended_at,
            end_source=interval.end_source,
        )
        row = repo.get(UsageInterval, POD_KEY, interval.uid)
        if row is not None:
            changed |= fold(session, row, now, zone)
    return changed


def record_volume(
    session: Session, *, tenant_id: int, interval: VolumeInterval, now: datetime, zone: ZoneInfo
) -> bool:
    repo = UsageRepository(session)
    changed = repo.insert_ignore(
        StorageInterval,
        PVC_KEY,
        {
            "pvc_uid": interval.uid,
            "tenant_id": tenant_id,
            "namespace": interval.namespace,
            "name": interval.name,
            "size_gib": interval.size_gib,
            "started_at": interval.started_at,
            "ended_at": interval.ended_at,
            "last_seen_at": now,
        },
    )
    if interval.ended_at is not None:
        changed |= repo.close(StorageInterval, PVC_KEY, interval.uid, interval.ended_at)
        row = repo.get(StorageInterval, PVC_KEY, interval.uid)
        if row is not None:
            changed |= fold(session, row, now, zone)
    return changed


def fold_cutoff(now: datetime, zone: ZoneInfo) -> datetime:
    """Open intervals are folded up to the start of the current local day (completed days)."""
    return day_start(local_day(now, zone), zone)


def _contribution(row: Interval, seconds: float) -> tuple[str, dict[str, float]]:
    if isinstance(row, UsageInterval):
        return row.gpu_model, {
            "gpu_seconds": row.gpus * seconds,
            "cpu_core_seconds": row.cpu_cores * seconds,
            "memory_gib_seconds": row.memory_gib * seconds,
        }
    return "", {"storage_gib_seconds": row.size_gib * seconds}


def fold(session: Session, row: Interval, now: datetime, zone: ZoneInfo) -> bool:
    """Add the not yet folded part of ``row`` into usage_daily, exactly once.

    Closed intervals fold to their end; open ones to the start of the current local day. The
    daily rows and the ``rolled_up_to`` marker change in the caller's transaction, and the marker
    moves only if it still holds what this call read, so concurrent or repeated folds add once.
    """
    frm = row.rolled_up_to or row.started_at
    to = row.ended_at if row.ended_at is not None else fold_cutoff(now, zone)
    if to <= frm:
        return False
    repo = UsageRepository(session)
    model = type(row)
    if not repo.advance(model, row.id, row.rolled_up_to, to):
        return False
    for day, seconds in split_by_day(frm, to, zone):
        gpu_model, amounts = _contribution(row, seconds)
        repo.add_daily(row.tenant_id, day, gpu_model, **amounts)
    set_committed_value(row, "rolled_up_to", to)  # already written by the CAS
    return True


def fold_due(
    session: Session, now: datetime, zone: ZoneInfo, *, closed_backlog: bool = False
) -> int:
    """Fold completed days of open intervals (and, with ``closed_backlog``, closed intervals
    that were written without being folded)."""
    repo = UsageRepository(session)
    cutoff = fold_cutoff(now, zone)
    folded = 0
    for model in (UsageInterval, StorageInterval):
        for row in repo.unfolded(model, cutoff, closed_backlog=closed_backlog):
            folded += fold(session, row, now, zone)
    return folded


def close_vanished(session: Session, live_pods: set[str], now: datetime, zone: ZoneInfo) -> int:
    """Close open pod intervals whose pods are gone from a fresh list (they vanished while
    nobody watched): they end when the collector last saw them (approximate)."""
    repo = UsageRepository(session)
    closed = 0
    for row in repo.open_intervals(UsageInterval):
        assert isinstance(row, UsageInterval)
        if row.pod_uid in live_pods:
            continue
        end = max(row.last_seen_at, row.started_at)
        if repo.close(UsageInterval, POD_KEY, row.pod_uid, end, end_source=EndSource.LAST_SEEN):
            set_committed_value(row, "ended_at", end)
            fold(session, row, now, zone)
            closed += 1
    return closed


def close_vanished_volumes(session: Session, live: set[str], now: datetime, zone: ZoneInfo) -> int:
    repo = UsageRepository(session)
    closed = 0
    for row in repo.open_intervals(StorageInterval):
        assert isinstance(row, StorageInterval)
        if row.pvc_uid in live:
            continue
        end = max(row.last_seen_at, row.started_at)
        if repo.close(StorageInterval, PVC_KEY, row.pvc_uid, end):
            set_committed_value(row, "ended_at", end)
            fold(session, row, now, zone)
            closed += 1
    return closed


def touch(session: Session, pods: set[str], volumes: set[str], now: datetime) -> None:
    repo = UsageRepository(session)
    repo.touch(UsageInterval, pods, POD_KEY, now)
    repo.touch(StorageInterval, volumes, PVC_KEY, now)


@dataclass
class DayUsage:
    day: date
    gpu_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cpu_core_seconds: float = 0.0
    memory_gib_seconds: float = 0.0
    storage_gib_seconds: float = 0.0

    def add(self, gpu_model: str, amounts: dict[str, float]) -> None:
        if gpu_model and amounts.get("gpu_seconds"):
            self.gpu_seconds[gpu_model] += amounts["gpu_seconds"]
        self.cpu_core_seconds += amounts.get("cpu_core_seconds", 0.0)
        self.memory_gib_seconds += amounts.get("memory_gib_seconds", 0.0)
        self.storage_gib_seconds += amounts.get("storage_gib_seconds", 0.0)


def daily_usage(
    session: Session, tenant_id: int, *, first: date, last: date, now: datetime, zone: ZoneInfo
) -> list[DayUsage]:
    """Usage per local day from ``first`` to ``last`` inclusive, up to ``now``.

    The folded part comes from usage_daily; what is not folded yet (open intervals: today, and
    earlier days while the collector is behind) is computed from the intervals up to ``now``.
    Closed intervals are always folded (closing folds in the same transaction).
    """
    days = {
        first + timedelta(days=i): DayUsage(first + timedelta(days=i))
        for i in range((last - first).days + 1)
    }
    start, end = day_start(first, zone), day_start(last + timedelta(days=1), zone)
    for row in UsageRepository(session).usage_snapshot(tenant_id, first, last, end):
        if row.kind == "daily":
            days[row.day].add(
                row.gpu_model,
                {
                    "gpu_seconds": row.gpu_seconds,
                    "cpu_core_seconds": row.cpu_core_seconds,
                    "memory_gib_seconds": row.memory_gib_seconds,
                    "storage_gib_seconds": row.storage_gib_seconds,
                },
            )
            continue
        # An open interval: what is not folded yet, up to now.
        frm = max(row.rolled_up_to or row.started_at, start)
        to = min(max(now, frm), end)
        for day, seconds in split_by_day(frm, to, zone):
            if day in days:
                days[day].add(
                    row.gpu_model,
                    {
                        "gpu_seconds": row.gpus * seconds,
                        "cpu_core_seconds": row.cpu_cores * seconds,
                        "memory_gib_seconds": row.memory_gib * seconds,
                        "storage_gib_seconds": row.size_gib * seconds,
                    },
                )
    return [days[d] for d in sorted(days)]


def utcnow() -> datetime:
    return datetime.now(UTC)
