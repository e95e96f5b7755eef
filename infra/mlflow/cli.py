"""``python -m infra.mlflow start|stop|status``: the local shared MLflow server.

``mlflow_app`` can also be mounted under ``sandlada dev`` (``dev_app.add_typer(mlflow_app,
name="mlflow")``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infra.mlflow.server import (
    DEFAULT_PORT,
    MlflowServerConfig,
    MlflowServerError,
    default_state_dir,
    start,
    status,
    stop,
)

_DEFAULT_STATE_DIR = default_state_dir()

mlflow_app = typer.Typer(help="Shared MLflow tracking server (workspaces + basic auth).")

StateDir = Annotated[Path, typer.Option(help="Where the server keeps its stores and logs.")]
Port = Annotated[int, typer.Option(help="Port on 127.0.0.1.")]


def _config(state_dir: Path, port: int) -> MlflowServerConfig:
    return MlflowServerConfig(state_dir=state_dir.resolve(), port=port)


@mlflow_app.command("start")
def start_command(state_dir: StateDir = _DEFAULT_STATE_DIR, port: Port = DEFAULT_PORT) -> None:
    """Start the server (no-op if it already runs) and wait until it is healthy."""
    try:
        server = start(_config(state_dir, port))
    except MlflowServerError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error
    typer.echo(
        f"MLflow at {server.url} (pid {server.pid}); admin password in {state_dir}/secrets.json"
    )


@mlflow_app.command("stop")
def stop_command(state_dir: StateDir = _DEFAULT_STATE_DIR, port: Port = DEFAULT_PORT) -> None:
    """Stop the server if it runs."""
    typer.echo("stopped" if stop(_config(state_dir, port)) else "not running")


@mlflow_app.command("status")
def status_command(state_dir: StateDir = _DEFAULT_STATE_DIR, port: Port = DEFAULT_PORT) -> None:
    """Say whether the server runs and is healthy; exit 1 if not."""
    server = status(_config(state_dir, port))
    if server is None:
        typer.echo("not running")
        raise typer.Exit(1)
    typer.echo(f"running at {server.url} (pid {server.pid}), log {server.log_file}")
