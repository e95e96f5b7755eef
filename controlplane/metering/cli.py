"""``sandlada meter run``: the metering collector as a control-plane process; ``sandlada meter
rebuild-summary``: recompute the cost report's monthly summary from ``usage_daily``."""

from __future__ import annotations

import signal
import threading
from datetime import date
from typing import Annotated

import typer

from controlplane.database import Database
from controlplane.logs import configure_logging
from controlplane.metering.collector import run_collector
from controlplane.metering.repository import UsageRepository
from controlplane.settings import Settings

meter_app = typer.Typer(help="Usage metering.", no_args_is_help=True)


@meter_app.callback()
def _meter() -> None:
    """Usage metering (a group even with one command, so `sandlada meter run` stays stable)."""


@meter_app.command("run")
def meter_run(
    tick_seconds: Annotated[
        float,
        typer.Option(help="How often live intervals are marked seen and due days are folded."),
    ] = 30.0,
) -> None:
    """Meter pod and storage usage of tenant namespaces until SIGTERM/SIGINT."""
    settings = Settings()
    configure_logging(json=settings.log_json)
    if settings.kubeconfig is None or not settings.kubeconfig.is_file():
        typer.echo(
            "error: no Kubernetes cluster is configured "
            f"(SANDLADA_KUBECONFIG={settings.kubeconfig})",
            err=True,
        )
        raise typer.Exit(1)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run_collector(
        settings.database_url,
        settings.kubeconfig,
        settings.report_timezone,
        stop=stop,
        tick_seconds=tick_seconds,
    )


@meter_app.command("rebuild-summary")
def meter_rebuild_summary(
    since: Annotated[
        str | None,
        typer.Option(help="YYYY-MM-DD: rebuild the months from this day's month on (default all)."),
    ] = None,
) -> None:
    """Recompute usage_monthly (the cost report's summary) from usage_daily, in one transaction.

    Needed only after usage_daily was written by other means than the metering (a bulk load).
    """
    try:
        first = date.fromisoformat(since) if since is not None else None
    except ValueError:
        typer.echo(f"error: --since {since!r} is not a day (YYYY-MM-DD)", err=True)
        raise typer.Exit(2) from None
    database = Database.from_url(Settings().database_url)
    try:
        with database.session() as session, session.begin():
            rows = UsageRepository(session).rebuild_monthly(first)
    finally:
        database.dispose()
    typer.echo(f"usage_monthly: {rows} rows")
