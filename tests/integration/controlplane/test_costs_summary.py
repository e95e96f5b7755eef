"""The cost report from the monthly summary equals the report from usage_daily (issue 7).

Usage is metered through the collector's own code path (``metering.service.record_pod`` /
``record_volume``, which fold into ``usage_daily`` and ``usage_monthly`` in one transaction), over
a price change, the DST day (25 October 2026 has 25 hours in Stockholm), month ends and days no
price list covers. Each report is built from ``usage_monthly`` and from ``usage_daily`` and the
JSON and CSV compared byte for byte; SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from controlplane import cli, migrate
from controlplane.costs import service
from controlplane.costs.pricing import Month
from controlplane.database import Database
from controlplane.metering import service as metering
from controlplane.metering.intervals import EndSource, PodInterval, Requests, VolumeInterval
from controlplane.metering.repository import UsageRepository
from controlplane.models import PriceList, UsageMonthly
from controlplane.models.usage import NO_PRICE_LIST
from tests.fixtures.tokens import LULEA
from tests.integration.controlplane.test_costs import A100, L4, add_prices, make_tenant

TZ = "Europe/Stockholm"
ZONE = ZoneInfo(TZ)
NOW = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)
GENERATED = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)


def _local(year: int, month: int, day: int, hour: int) -> datetime:
    return datetime(year, month, day, hour, tzinfo=ZONE).astimezone(UTC)


def _pod(
    session: Session,
    tenant_id: int,
    uid: str,
    start: datetime,
    end: datetime,
    *,
    gpus: int = 0,
    model: str = "",
    cpu: float = 1.0,
    memory: float = 4.0,
) -> None:
    metering.record_pod(
        session,
        tenant_id=tenant_id,
        interval=PodInterval(
            uid=uid,
            namespace="t-x",
            name=uid,
            node_name="node",
            requests=Requests(
                cpu_cores=cpu,
                memory_gib=memory,
                gpus=gpus,
                gpu_resource="nvidia.com/gpu" if gpus else None,
            ),
            started_at=start,
            ended_at=end,
            end_source=EndSource.FINISHED,
        ),
        gpu_model=model,
        now=NOW,
        zone=ZONE,
    )


def metered(session: Session) -> None:
    """Price lists from 1 and 16 October; pods metered through the collector's fold."""
    add_prices(
        session, date(2026, 10, 1), gpu={A100: "40.00", L4: "12.00"}, cpu="0.50", memory="0.05",
        storage="3.00",
    )  # fmt: skip
    add_prices(
        session, date(2026, 10, 16), gpu={A100: "50.00"}, cpu="0.60", memory="0.10",
        storage="6.00",
    )  # fmt: skip
    a = make_tenant(session, "kiruna-a").id
    b = make_tenant(session, "kiruna-b").id
    c = make_tenant(session, "lulea-c", LULEA).id
    # Across the price change (15–17 October), two GPU models' worth of tenants.
    _pod(session, a, "a1", _local(2026, 10, 14, 20), _local(2026, 10, 17, 3), gpus=2, model=A100,
         cpu=4, memory=16)  # fmt: skip
    # Across the DST day (25 October, 25 hours) on a model the second list has no price for.
    _pod(session, a, "a2", _local(2026, 10, 24, 22), _local(2026, 10, 26, 2), gpus=1, model=L4,
         cpu=0.5, memory=3)  # fmt: skip
    # From September (no price list) into October, and from October into November.
    _pod(session, b, "b1", _local(2026, 9, 29, 10), _local(2026, 10, 1, 6), cpu=2, memory=8)
    _pod(session, b, "b2", _local(2026, 10, 31, 20), _local(2026, 11, 1, 5), gpus=1, model=A100)
    _pod(session, c, "c1", _local(2026, 10, 3, 8), _local(2026, 10, 3, 17), cpu=8, memory=32)
    _pod(session, c, "c2", _local(2026, 10, 20, 9), _local(2026, 10, 20, 9) + timedelta(
        seconds=1234), cpu=0.25, memory=0.5)  # fmt: skip
    metering.record_volume(
        session,
        tenant_id=c,
        interval=VolumeInterval(
            uid="v1",
            namespace="t-lulea-c",
            name="home",
            size_gib=10,
            started_at=_local(2026, 9, 20, 0),
            ended_at=_local(2026, 11, 10, 12),
        ),
        now=NOW,
        zone=ZONE,
    )
    session.flush()


def _both(session: Session, month: str, organisation_number: str | None = None) -> list[str]:
    out = []
    for source in ("summary", "daily"):
        report = service.cost_report(
            session,
            Month.parse(month),
            TZ,
            organisation_number=organisation_number,
            now=GENERATED,
            source=source,
        )
        out += [report.model_dump_json(), service.report_csv(report)]
    return out


@pytest.mark.parametrize("month", ["2026-09", "2026-10", "2026-11"])
def test_summary_and_daily_reports_are_identical(session: Session, month: str) -> None:
    metered(session)
    periods = service._month_periods(session, Month.parse(month))
    # The summary path is the one taken (no fallback to usage_daily).
    assert service._summary_usage(session, Month.parse(month), periods, None) is not None
    summary_json, summary_csv, daily_json, daily_csv = _both(session, month)
    assert summary_json == daily_json
    assert summary_csv == daily_csv
    assert '"agencies":[]' not in summary_json  # every month has usage
    for agency in ("2120002742", "2120002692"):
        summary_json, summary_csv, daily_json, daily_csv = _both(session, month, agency)
        assert (summary_json, summary_csv) == (daily_json, daily_csv)


def test_summary_segments(session: Session) -> None:
    """A100 usage of October is in the 1 October and 16 October segments (kiruna-a's pod
    over the change, kiruna-b's on the 31st), November's in the 16 October one; September's
    usage has no price list."""
    metered(session)
    rows = session.execute(
        select(UsageMonthly.month, UsageMonthly.price_from, UsageMonthly.first_day,
               UsageMonthly.last_day).where(UsageMonthly.gpu_model == A100)
        .order_by(UsageMonthly.month, UsageMonthly.price_from, UsageMonthly.first_day)
    ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [
        (date(2026, 10, 1), date(2026, 10, 1), date(2026, 10, 14), date(2026, 10, 15)),
        (date(2026, 10, 1), date(2026, 10, 16), date(2026, 10, 16), date(2026, 10, 17)),
        (date(2026, 10, 1), date(2026, 10, 16), date(2026, 10, 31), date(2026, 10, 31)),
        (date(2026, 11, 1), date(2026, 10, 16), date(2026, 11, 1), date(2026, 11, 1)),
    ]
    september = session.scalars(
        select(UsageMonthly.price_from).where(UsageMonthly.month == date(2026, 9, 1))
    ).all()
    assert set(september) == {NO_PRICE_LIST}


def test_rebuild_gives_the_same_summary(session: Session) -> None:
    metered(session)
    columns = (
        UsageMonthly.tenant_id, UsageMonthly.month, UsageMonthly.price_from,
        UsageMonthly.gpu_model, UsageMonthly.gpu_seconds, UsageMonthly.cpu_core_seconds,
        UsageMonthly.memory_gib_seconds, UsageMonthly.storage_gib_seconds,
        UsageMonthly.first_day, UsageMonthly.last_day,
    )  # fmt: skip
    query = select(*columns).order_by(*columns[:4])
    kept = [tuple(r) for r in session.execute(query)]
    assert UsageRepository(session).rebuild_monthly() == len(kept)
    assert [tuple(r) for r in session.execute(query)] == kept


def test_a_price_list_changing_metered_days_is_rekeyed(session: Session) -> None:
    """A version published for a day that is already metered (clock skew): the summary is
    recomputed in the same transaction, and the report still equals the usage_daily one."""
    metered(session)
    before = _both(session, "2026-10")
    add_prices(
        session, date(2026, 10, 25), gpu={A100: "60.00", L4: "20.00"}, cpu="1.00",
        memory="0.20", storage="9.00",
    )  # fmt: skip
    month = Month.parse("2026-10")
    assert service._summary_usage(session, month, service._month_periods(session, month), None)
    summary_json, summary_csv, daily_json, daily_csv = _both(session, "2026-10")
    assert (summary_json, summary_csv) == (daily_json, daily_csv)
    assert summary_json != before[0]  # the new version applies from the 25th


def test_a_segment_that_does_not_fit_falls_back_to_usage_daily(session: Session) -> None:
    """A version written behind the API's back (no re-keying): the report notices that the
    summary's segments do not fit the price periods and reads usage_daily, still exact."""
    metered(session)
    session.execute(
        insert(PriceList).values(
            effective_from=date(2026, 10, 20), cpu_core_hour_sek=2, memory_gib_hour_sek=2,
            storage_gib_month_sek=2, created_by="sql",
        )
    )  # fmt: skip
    month = Month.parse("2026-10")
    periods = service._month_periods(session, month)
    assert service._summary_usage(session, month, periods, None) is None
    summary_json, summary_csv, daily_json, daily_csv = _both(session, "2026-10")
    assert (summary_json, summary_csv) == (daily_json, daily_csv)
    assert "2026-10-20" in summary_json


def test_the_report_reads_the_summary(session: Session) -> None:
    """Without summary rows the summary report is empty: it does not read usage_daily."""
    metered(session)
    session.execute(delete(UsageMonthly))
    summary_json, _, daily_json, _ = _both(session, "2026-10")
    assert '"agencies":[]' in summary_json
    assert '"agencies":[]' not in daily_json


def test_rebuild_summary_command(fresh_database_url: str) -> None:
    """``sandlada meter rebuild-summary`` restores a summary that usage_daily was loaded without."""
    database = Database.from_url(fresh_database_url)
    try:
        with database.session() as session:
            metered(session)
            session.commit()
            expected = _both(session, "2026-10")
            session.execute(delete(UsageMonthly))
            session.commit()
            assert '"agencies":[]' in _both(session, "2026-10")[0]
        env = {"SANDLADA_DATABASE_URL": fresh_database_url, "SANDLADA_ENVIRONMENT": "test"}
        runner = CliRunner()
        result = runner.invoke(cli.app, ["meter", "rebuild-summary"], env=env)
        assert result.exit_code == 0, result.output
        assert "usage_monthly: " in result.stdout
        with database.session() as session:
            assert _both(session, "2026-10") == expected
        bad = runner.invoke(cli.app, ["meter", "rebuild-summary", "--since", "2026-13"], env=env)
        assert bad.exit_code == 2
        assert "--since" in bad.stderr
    finally:
        database.dispose()


def test_migration_backfills_the_summary(fresh_database_url: str) -> None:
    """Migration 0006 fills usage_monthly from the usage_daily rows that exist (both dialects):
    down to 0005 drops it, up again gives the same reports, from the summary."""
    database = Database.from_url(fresh_database_url)
    try:
        with database.session() as session:
            metered(session)
            session.commit()
            expected = {month: _both(session, month) for month in ("2026-09", "2026-10")}
        database.dispose()
        migrate.downgrade(fresh_database_url, "0005")
        migrate.upgrade(fresh_database_url)
        with database.session() as session:
            assert session.scalar(select(func.count()).select_from(UsageMonthly))
            for month, reports in expected.items():
                periods = service._month_periods(session, Month.parse(month))
                assert service._summary_usage(session, Month.parse(month), periods, None)
                assert _both(session, month) == reports
    finally:
        database.dispose()
