"""Benchmark: what keeping ``usage_monthly`` adds to the metering collector's per-event transaction.

Usage: ``.venv/bin/python bench/metering_fold.py [--events 500] [--block 50]``

For each backend (a throwaway PostgreSQL cluster as in ``tests/fixtures/database.py``, and a
SQLite file), it migrates, inserts 20 tenants and a price list, then records closed pod
intervals exactly as the collector does for a pod that finished: one transaction per event
(``metering.service.record_pod``: insert the interval, close it, fold it into ``usage_daily`` and
``usage_monthly``, commit). Each pod runs 23:00–01:00 local time, so every event folds two days
(two daily and two monthly upserts). The same events are timed with the monthly upsert switched
off (``UsageRepository.add_monthly`` replaced by a no-op in this process: the fold as it was
before ``usage_monthly``), alternating blocks of ``--block`` events so that a shared machine's
load hits both alike. Prints p50/p95 per event and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controlplane import migrate  # noqa: E402 - after the path set-up that makes the repo importable
from controlplane.audit.service import Actor  # noqa: E402
from controlplane.costs import service as costs  # noqa: E402
from controlplane.costs.schemas import PriceListIn  # noqa: E402
from controlplane.database import Database  # noqa: E402
from controlplane.metering import service  # noqa: E402
from controlplane.metering.intervals import EndSource, PodInterval, Requests  # noqa: E402
from controlplane.metering.repository import UsageRepository  # noqa: E402

ZONE = ZoneInfo("Europe/Stockholm")
TENANTS = 20
REQUESTS = Requests(cpu_cores=2.0, memory_gib=8.0, gpus=1, gpu_resource="nvidia.com/gpu")


def _seed(database: Database) -> list[int]:
    sys.path.insert(0, str(ROOT / "bench"))
    from costs import seed_tenants  # noqa: PLC0415 - the cost bench's tenant seeding

    tenant_ids = seed_tenants(database, TENANTS, 5)
    with database.session() as session:
        body = PriceListIn.model_validate(
            {
                "effective_from": date(2026, 9, 1),
                "gpu_hour_sek": {"NVIDIA-L4": "12.00"},
                "cpu_core_hour_sek": "0.50",
                "memory_gib_hour_sek": "0.05",
                "storage_gib_month_sek": "3.00",
            }
        )
        costs.create_price_list(session, Actor("bench"), body, date(2026, 8, 31))
        session.commit()
    return tenant_ids


def _event(database: Database, tenant_id: int, n: int) -> float:
    day = date(2026, 10, 1) + timedelta(days=n % 28)
    start = datetime(day.year, day.month, day.day, 23, tzinfo=ZONE).astimezone(UTC)
    interval = PodInterval(
        uid=f"pod-{n}",
        namespace="t-bench",
        name=f"pod-{n}",
        node_name="node",
        requests=REQUESTS,
        started_at=start,
        ended_at=start + timedelta(hours=2),
        end_source=EndSource.FINISHED,
    )
    started = time.perf_counter()
    with database.session(write=True) as session:
        service.record_pod(
            session,
            tenant_id=tenant_id,
            interval=interval,
            gpu_model="NVIDIA-L4",
            now=datetime(2026, 11, 15, tzinfo=UTC),
            zone=ZONE,
        )
        session.commit()
    return time.perf_counter() - started


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "events": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


def measure(url: str, events: int, block: int) -> dict[str, Any]:
    migrate.upgrade(url)
    database = Database.from_url(url)
    try:
        tenant_ids = _seed(database)
        add_monthly = UsageRepository.add_monthly
        samples: dict[str, list[float]] = {"with_monthly": [], "without_monthly": []}
        n = 0
        for _ in range(3):  # warm-up
            _event(database, tenant_ids[0], n)
            n += 1
        while len(samples["with_monthly"]) < events:
            for variant in ("with_monthly", "without_monthly"):
                if variant == "without_monthly":
                    UsageRepository.add_monthly = lambda *_args, **_kwargs: None  # type: ignore[method-assign]
                try:
                    for _ in range(block):
                        samples[variant].append(_event(database, tenant_ids[n % TENANTS], n))
                        n += 1
                finally:
                    UsageRepository.add_monthly = add_monthly  # type: ignore[method-assign]
        return {name: _stats(values) for name, values in samples.items()}
    finally:
        database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--block", type=int, default=50)
    args = parser.parse_args()

    from tests.fixtures.database import start_postgres, stop_postgres  # noqa: PLC0415

    results: dict[str, Any] = {"load_average_before": os.getloadavg()}
    cluster = start_postgres()
    try:
        cluster.admin_sql("CREATE DATABASE bench")
        results["postgresql"] = measure(cluster.url("bench"), args.events, args.block)
        print(f"postgresql: {results['postgresql']}", flush=True)
    finally:
        stop_postgres(cluster)
    with tempfile.TemporaryDirectory(prefix="sandlada-fold-") as directory:
        url = f"sqlite:///{directory}/bench.db"
        results["sqlite"] = measure(url, args.events, args.block)
        print(f"sqlite: {results['sqlite']}", flush=True)
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
