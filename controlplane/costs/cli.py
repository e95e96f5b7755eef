"""``sandlada report costs`` and ``sandlada budgets evaluate``: the database, read directly."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from controlplane.costs import budgets, service
from controlplane.costs.pricing import Month
from controlplane.database import Database
from controlplane.errors import SandladaError
from controlplane.settings import Settings

report_app = typer.Typer(help="Reports.", no_args_is_help=True)
budgets_app = typer.Typer(help="Tenant budgets and their alerts.", no_args_is_help=True)


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


@report_app.command("costs")
def report_costs(
    month: Annotated[str, typer.Option("--month", help="The month, YYYY-MM.")],
    agency: Annotated[
        str | None, typer.Option("--agency", help="Only this agency (organisation number).")
    ] = None,
    output_format: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="Output format.")
    ] = ReportFormat.CSV,
) -> None:
    """Costs per tenant and agency for MONTH in SEK, as the API reports them."""
    settings = Settings()
    database = Database.from_url(settings.database_url)
    try:
        parsed = Month.parse(month, "--month")
        organisation_number = service.parse_agency(agency) if agency is not None else None
        with database.session() as session:
            report = service.cost_report(
                session,
                parsed,
                settings.report_timezone,
                organisation_number=organisation_number,
            )
    except SandladaError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
    finally:
        database.dispose()
    if output_format is ReportFormat.CSV:
        typer.echo(service.report_csv(report), nl=False)
    else:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False))


@budgets_app.command("evaluate")
def budgets_evaluate() -> None:
    """Record the budget alerts reached this month and send due ones to the webhook."""
    settings = Settings()
    database = Database.from_url(settings.database_url)
    try:
        recorded, delivered = budgets.run_once(
            database,
            settings.report_timezone,
            settings.budget_webhook_url,
            timeout=settings.budget_webhook_timeout_seconds,
        )
    finally:
        database.dispose()
    typer.echo(f"{recorded} alert(s) recorded, {delivered} delivered")
