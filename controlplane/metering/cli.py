"""``sandlada meter run``: the metering collector as a control-plane process."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from controlplane.logs import configure_logging
from controlplane.metering.collector import run_collector
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
