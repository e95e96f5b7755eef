"""The periodic tenant status sync: one pass of :func:`lifecycle.sync_tenants` every period.

Runs on the app's event loop as one task; each pass is a short write transaction in a worker
thread. A failing pass (apiserver down, database busy) is logged and retried next period, so the
approval path never has to retry anything itself.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog
from fastapi.concurrency import run_in_threadpool

from controlplane.cluster.storage import TenantCluster
from controlplane.database import Database
from controlplane.errors import SandladaError
from controlplane.tenancy.lifecycle import SyncReport, sync_tenants

log = structlog.get_logger(__name__)


def sync_once(database: Database, cluster: TenantCluster, retention: timedelta) -> SyncReport:
    """One committed sync pass."""
    with database.session(write=True) as session, session.begin():
        return sync_tenants(session, cluster, retention=retention)


async def sync_forever(
    database: Database, cluster: TenantCluster, period: float, retention: timedelta
) -> None:
    while True:
        try:
            report = await run_in_threadpool(sync_once, database, cluster, retention)
            if any(vars(report).values()):
                log.info("tenant sync", **vars(report))
        except SandladaError as exc:
            log.warning("tenant sync failed", error=exc.code, detail=exc.detail)
        except Exception:  # a bug must not stop the loop for good; it is logged with its trace
            log.exception("tenant sync crashed")
        await asyncio.sleep(period)  # the period between passes, not a wait for a condition
