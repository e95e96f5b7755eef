"""`sandlada dev …`: bring the local platform's components up and down."""

from __future__ import annotations

import typer

dev_app = typer.Typer(help="Local development platform (cluster, Keycloak, …).", no_args_is_help=True)
