"""The ``sandlada`` command line: serve, migrate, manage GPU capacity, verify the audit trail."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from controlplane import devstack, migrate
from controlplane.audit.service import Actor, verify_chain
from controlplane.capacity import service as capacity_service
from controlplane.cluster.storage import NOT_CONFIGURED_MESSAGE, connect
from controlplane.costs.cli import budgets_app, report_app
from controlplane.database import Database
from controlplane.errors import SandladaError
from controlplane.metering import launcher as meter_launcher
from controlplane.metering.cli import meter_app
from controlplane.settings import Settings
from infra.cli import dev_app

app = typer.Typer(help="Sandlåda control plane.", no_args_is_help=True)
app.add_typer(dev_app, name="dev")
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
capacity_app = typer.Typer(help="GPU capacity per model.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(capacity_app, name="capacity")
app.add_typer(audit_app, name="audit")
app.add_typer(report_app, name="report")
app.add_typer(budgets_app, name="budgets")
app.add_typer(meter_app, name="meter")

console = Console()
CLI_ACTOR = Actor(subject="cli", name="sandlada command line")
DEV_HOST = "127.0.0.1"
DEV_PORT = 8000
DEV_DATABASE = Path("var/sandlada.db")


class Output(StrEnum):
    TEXT = "text"
    JSON = "json"


OutputOption = Annotated[Output, typer.Option("--output", "-o", help="Output format.")]


def _emit(output: Output, data: Any, table: Table | str) -> None:
    if output is Output.JSON:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        console.print(table)


def _database(settings: Settings) -> Database:
    return Database.from_url(settings.database_url)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = DEV_HOST,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = DEV_PORT,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the API with uvicorn."""
    Settings()  # fail fast, with the settings' own message, before uvicorn starts
    uvicorn.run("controlplane.app:create_app", factory=True, host=host, port=port, workers=workers)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Migrate the database up to REVISION (default: the newest)."""
    migrate.upgrade(Settings().database_url, revision)


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target, e.g. base or -1.")]) -> None:
    """Migrate the database down to REVISION."""
    migrate.downgrade(Settings().database_url, revision)


@capacity_app.command("list")
def capacity_list(output: OutputOption = Output.TEXT) -> None:
    """Show GPUs per model: total, granted, free."""
    settings = Settings()
    database = _database(settings)
    with database.session() as session:
        rows = capacity_service.list_capacity(session, settings.gpu_overcommit)
    database.dispose()
    table = Table("gpu_model", "total", "granted", "free")
    for row in rows:
        table.add_row(row.gpu_model, str(row.total), str(row.granted), str(row.free))
    _emit(output, [r.model_dump() for r in rows], table)


@capacity_app.command("set")
def capacity_set(
    gpu_model: Annotated[str, typer.Argument(help="GPU model, e.g. NVIDIA-A100-SXM4-80GB.")],
    total: Annotated[int, typer.Argument(min=0, help="GPUs of this model in the cluster.")],
    output: OutputOption = Output.TEXT,
) -> None:
    """Register or change how many GPUs of a model the cluster offers."""
    settings = Settings()
    database = _database(settings)
    try:
        with database.session(write=True) as session, session.begin():
            row = capacity_service.set_capacity(
                session, CLI_ACTOR, gpu_model, total, settings.gpu_overcommit
            )
    except SandladaError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    finally:
        database.dispose()
    _emit(output, row.model_dump(), f"{row.gpu_model}: {row.total} GPUs ({row.free} free)")


@capacity_app.command("sync")
def capacity_sync(output: OutputOption = Output.TEXT) -> None:
    """Set each GPU model's total from the cluster's nodes (models an admin set keep theirs)."""
    settings = Settings()
    cluster = connect(settings.kubeconfig, timeout=settings.kubernetes_timeout_seconds)
    if cluster is None:
        typer.echo(f"error: {NOT_CONFIGURED_MESSAGE}", err=True)
        raise typer.Exit(1)
    database = _database(settings)
    try:
        observed = cluster.gpu_capacity()
        with database.session(write=True) as session, session.begin():
            rows = capacity_service.sync_from_nodes(
                session, CLI_ACTOR, observed, settings.gpu_overcommit
            )
    except SandladaError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    finally:
        database.dispose()
        cluster.close()
    table = Table("gpu_model", "total", "granted", "free", "source")
    for row in rows:
        source = "admin" if row.admin_override else "nodes"
        table.add_row(row.gpu_model, str(row.total), str(row.granted), str(row.free), source)
    _emit(output, [r.model_dump() for r in rows], table)


@audit_app.command("verify")
def audit_verify(output: OutputOption = Output.TEXT) -> None:
    """Check the audit trail's hash chain; exit 1 if any event was changed or removed."""
    database = _database(Settings())
    with database.session() as session:
        report = verify_chain(session)
    database.dispose()
    data = {
        "ok": report.ok,
        "events": report.events,
        "first_bad_id": report.first_bad_id,
        "problem": report.problem,
    }
    message = (
        f"audit chain intact: {report.events} events"
        if report.ok
        else f"audit chain BROKEN at event {report.first_bad_id}: {report.problem}"
    )
    _emit(output, data, message)
    if not report.ok:
        raise typer.Exit(1)


@dev_app.command("up")
def dev_up(
    port: Annotated[int, typer.Option(help="Port for the control plane.")] = DEV_PORT,
) -> None:
    """Bring the whole local platform up, then serve the control plane on 127.0.0.1."""
    os.environ.update(devstack.up())
    settings = Settings()
    migrate.upgrade(settings.database_url)
    meter_launcher.start()  # after the migration: the collector writes usage tables
    typer.echo(f"control plane on http://{DEV_HOST}:{port} (database {settings.database_url})")
    uvicorn.run("controlplane.app:create_app", factory=True, host=DEV_HOST, port=port)


@dev_app.command("down")
def dev_down() -> None:
    """Stop what `sandlada dev up` started (operator, MLflow, Keycloak, cluster)."""
    meter_launcher.stop()
    devstack.down()
