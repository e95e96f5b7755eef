"""Metering on SQLite and PostgreSQL: intervals recorded once, folded into daily rows once."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controlplane.database import Database
from controlplane.metering import service
from controlplane.metering.intervals import EndSource, PodInterval, Requests, VolumeInterval
from controlplane.models import (
    Agency,
    AgencyKind,
    AiActRisk,
    DataClassification,
    SandboxRequest,
    StorageInterval,
    Tenant,
    UsageDaily,
    UsageInterval,
    UsageMonthly,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
L4 = "NVIDIA-L4"
REQUESTS = Requests(cpu_cores=2.0, memory_gib=8.0, gpus=1, gpu_resource="nvidia.com/gpu")
# 22:00 UTC = 23:00 in Stockholm: a 3-hour pod runs 1 h on the 28th and 2 h on the 29th.
START = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def make_tenant(session: Session, slug: str = "kiruna") -> int:
    agency = Agency(organisation_number="2120002742", name="Kiruna", kind=AgencyKind.MUNICIPALITY)
    request = SandboxRequest(
        name=slug,
        agency=agency,
        requester_subject="s",
        requester_name="n",
        purpose="p",
        legal_basis="l",
        data_classification=DataClassification.OPEN,
        ai_act_risk=AiActRisk.MINIMAL,
        requested_quota={},
        end_date=date(2027, 12, 31),
    )
    tenant = Tenant(
        slug=slug,
        request=request,
        agency=agency,
        gpus=1,
        gpu_model=L4,
        cpu=4,
        memory_gib=16,
        storage_gib=100,
        expires_on=date(2027, 12, 31),
    )
    session.add(tenant)
    session.flush()
    return tenant.id


@pytest.fixture
def tenant_id(session: Session) -> int:
    return make_tenant(session)


def interval(uid: str = "pod-1", hours: float | None = 3.0, start: datetime = START) -> PodInterval:
    end = start + timedelta(hours=hours) if hours is not None else None
    return PodInterval(
        uid=uid,
        namespace="t-kiruna",
        name=uid,
        node_name="kwok-l4-0",
        requests=REQUESTS,
        started_at=start,
        ended_at=end,
        end_source=EndSource.FINISHED if end else None,
    )


def record(session: Session, tenant_id: int, pod: PodInterval, now: datetime = NOW) -> bool:
    changed = service.record_pod(
        session, tenant_id=tenant_id, interval=pod, gpu_model=L4, now=now, zone=STOCKHOLM
    )
    session.flush()
    return changed


def daily(session: Session) -> dict[date, tuple[float, float, float, float]]:
    rows = session.execute(
        select(
            UsageDaily.day,
            UsageDaily.gpu_seconds,
            UsageDaily.cpu_core_seconds,
            UsageDaily.memory_gib_seconds,
            UsageDaily.storage_gib_seconds,
        ).order_by(UsageDaily.day)
    ).all()
    return {day: (gpu, cpu, memory, storage) for day, gpu, cpu, memory, storage in rows}


def test_closed_interval_recorded_once_and_split_at_local_midnight(
    session: Session, tenant_id: int
) -> None:
    assert record(session, tenant_id, interval())
    # The same pod seen again (a re-list after a restart, a repeated DELETED event).
    assert not record(session, tenant_id, interval())
    assert session.scalar(select(func.count()).select_from(UsageInterval)) == 1
    hour = 3600.0
    assert daily(session) == {
        date(2026, 11, 28): (1 * hour, 2 * hour, 8 * hour, 0.0),
        date(2026, 11, 29): (2 * hour, 4 * hour, 16 * hour, 0.0),
    }


def test_open_then_closed_adds_each_second_once(session: Session, tenant_id: int) -> None:
    # Seen running on day 1, folded up to local midnights while it runs, then finished.
    record(session, tenant_id, interval(hours=None), now=START + timedelta(minutes=5))
    assert daily(session) == {}
    service.fold_due(session, START + timedelta(hours=20), STOCKHOLM)
    service.fold_due(session, START + timedelta(hours=20), STOCKHOLM)  # a restarted collector
    session.flush()
    assert sum(v[0] for v in daily(session).values()) == 3600.0  # only the completed 28th
    finished = interval(hours=50)
    record(session, tenant_id, finished, now=START + timedelta(hours=51))
    record(session, tenant_id, finished, now=START + timedelta(hours=52))
    days = daily(session)
    assert sum(v[0] for v in days.values()) == pytest.approx(50 * 3600.0)
    assert sum(v[1] for v in days.values()) == pytest.approx(2 * 50 * 3600.0)
    assert list(days) == [date(2026, 11, 28) + timedelta(days=i) for i in range(4)]
    row = session.scalars(select(UsageInterval)).one()
    assert row.ended_at == finished.ended_at
    assert row.rolled_up_to == finished.ended_at


def test_usage_series_includes_running_pods_up_to_now(session: Session, tenant_id: int) -> None:
    record(session, tenant_id, interval(uid="done", hours=3.0))
    record(session, tenant_id, interval(uid="running", hours=None, start=NOW - timedelta(hours=36)))

    def series() -> list[float]:
        days = service.daily_usage(
            session,
            tenant_id,
            first=date(2026, 11, 28),
            last=date(2026, 12, 3),
            now=NOW,
            zone=STOCKHOLM,
        )
        return [d.gpu_seconds.get(L4, 0.0) for d in days]

    # Nothing of the running pod is folded yet (a collector that is behind): still all counted.
    unfolded = series()
    service.fold_due(session, NOW, STOCKHOLM)
    session.flush()
    assert series() == pytest.approx(unfolded)
    days = service.daily_usage(
        session,
        tenant_id,
        first=date(2026, 11, 28),
        last=date(2026, 12, 3),
        now=NOW,
        zone=STOCKHOLM,
    )
    assert days[0].day == date(2026, 11, 28)
    assert len(days) == 6
    total_gpu = sum(d.gpu_seconds.get(L4, 0.0) for d in days)
    assert total_gpu == pytest.approx((3 + 36) * 3600.0)
    assert days[-1].gpu_seconds.get(L4, 0.0) == 0.0  # tomorrow (in Stockholm) has nothing
    # Folding more does not change the series (folded and pending parts never overlap).
    service.fold_due(session, NOW + timedelta(hours=1), STOCKHOLM)
    again = service.daily_usage(
        session,
        tenant_id,
        first=date(2026, 11, 28),
        last=date(2026, 12, 3),
        now=NOW,
        zone=STOCKHOLM,
    )
    assert [d.gpu_seconds.get(L4, 0.0) for d in again] == pytest.approx(
        [d.gpu_seconds.get(L4, 0.0) for d in days]
    )


def test_vanished_pods_end_when_last_seen(session: Session, tenant_id: int) -> None:
    record(session, tenant_id, interval(uid="gone", hours=None), now=START + timedelta(hours=1))
    record(session, tenant_id, interval(uid="alive", hours=None), now=START + timedelta(hours=1))
    service.touch(session, {"gone", "alive"}, set(), START + timedelta(hours=2))
    session.flush()
    assert service.close_vanished(session, {"alive"}, NOW, STOCKHOLM) == 1
    assert service.close_vanished(session, {"alive"}, NOW, STOCKHOLM) == 0
    session.flush()
    gone = session.scalars(select(UsageInterval).where(UsageInterval.pod_uid == "gone")).one()
    assert gone.ended_at == START + timedelta(hours=2)
    assert gone.end_source == EndSource.LAST_SEEN
    alive = session.scalars(select(UsageInterval).where(UsageInterval.pod_uid == "alive")).one()
    assert alive.ended_at is None


def test_storage_is_folded_per_day_into_the_no_gpu_row(session: Session, tenant_id: int) -> None:
    volume = VolumeInterval(
        uid="pvc-1",
        namespace="t-kiruna",
        name="home",
        size_gib=10.0,
        started_at=START,
        ended_at=START + timedelta(days=2),
    )
    for _ in range(2):
        service.record_volume(
            session, tenant_id=tenant_id, interval=volume, now=NOW, zone=STOCKHOLM
        )
    session.flush()
    assert session.scalar(select(func.count()).select_from(StorageInterval)) == 1
    rows = session.execute(select(UsageDaily.gpu_model, UsageDaily.storage_gib_seconds)).all()
    assert {model for model, _ in rows} == {""}
    assert sum(s for _, s in rows) == pytest.approx(10.0 * 2 * 86400)


def test_a_dst_day_rolls_up_25_hours(session: Session, tenant_id: int) -> None:
    start = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # 00:00 on 25 Oct in Stockholm (CEST)
    record(session, tenant_id, interval(hours=25.0, start=start))
    assert daily(session) == {date(2026, 10, 25): (90000.0, 180000.0, 720000.0, 0.0)}


def test_concurrent_folds_add_once(fresh_database_url: str) -> None:
    """Two collectors (or a collector and its restarted self) folding the same interval at once."""
    database = Database.from_url(fresh_database_url)
    try:
        with database.session(write=True) as session, session.begin():
            tenant_id = make_tenant(session)
            record(session, tenant_id, interval(hours=None), now=START)
        barrier = threading.Barrier(2)
        results: list[int] = []

        def fold() -> None:
            with database.session(write=True) as session:
                barrier.wait()
                with session.begin():
                    results.append(service.fold_due(session, NOW, STOCKHOLM))

        threads = [threading.Thread(target=fold) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(results) == [0, 1]
        with database.session() as session:
            gpu = session.scalar(select(func.sum(UsageDaily.gpu_seconds)))
            # The cost report's monthly summary was folded in the same transactions, once.
            monthly = session.execute(
                select(UsageMonthly.month, UsageMonthly.gpu_seconds).order_by(UsageMonthly.month)
            ).all()
        # Folded up to the start of 2 Dec in Stockholm (23:00 UTC on 1 Dec).
        assert gpu == (datetime(2026, 12, 1, 23, tzinfo=UTC) - START).total_seconds()
        assert [tuple(row) for row in monthly] == [
            (date(2026, 11, 1), (datetime(2026, 11, 30, 23, tzinfo=UTC) - START).total_seconds()),
            (date(2026, 12, 1), 24 * 3600.0),
        ]
    finally:
        database.dispose()


def test_closed_rows_written_without_folding_are_folded_by_the_backlog_sweep(
    session: Session, tenant_id: int
) -> None:
    # As a bulk import would write them: closed, rolled_up_to NULL.
    session.add(
        UsageInterval(
            pod_uid="imported",
            tenant_id=tenant_id,
            namespace="t-kiruna",
            pod_name="p",
            node_name="n",
            gpu_model=L4,
            gpus=1,
            cpu_cores=1.0,
            memory_gib=1.0,
            started_at=START,
            ended_at=START + timedelta(hours=2),
            last_seen_at=START,
        )
    )
    session.flush()
    assert service.fold_due(session, NOW, STOCKHOLM) == 0  # the cheap tick skips closed rows
    assert service.fold_due(session, NOW, STOCKHOLM, closed_backlog=True) == 1
    assert service.fold_due(session, NOW, STOCKHOLM, closed_backlog=True) == 0
    session.flush()
    assert sum(v[0] for v in daily(session).values()) == 7200.0
