"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from controlplane.audit.routes import router as audit_router
from controlplane.auth.oidc import OidcVerifier
from controlplane.capacity.routes import router as capacity_router
from controlplane.cluster.storage import connect
from controlplane.costs.budgets import evaluate_forever as evaluate_budgets_forever
from controlplane.costs.routes import router as costs_router
from controlplane.database import Database
from controlplane.errors import install_error_handlers
from controlplane.health.metrics import Metrics, MetricsMiddleware
from controlplane.health.routes import router as health_router
from controlplane.identity.storage import IdentityStore
from controlplane.logs import configure_logging
from controlplane.members.routes import router as members_router
from controlplane.metering.routes import router as usage_router
from controlplane.notebooks.routes import router as notebooks_router
from controlplane.portal.install import install_portal
from controlplane.requests.routes import router as requests_router
from controlplane.settings import Settings, get_settings
from controlplane.tenancy.listcache import TenantListCache
from controlplane.tenancy.routes import router as tenants_router
from controlplane.tenancy.sync import sync_forever
from controlplane.tenancy.watch import TenantWatcher


@contextlib.contextmanager
def _startup_heap_frozen() -> Iterator[None]:
    """Keep the objects alive at start-up out of the garbage collector's generations.

    Modules, routes, models and clients (hundreds of thousands of objects) live as long as the
    process; a full collection, triggered by the garbage of a large response such as the
    monthly cost report, would scan them all each time: that was the cost report's p95 (p95
    335 ms with the collector as is, 157 ms with it off, p50 about the same; bench/costs.py).
    ``gc.freeze`` moves them to a permanent generation; leaving unfreezes them, so a process
    that builds many apps (the tests) does not keep dead ones.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    """Build the app; ``database`` lets tests hand in one bound to their transaction."""
    settings = settings or get_settings()
    configure_logging(json=settings.log_json)
    database = database or Database.from_url(settings.database_url)
    verifier = OidcVerifier(
        settings.oidc_issuer,
        settings.oidc_audience,
        timeout=settings.oidc_http_timeout_seconds,
        cache_seconds=settings.jwks_cache_seconds,
        min_refetch_seconds=settings.jwks_min_refetch_seconds,
    )
    metrics = Metrics()
    # None without Keycloak administration: approvals create no groups, members API is a 503.
    identity = (
        IdentityStore(
            settings.keycloak_url,
            settings.keycloak_realm,
            settings.keycloak_client_id,
            settings.keycloak_client_secret.get_secret_value(),
            settings.keycloak_timeout_seconds,
        )
        if settings.keycloak_url
        else None
    )
    # None without a cluster: requests still work; tenants wait in "provisioning".
    cluster = connect(settings.kubeconfig, timeout=settings.kubernetes_timeout_seconds)

    @asynccontextmanager
    async def lifespan(running: FastAPI) -> AsyncIterator[None]:
        sync = None
        watcher = None
        if cluster is not None and settings.tenant_sync_seconds > 0:
            retention = timedelta(days=settings.tenant_retention_days)
            watcher = TenantWatcher(database, cluster)
            watcher.start()
            running.state.watcher = watcher
            sync = asyncio.create_task(
                sync_forever(database, cluster, settings.tenant_sync_seconds, retention, identity)
            )
        budgets = None
        if settings.budget_evaluation_seconds > 0:
            budgets = asyncio.create_task(
                evaluate_budgets_forever(
                    database,
                    settings.report_timezone,
                    settings.budget_webhook_url,
                    settings.budget_evaluation_seconds,
                    settings.budget_webhook_timeout_seconds,
                )
            )
        with _startup_heap_frozen():
            yield
        await _cancel(budgets)
        await _cancel(sync)
        if watcher is not None:
            await run_in_threadpool(watcher.stop)
        await running.state.tenant_list_cache.aclose()
        verifier.close()
        if cluster is not None:
            cluster.close()

    app = FastAPI(
        title="Sandlåda control plane",
        version="1",
        description="AI sandboxes for the Swedish public sector: requests, approvals, tenants, "
        "GPU capacity and the audit trail. Every /api call needs an OIDC bearer token.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.verifier = verifier
    app.state.metrics = metrics
    app.state.identity = identity
    app.state.cluster = cluster
    app.state.watcher = None
    app.state.tenant_list_cache = TenantListCache.for_database(
        database, settings.tenant_list_cache_entries
    )
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    for router in (health_router, requests_router, tenants_router, capacity_router, audit_router):
        app.include_router(router)
    app.include_router(members_router)
    app.include_router(costs_router)
    app.include_router(usage_router)
    app.include_router(notebooks_router)
    install_portal(app, settings, verifier)
    return app
