"""The `sandlada` command line."""

from __future__ import annotations

import typer

from infra.cli import dev_app

app = typer.Typer(help="Sandlåda control plane.", no_args_is_help=True)
app.add_typer(dev_app, name="dev")
