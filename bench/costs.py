"""Benchmark: the monthly cost report for all agencies at 1 000 tenants and 10 million intervals.

Usage: ``.venv/bin/python bench/costs.py [--tenants 1000] [--agencies 100] [--rows 10000000]
[--runs 30] [--month 2026-10] [--seed 7] [--own-gpu-model]``

The run starts a throwaway PostgreSQL cluster (as ``tests/fixtures/database.py`` does), migrates
it, inserts ``--agencies`` agencies and ``--tenants`` tenants, and generates ``--rows`` raw pod
intervals in ``usage_intervals`` inside PostgreSQL (``generate_series`` with ``random()`` after
``setseed``: the same seed gives the same rows): pods of 5 minutes to 10 hours, about 60 % with
1–4 GPUs of one of three models (``--own-gpu-model``: the tenant's granted model), 1–32 cores and
1–128 GiB, starting anywhere in the month and a day either side; plus two volumes per tenant in
``storage_intervals``. One set-based SQL statement rolls them up into ``usage_daily``, splitting
every interval at the local midnights of the report time zone (the same rule as the metering
fold, ``controlplane.metering.days.split_by_day``), and the product's own
``UsageRepository.rebuild_monthly`` fills the report's summary ``usage_monthly`` from it. Two
price lists apply, one changing mid-month, so the report prices two periods.

Before timing, the summary's totals are checked against ``usage_daily`` per tenant, month and
GPU model, and the report built from each is compared byte for byte (JSON and CSV).

It then measures the report for all agencies (goal: ≤ 200 ms), ``--runs`` times each after
three warm-up calls:
- the service function ``controlplane.costs.service.cost_report`` in this process, from the
  summary (what the API serves) and from ``usage_daily`` (the previous path, for comparison),
  with this process's CPU per report and the usage query's server time (EXPLAIN ANALYZE);
- ``GET /api/v1/reports/costs?month=…`` (JSON and CSV) on the control plane served by uvicorn
  in its own process, one keep-alive connection, a platform-admin token from a local issuer.
p50/p95 are printed with the machine's load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402 - after the path set-up that makes the repo importable
from sqlalchemy import insert, text  # noqa: E402

from controlplane import migrate  # noqa: E402
from controlplane.costs import service  # noqa: E402
from controlplane.costs.pricing import Month  # noqa: E402
from controlplane.database import Database  # noqa: E402
from controlplane.metering.repository import UsageRepository  # noqa: E402
from controlplane.models import Agency, SandboxRequest, Tenant  # noqa: E402
from infra.process import free_port  # noqa: E402

TZ = "Europe/Stockholm"
GPU_MODELS = ("NVIDIA-A100-SXM4-80GB", "NVIDIA-L4", "NVIDIA-H100-80GB-HBM3")
CHUNK_ROWS = 1_000_000

ROLLUP = """
INSERT INTO usage_daily (tenant_id, day, gpu_model, gpu_seconds, cpu_core_seconds,
                         memory_gib_seconds, storage_gib_seconds)
SELECT tenant_id, day, gpu_model, sum(gpu), sum(cpu), sum(memory), sum(storage)
FROM (
    SELECT u.tenant_id, d::date AS day, u.gpu_model,
           u.gpus * s.seconds AS gpu, u.cpu_cores * s.seconds AS cpu,
           u.memory_gib * s.seconds AS memory, 0.0 AS storage
    FROM usage_intervals u
    CROSS JOIN LATERAL generate_series(
        date_trunc('day', u.started_at AT TIME ZONE :tz),
        date_trunc('day', u.ended_at AT TIME ZONE :tz),
        interval '1 day') AS d
    CROSS JOIN LATERAL (SELECT extract(epoch FROM
        least(u.ended_at, (d + interval '1 day') AT TIME ZONE :tz)
        - greatest(u.started_at, d AT TIME ZONE :tz))::float8 AS seconds) AS s
    WHERE s.seconds > 0
    UNION ALL
    SELECT v.tenant_id, d::date, '', 0.0, 0.0, 0.0, v.size_gib * s.seconds
    FROM storage_intervals v
    CROSS JOIN LATERAL generate_series(
        date_trunc('day', v.started_at AT TIME ZONE :tz),
        date_trunc('day', v.ended_at AT TIME ZONE :tz),
        interval '1 day') AS d
    CROSS JOIN LATERAL (SELECT extract(epoch FROM
        least(v.ended_at, (d + interval '1 day') AT TIME ZONE :tz)
        - greatest(v.started_at, d AT TIME ZONE :tz))::float8 AS seconds) AS s
    WHERE s.seconds > 0
) pieces
GROUP BY tenant_id, day, gpu_model
"""


def _organisation_numbers(count: int) -> list[str]:
    from stdnum import luhn  # noqa: PLC0415 - only the seeding needs it

    numbers = []
    for n in range(count):
        head = f"2121{n:05d}"
        numbers.append(head + luhn.calc_check_digit(head))
    return numbers


def seed_tenants(database: Database, tenants: int, agencies: int) -> list[int]:
    """Agencies, approved requests and ready tenants, inserted directly; returns tenant ids."""
    numbers = _organisation_numbers(agencies)
    now = datetime.now(UTC)
    with database.session() as session:
        agency_ids = list(
            session.scalars(
                insert(Agency).returning(Agency.id),
                [
                    {
                        "organisation_number": number,
                        "name": f"Bench kommun {n:03d}",
                        "kind": "municipality",
                        "created_at": now,
                    }
                    for n, number in enumerate(numbers)
                ],
            )
        )
        request_ids = list(
            session.scalars(
                insert(SandboxRequest).returning(SandboxRequest.id),
                [
                    {
                        "name": f"bench-{n:04d}",
                        "agency_id": agency_ids[n % agencies],
                        "requester_subject": "bench",
                        "requester_name": "Bench",
                        "purpose": "Benchmark tenant.",
                        "legal_basis": "Synthetic data.",
                        "data_classification": "open",
                        "ai_act_risk": "minimal",
                        "requested_quota": {},
                        "end_date": date(2030, 1, 1),
                        "status": "approved",
                        "created_at": now,
                    }
                    for n in range(tenants)
                ],
            )
        )
        tenant_ids = list(
            session.scalars(
                insert(Tenant).returning(Tenant.id),
                [
                    {
                        "slug": f"bench-{n:04d}",
                        "request_id": request_ids[n],
                        "agency_id": agency_ids[n % agencies],
                        "status": "ready",
                        "gpus": 8,
                        "gpu_model": GPU_MODELS[n % len(GPU_MODELS)],
                        "cpu": 64,
                        "memory_gib": 256,
                        "storage_gib": 1000,
                        "expires_on": date(2030, 1, 1),
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(tenants)
                ],
            )
        )
        session.commit()
    return tenant_ids


GENERATE = """
INSERT INTO usage_intervals (pod_uid, tenant_id, namespace, pod_name, node_name, gpu_model,
                             gpus, cpu_cores, memory_gib, started_at, ended_at, end_source,
                             last_seen_at, rolled_up_to)
SELECT 'pod-' || lpad(to_hex(n), 12, '0'),
       (%(tenant_ids)s::int[])[n %% %(tenants)s + 1],
       't-bench-' || lpad((n %% %(tenants)s)::text, 4, '0'),
       'job-' || n,
       'node-' || (n %% 64),
       CASE WHEN gpu THEN
           (%(models)s::text[])[CASE WHEN %(own_model)s THEN (n %% %(tenants)s) %% 3
                                     ELSE floor(r_model * 3)::int END + 1]
       ELSE '' END,
       CASE WHEN gpu THEN 1 + floor(r_gpus * 4)::int ELSE 0 END,
       1 + floor(r_cpu * 32)::int,
       1 + floor(r_memory * 128)::int,
       started, ended, 'finished', ended, ended
FROM (
    SELECT n, gpu, r_model, r_gpus, r_cpu, r_memory, started,
           started + make_interval(secs => 300 + floor(r_length * 35700)::int) AS ended
    FROM (
        SELECT n,
               %(first)s::timestamptz
                   + make_interval(secs => floor(random() * %(span)s)::int) AS started,
               random() AS r_length, random() < 0.6 AS gpu, random() AS r_model,
               random() AS r_gpus, random() AS r_cpu, random() AS r_memory
        FROM generate_series(%(from)s::bigint, %(to)s::bigint) AS n
    ) AS draws
) AS pods
"""


def load_intervals(
    url: str, tenant_ids: list[int], rows: int, month: Month, seed: int, *, own_model: bool
) -> tuple[float, float]:
    """Generate ``rows`` pod intervals inside PostgreSQL and two volumes per tenant; returns
    (load s, index s).

    ``generate_series`` with ``random()`` after ``setseed(seed)``, in chunks of ``CHUNK_ROWS``
    on one connection with parallel query off, so the same seed gives the same rows; what used
    to be 18 minutes of Python writing COPY lines is a few set-based statements.
    """
    zone = ZoneInfo(TZ)
    first = datetime.combine(month.first_day - timedelta(days=1), datetime.min.time(), zone)
    span = int(
        (
            datetime.combine(month.last_day + timedelta(days=1), datetime.min.time(), zone) - first
        ).total_seconds()
    )
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as connection:
        # Bulk-load practice: build the secondary indexes after the data, not row by row.
        connection.execute("ALTER TABLE usage_intervals DROP CONSTRAINT uq_usage_intervals_pod_uid")
        connection.execute("DROP INDEX ix_usage_intervals_tenant_started")
        connection.execute("DROP INDEX ix_usage_intervals_ended_at")
        connection.execute("SET max_parallel_workers_per_gather = 0")
        connection.execute("SELECT setseed(%s)", (((seed % 1000) / 1000.0),))
        for offset in range(0, rows, CHUNK_ROWS):
            connection.execute(
                GENERATE,
                {
                    "tenant_ids": tenant_ids,
                    "tenants": len(tenant_ids),
                    "models": list(GPU_MODELS),
                    "own_model": own_model,
                    "first": first,
                    "span": span,
                    "from": offset,
                    "to": min(offset + CHUNK_ROWS, rows) - 1,
                },
            )
            done = min(offset + CHUNK_ROWS, rows)
            print(f"  {done} intervals ({time.perf_counter() - started:.0f}s)", flush=True)
        month_start = datetime.combine(month.first_day, datetime.min.time(), zone)
        month_end = datetime.combine(month.next().first_day, datetime.min.time(), zone)
        with (
            connection.cursor() as cursor,
            cursor.copy(
                "COPY storage_intervals (pvc_uid, tenant_id, namespace, name, size_gib, "
                "started_at, ended_at, last_seen_at) FROM STDIN"
            ) as copy,
        ):
            for n, tenant_id in enumerate(tenant_ids):
                for k, size in enumerate((10, 100)):
                    copy.write_row(
                        (
                            f"pvc-{n}-{k}",
                            tenant_id,
                            f"t-bench-{n:04d}",
                            f"home-{k}",
                            size,
                            month_start,
                            month_end,
                            month_end,
                        )
                    )
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        connection.execute(
            "ALTER TABLE usage_intervals ADD CONSTRAINT uq_usage_intervals_pod_uid UNIQUE (pod_uid)"
        )
        connection.execute(
            "CREATE INDEX ix_usage_intervals_tenant_started ON usage_intervals "
            "(tenant_id, started_at)"
        )
        connection.execute("CREATE INDEX ix_usage_intervals_ended_at ON usage_intervals (ended_at)")
        connection.execute("ANALYZE usage_intervals")
        connection.execute("ANALYZE storage_intervals")
    return loaded, time.perf_counter() - started


def roll_up(database: Database) -> tuple[float, int, float, int]:
    """usage_daily by one set-based statement, then the report's summary (usage_monthly) by
    the product's own function; returns (daily s, daily rows, summary s, summary rows)."""
    started = time.perf_counter()
    with database.session() as session:
        session.execute(text(ROLLUP), {"tz": TZ})
        session.commit()
        count = session.scalar(text("SELECT count(*) FROM usage_daily")) or 0
        session.execute(text("ANALYZE usage_daily"))
        session.commit()
    daily = time.perf_counter() - started
    started = time.perf_counter()
    with database.session() as session:
        summary_rows = UsageRepository(session).rebuild_monthly()
        session.commit()
        session.execute(text("ANALYZE usage_monthly"))
        session.commit()
    return daily, int(count), time.perf_counter() - started, summary_rows


def check_summary(database: Database, month: Month) -> None:
    """Before timing: usage_monthly holds usage_daily's totals per tenant and month (float sums
    in another order: equal to 1e-9), and the report from each is the same, byte for byte."""
    totals = """
        SELECT tenant_id, {month} AS month, gpu_model, sum(gpu_seconds), sum(cpu_core_seconds),
               sum(memory_gib_seconds), sum(storage_gib_seconds)
        FROM {table} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    """
    with database.session() as session:
        daily = session.execute(
            text(totals.format(month="date_trunc('month', day)::date", table="usage_daily"))
        ).all()
        monthly = session.execute(text(totals.format(month="month", table="usage_monthly"))).all()
        if [r[:3] for r in daily] != [r[:3] for r in monthly]:
            raise SystemExit("usage_monthly has other (tenant, month, model) keys than usage_daily")
        for d, m in zip(daily, monthly, strict=True):
            for a, b in zip(d[3:], m[3:], strict=True):
                if abs(a - b) > 1e-9 * max(abs(a), 1.0):
                    raise SystemExit(f"usage_monthly disagrees with usage_daily: {d} != {m}")
        now = datetime.now(UTC)
        summary = service.cost_report(session, month, TZ, now=now, source="summary")
        daily_report = service.cost_report(session, month, TZ, now=now, source="daily")
    if summary.model_dump_json() != daily_report.model_dump_json():
        raise SystemExit("the report from usage_monthly differs from the one from usage_daily")
    if service.report_csv(summary) != service.report_csv(daily_report):
        raise SystemExit("the CSV report from usage_monthly differs from usage_daily's")
    print(
        f"summary check: {len(monthly)} (tenant, month, model) totals agree; the reports from "
        "usage_monthly and usage_daily are identical (JSON and CSV)",
        flush=True,
    )


def add_price_lists(database: Database, month: Month) -> None:
    from controlplane.audit.service import Actor  # noqa: PLC0415
    from controlplane.costs.schemas import PriceListIn  # noqa: PLC0415

    versions = [
        (month.first_day - timedelta(days=20), ("45.00", "12.00", "80.00"), "0.50", "0.05", "3.00"),
        (month.first_day + timedelta(days=15), ("50.00", "15.00", "90.00"), "0.60", "0.10", "6.00"),
    ]
    with database.session() as session:
        for effective_from, gpu, cpu, memory, storage in versions:
            body = PriceListIn.model_validate(
                {
                    "effective_from": effective_from,
                    "gpu_hour_sek": dict(zip(GPU_MODELS, gpu, strict=True)),
                    "cpu_core_hour_sek": cpu,
                    "memory_gib_hour_sek": memory,
                    "storage_gib_month_sek": storage,
                }
            )
            service.create_price_list(
                session, Actor("bench"), body, effective_from - timedelta(days=1)
            )
        session.commit()


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "runs": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
        "min_ms": round(ordered[0] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def _time(call: Callable[[], Any], runs: int) -> list[float]:
    for _ in range(3):
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def _report_sql(session: Any, month: Month, source: service.ReportSource) -> tuple[str, Any]:
    """The report's one usage query and its parameters, as sent to the driver."""
    from sqlalchemy import event  # noqa: PLC0415

    from controlplane.costs.repository import CostRepository  # noqa: PLC0415

    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        if source == "summary":
            CostRepository(session).monthly_usage(month.first_day)
        else:
            periods = service.month_periods(session, month)
            CostRepository(session).usage([(p.first, p.last) for p in periods])
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return captured[-1]


def _measure_function(
    database: Database, month: Month, source: service.ReportSource, runs: int
) -> dict[str, Any]:
    """``service.cost_report`` in this process: wall p50/p95, this process's CPU per report
    (pricing, models; a shared machine inflates it far less than wall time) and the usage
    query's server execution time (EXPLAIN ANALYZE)."""

    def report() -> None:
        with database.session() as session:
            service.cost_report(session, month, TZ, source=source)

    result: dict[str, Any] = _percentiles(_time(report, runs))
    cpu_samples = []
    for _ in range(runs):
        started_cpu = time.process_time()
        report()
        cpu_samples.append(time.process_time() - started_cpu)
    result["python_cpu_p50_ms"] = round(statistics.median(cpu_samples) * 1000, 1)
    with database.session() as session:
        statement, parameters = _report_sql(session, month, source)
        plan = (
            session.connection()
            .exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
            .scalar()
        )
    result["sql_execution_ms"] = round(plan[0]["Execution Time"], 1) if plan else None
    return result


def _serve(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "uvicorn", "controlplane.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"control plane exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)  # polling a port that is not open yet; nothing to wait on instead
    raise RuntimeError("control plane did not become ready")


def measure_http(url: str, month: Month, runs: int) -> dict[str, Any]:
    from tests.fixtures.tokens import ADMIN, start_issuer  # noqa: PLC0415 - dev tooling only

    issuer, issuer_server = start_issuer()
    token = issuer.mint(ADMIN, expires_in=3600)
    port = free_port()
    server = _serve(
        port,
        {
            "SANDLADA_DATABASE_URL": url,
            "SANDLADA_OIDC_ISSUER": issuer.url,
            "SANDLADA_ENVIRONMENT": "test",
            "SANDLADA_LOG_JSON": "true",
            "SANDLADA_BUDGET_EVALUATION_SECONDS": "0",
        },
    )
    results: dict[str, Any] = {}
    try:
        _wait_ready(port, server)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {token}"}
        for fmt in ("json", "csv"):
            path = f"/api/v1/reports/costs?month={month}&format={fmt}"
            sizes: list[int] = []

            def get(path: str = path, sizes: list[int] = sizes) -> None:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                body = response.read()
                if response.status != 200:
                    raise RuntimeError(f"{path}: {response.status} {body[:300]!r}")
                sizes.append(len(body))

            results[fmt] = {**_percentiles(_time(get, runs)), "response_bytes": sizes[-1]}
        connection.close()
    finally:
        server.terminate()
        server.wait(30)
        issuer_server.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--agencies", type=int, default=100)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--month", default="2026-10")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--own-gpu-model",
        action="store_true",
        help="GPU pods use their tenant's granted model (as quotas allow) instead of any of "
        "three: 2 usage_daily rows per tenant and day instead of 4.",
    )
    args = parser.parse_args()
    month = Month.parse(args.month)

    from tests.fixtures.database import start_postgres, stop_postgres  # noqa: PLC0415

    bench_started = time.perf_counter()
    load_before = os.getloadavg()
    cluster = start_postgres()
    try:
        cluster.admin_sql("CREATE DATABASE bench")
        url = cluster.url("bench")
        migrate.upgrade(url)
        database = Database.from_url(url)
        t0 = time.perf_counter()
        tenant_ids = seed_tenants(database, args.tenants, args.agencies)
        add_price_lists(database, month)
        print(f"seeded {len(tenant_ids)} tenants in {time.perf_counter() - t0:.1f}s", flush=True)
        loaded, indexed = load_intervals(
            url, tenant_ids, args.rows, month, args.seed, own_model=args.own_gpu_model
        )
        print(
            f"generated {args.rows} intervals in {loaded:.1f}s, indexes {indexed:.1f}s",
            flush=True,
        )
        rolled, daily_rows, summarised, monthly_rows = roll_up(database)
        print(
            f"rolled up to {daily_rows} usage_daily rows in {rolled:.1f}s, "
            f"{monthly_rows} usage_monthly rows in {summarised:.1f}s",
            flush=True,
        )
        check_summary(database, month)
        with database.session() as session:
            sample = service.cost_report(session, month, TZ)
        # As the served app does once it has started (controlplane.app._startup_heap_frozen):
        # what is alive now lives on, and full collections should not scan it per report.
        gc.collect()
        gc.freeze()
        paths: dict[str, dict[str, Any]] = {}
        for source in ("summary", "daily"):
            paths[source] = _measure_function(database, month, source, args.runs)
            print(f"service function, {source}: {paths[source]}", flush=True)
        over_http = measure_http(url, month, args.runs)
        print(f"HTTP (summary): {over_http}", flush=True)
        load_after = os.getloadavg()
        database.dispose()
        summary = {
            "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, "
            f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after, "
            f"Python {platform.python_version()}",
            "postgresql_bindir": str(cluster.bindir),
            "tenants": len(tenant_ids),
            "agencies": args.agencies,
            "usage_intervals": args.rows,
            "own_gpu_model": args.own_gpu_model,
            "usage_daily_rows": daily_rows,
            "usage_monthly_rows": monthly_rows,
            "month": str(month),
            "report": {
                "agencies": len(sample.agencies),
                "tenant_lines": sum(len(a.tenants) for a in sample.agencies),
                "price_periods": len(sample.price_lists),
                "total_sek": str(sample.total_sek),
            },
            "setup_seconds": {
                "generate": round(loaded, 1),
                "indexes": round(indexed, 1),
                "rollup_daily": round(rolled, 1),
                "summary": round(summarised, 1),
                "total": round(time.perf_counter() - bench_started, 1),
            },
            "service_function": paths["summary"],
            "service_function_usage_daily": paths["daily"],
            "http_summary": over_http,
            "goal_ms": 200,
        }
        print(json.dumps(summary, indent=2))
    finally:
        stop_postgres(cluster)


if __name__ == "__main__":
    main()
