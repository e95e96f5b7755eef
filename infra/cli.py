"""`sandlada dev …`: bring the local platform's components up and down."""

from __future__ import annotations

import shlex
import sys

import typer

from infra.cluster.launcher import ClusterError, Launcher
from infra.keycloak.cli import keycloak_app
from infra.mlflow.cli import mlflow_app

dev_app = typer.Typer(
    help="Local development platform (cluster, Keycloak, …).", no_args_is_help=True
)
cluster_app = typer.Typer(
    help="The local Kubernetes cluster (etcd, apiserver, controller-manager, scheduler, kwok).",
    no_args_is_help=True,
)
dev_app.add_typer(cluster_app, name="cluster")
dev_app.add_typer(keycloak_app, name="keycloak")
dev_app.add_typer(mlflow_app, name="mlflow")


def _launcher() -> Launcher:
    return Launcher()


@cluster_app.command("up")
def cluster_up(
    timeout: float = typer.Option(120.0, help="Seconds to wait for each readiness step."),
) -> None:
    """Start the cluster (or check the running one) and wait until it is ready."""
    try:
        info = _launcher().up(timeout=timeout)
    except ClusterError as error:
        typer.echo(f"cluster up failed: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(f"cluster ready at {info.server}")
    typer.echo(f"kubeconfig: {info.kubeconfig}")
    typer.echo(f"use it with: export KUBECONFIG={shlex.quote(str(info.kubeconfig))}")


@cluster_app.command("down")
def cluster_down(
    force: bool = typer.Option(False, help="Stop even while test sessions are using it."),
) -> None:
    """Stop the processes `up` started and remove the cluster's state."""
    try:
        # The work tree (and so the cluster) may be shared by several people's test runs.
        _launcher().down(force=force)
    except ClusterError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error


@cluster_app.command("status")
def cluster_status() -> None:
    """Each component's state; exits 1 unless all are healthy."""
    launcher = _launcher()
    states = launcher.status()
    for component, state in states.items():
        typer.echo(f"{component:<24} {state}")
    if not all(state.startswith("healthy") for state in states.values()):
        raise typer.Exit(1)
    typer.echo(f"kubeconfig: {launcher.config.kubeconfig}")


@cluster_app.command("env")
def cluster_env() -> None:
    """Print `export KUBECONFIG=…` for the local cluster (use with eval)."""
    launcher = _launcher()
    if not launcher.config.kubeconfig.exists():
        typer.echo("no cluster yet: run `sandlada dev cluster up`", err=True)
        raise typer.Exit(1)
    sys.stdout.write(f"export KUBECONFIG={shlex.quote(str(launcher.config.kubeconfig))}\n")
