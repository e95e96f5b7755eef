"""The periodic tenant sync: one pass of :func:`lifecycle.sync_tenants` every period.

Runs on the app's event loop as one task; each pass runs in a worker thread and writes each
change in its own short transaction (no lock is held while it calls the apiserver or Keycloak).
Status changes normally reach SQL first through the watch (controlplane/tenancy/watch.py); the
pass expires tenants, carries out due deletions, retries set-up an approval could not finish and
catches anything the watch missed. A failing pass (apiserver down, database busy) is logged and
retried next period.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog
from fastapi.concurrency import run_in_threadpool

from controlplane.cluster.storage import TenantCluster
from controlplane.database import Database
from controlplane.errors import SandladaError, is_database_busy
from controlplane.identity.storage import IdentityStore
from controlplane.tenancy.lifecycle import SyncReport, sync_tenants

log = structlog.get_logger(__name__)


def sync_once(
    database: Database,
    cluster: TenantCluster,
    retention: timedelta,
    identity: IdentityStore | None = None,
) -> SyncReport:
    """One sync pass (each change committed on its own)."""
    return sync_tenants(database, cluster, retention=retention, identity=identity)


async def sync_forever(
    database: Database,
    cluster: TenantCluster,
    period: float,
    retention: timedelta,
    identity: IdentityStore | None = None,
) -> None:
    while True:
        try:
            report = await run_in_threadpool(sync_once, database, cluster, retention, identity)
            if any(vars(report).values()):
                log.info("tenant sync", **vars(report))
        except SandladaError as exc:
            log.warning("tenant sync failed", error=exc.code, detail=exc.detail)
        except Exception as exc:  # a bug must not stop the loop for good; it is logged
            if is_database_busy(exc):
                log.warning("tenant sync: database busy; next period retries")
            else:
                log.exception("tenant sync crashed")
        await asyncio.sleep(period)  # the period between passes, not a wait for a condition
