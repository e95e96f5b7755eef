"""`sandlada dev keycloak up|down|status`: the local Keycloak serving the ``sandlada`` realm."""

from __future__ import annotations

import typer

from infra.keycloak import launcher

keycloak_app = typer.Typer(
    help="The local Keycloak (dev mode, realm 'sandlada', http://127.0.0.1:8080).",
    no_args_is_help=True,
)


@keycloak_app.command("up")
def keycloak_up(
    timeout: float = typer.Option(300.0, help="Seconds to wait for the realm to answer."),
) -> None:
    """Start Keycloak (or reuse the running one) and wait until the realm answers."""
    try:
        info = launcher.start(timeout=timeout)
    except launcher.KeycloakError as error:
        typer.echo(f"keycloak up failed: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(f"keycloak ready: issuer {info.issuer}")
    typer.echo(
        f"admin console: {info.base_url}/admin/ "
        f"({info.console_admin_username} / {info.console_admin_password}, local development only)"
    )


@keycloak_app.command("down")
def keycloak_down() -> None:
    """Stop the Keycloak this checkout started (its data in var/keycloak/ is kept)."""
    if launcher.stop():
        typer.echo("keycloak stopped")
    else:
        typer.echo("keycloak was not running (started by this checkout)")


@keycloak_app.command("status")
def keycloak_status() -> None:
    """Whether the realm answers; exits 1 if not."""
    info = launcher.status()
    if info is None:
        typer.echo("keycloak: not serving the realm (run `sandlada dev keycloak up`)")
        raise typer.Exit(1)
    owner = f"pid {info.pid}" if info.pid else "not started by this checkout"
    memory = f", RSS {launcher.rss_bytes(info.pid) / 2**20:.0f} MiB" if info.pid else ""
    typer.echo(f"keycloak: ready, issuer {info.issuer} ({owner}{memory}), log {info.log_file}")
