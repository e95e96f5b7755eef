"""Price list versions and monthly cost reports.

Reports read the metering's rollups only: usage of a running pod appears once the collector has
folded it into ``usage_daily`` (and, in the same statement path, ``usage_monthly``). The report
reads ``usage_monthly``, one row per tenant, month, price segment and GPU model, i.e. a few
thousand rows for every agency; ``usage_daily`` summed per price period (one grouped scan of
the month's days) gives the same report and is the fallback.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.orm import Session
from stdnum.exceptions import ValidationError
from stdnum.se import orgnr

from controlplane.audit.service import Actor, record
from controlplane.auth.principal import User
from controlplane.costs import pricing
from controlplane.costs.pricing import Cost, Month, Period, Prices, Usage
from controlplane.costs.repository import CostRepository, UsageRow
from controlplane.costs.schemas import (
    AgencyCosts,
    AppliedPriceList,
    CostItems,
    CostReport,
    PriceListIn,
    PriceListOut,
    TenantCostLine,
    UnpricedUsage,
)
from controlplane.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from controlplane.metering.repository import UsageRepository
from controlplane.metering.service import daily_usage
from controlplane.models import GpuPrice, PriceList
from controlplane.models.usage import NO_PRICE_LIST
from controlplane.schemas import format_organisation_number

PRICE_UNIT = Decimal("0.0001")

log = structlog.get_logger(__name__)


def today(timezone: str, now: datetime | None = None) -> date:
    """The calendar day it is now in the report time zone."""
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone)).date()


def current_month(timezone: str, now: datetime | None = None) -> Month:
    return Month.of(today(timezone, now))


# Price lists


def _prices(row: PriceList) -> Prices:
    return Prices(
        id=row.id,
        effective_from=row.effective_from,
        cpu_core_hour_sek=row.cpu_core_hour_sek,
        memory_gib_hour_sek=row.memory_gib_hour_sek,
        storage_gib_month_sek=row.storage_gib_month_sek,
        gpu_hour_sek={p.gpu_model: p.gpu_hour_sek for p in row.gpu_prices},
    )


def _sek(value: Decimal) -> Decimal:
    # Prices have four decimals, whether read back from the database or just written.
    return value.quantize(PRICE_UNIT)


def _price_list_out(row: PriceList, status: str) -> PriceListOut:
    return PriceListOut.model_validate(
        {
            "id": row.id,
            "effective_from": row.effective_from,
            "status": status,
            "gpu_hour_sek": {p.gpu_model: _sek(p.gpu_hour_sek) for p in row.gpu_prices},
            "cpu_core_hour_sek": _sek(row.cpu_core_hour_sek),
            "memory_gib_hour_sek": _sek(row.memory_gib_hour_sek),
            "storage_gib_month_sek": _sek(row.storage_gib_month_sek),
            "note": row.note,
            "created_at": row.created_at,
            "created_by": row.created_by,
        }
    )


def list_price_lists(session: Session, on: date) -> list[PriceListOut]:
    """Every version, oldest first: superseded, in force or scheduled as of ``on``."""
    rows = CostRepository(session).price_lists()
    in_force = max((r.effective_from for r in rows if r.effective_from <= on), default=None)
    result = []
    for row in rows:
        if row.effective_from > on:
            status = "scheduled"
        elif row.effective_from == in_force:
            status = "in_force"
        else:
            status = "superseded"
        result.append(_price_list_out(row, status))
    return result


def _audit_view(row: PriceList) -> dict[str, object]:
    return {
        "effective_from": row.effective_from.isoformat(),
        "gpu_hour_sek": {p.gpu_model: str(p.gpu_hour_sek) for p in row.gpu_prices},
        "cpu_core_hour_sek": str(row.cpu_core_hour_sek),
        "memory_gib_hour_sek": str(row.memory_gib_hour_sek),
        "storage_gib_month_sek": str(row.storage_gib_month_sek),
    }


def create_price_list(session: Session, actor: Actor, body: PriceListIn, on: date) -> PriceListOut:
    """A new version from ``body.effective_from``, which must be after ``on`` (today).

    Days up to today may already have been metered and reported at the prices then in force;
    a version starting on or before today would change those figures, so it is refused.
    """
    if body.effective_from <= on:
        raise InvalidInputError(
            "effective_from",
            f"{body.effective_from.isoformat()} is not after today ({on.isoformat()}); prices "
            "for days that have begun cannot change, so a new version must start tomorrow or "
            "later / priser för dagar som redan har börjat kan inte ändras; en ny version måste "
            "gälla från i morgon eller senare",
        )
    repository = CostRepository(session)
    if repository.price_list_on(body.effective_from) is not None:
        raise ConflictError(
            f"a price list from {body.effective_from.isoformat()} already exists; delete that "
            "scheduled version first to replace it / det finns redan en prislista från det "
            "datumet; ta bort den schemalagda versionen först"
        )
    row = PriceList(
        effective_from=body.effective_from,
        cpu_core_hour_sek=body.cpu_core_hour_sek,
        memory_gib_hour_sek=body.memory_gib_hour_sek,
        storage_gib_month_sek=body.storage_gib_month_sek,
        note=body.note,
        created_by=actor.subject,
        gpu_prices=[
            GpuPrice(gpu_model=model, gpu_hour_sek=hourly)
            for model, hourly in sorted(body.gpu_hour_sek.items())
        ],
    )
    repository.add(row)
    _rekey_summary(session, body.effective_from)
    record(session, actor, "price_list.created", "price_list", str(row.id), after=_audit_view(row))
    return _price_list_out(row, "scheduled")


def _rekey_summary(session: Session, changed_from: date) -> None:
    """After a version from ``changed_from`` was added or withdrawn: if usage is already
    metered for that day or later (only possible through clock skew or a bulk load, as versions
    start after today), recompute those months' summary segments in this transaction."""
    usage = UsageRepository(session)
    if usage.has_daily_from(changed_from):
        usage.rebuild_monthly(changed_from)


def delete_price_list(session: Session, actor: Actor, price_list_id: int, on: date) -> None:
    """Withdraw a scheduled version; versions in force or superseded are history and stay."""
    repository = CostRepository(session)
    row = repository.price_list(price_list_id)
    if row is None:
        raise NotFoundError(f"no price list {price_list_id} / prislistan finns inte")
    if row.effective_from <= on:
        raise ConflictError(
            f"price list {price_list_id} has applied since {row.effective_from.isoformat()} and "
            "is part of the pricing history; publish a new version from tomorrow instead / "
            "prislistan har redan gällt och kan inte tas bort; publicera en ny version"
        )
    view = _audit_view(row)
    repository.delete(row)
    _rekey_summary(session, row.effective_from)
    record(session, actor, "price_list.deleted", "price_list", str(price_list_id), before=view)


# Reports


def parse_agency(value: str) -> str:
    """An organisation number in any common spelling, compact; 422 naming ``agency`` if bad."""
    try:
        return str(orgnr.validate(value))
    except ValidationError as exc:
        raise InvalidInputError(
            "agency",
            f"{value!r} is not a valid Swedish organisation number (NNNNNN-NNNN) / ogiltigt "
            "organisationsnummer",
        ) from exc


def report_scope(user: User, agency: str | None) -> str | None:
    """The agency (compact organisation number) a caller's report covers; None = all agencies.

    Platform admins see every agency or the one they name; anyone else sees only their own
    agency (from the token's organisation_number claim), and naming another one is a 403.
    """
    wanted = parse_agency(agency) if agency is not None else None
    if user.is_platform_admin:
        return wanted
    own = user.require_organisation()
    if wanted is not None and wanted != own:
        raise PermissionDeniedError(
            "you may only see the cost report of your own agency / du kan bara se din egen "
            "myndighets kostnadsrapport"
        )
    return own


def _items(cost: Cost) -> dict[str, object]:
    return {
        "gpu_hours": cost.gpu_hours,
        "gpu_cost_sek": cost.gpu_cost_sek,
        "cpu_core_hours": cost.cpu_core_hours,
        "cpu_cost_sek": cost.cpu_cost_sek,
        "memory_gib_hours": cost.memory_gib_hours,
        "memory_cost_sek": cost.memory_cost_sek,
        "storage_gib_days": cost.storage_gib_days,
        "storage_cost_sek": cost.storage_cost_sek,
        "total_sek": cost.total_sek,
    }


def _month_periods(session: Session, month: Month) -> list[Period]:
    prices = [_prices(row) for row in CostRepository(session).price_lists()]
    return pricing.periods(prices, month.first_day, month.last_day)


def month_periods(session: Session, month: Month) -> list[Period]:
    """The month split into runs of days priced by one price list, as the report splits it."""
    return _month_periods(session, month)


ReportSource = Literal["summary", "daily"]


TenantUsage = dict[int, list[tuple[Period, Usage]]]
TenantNames = dict[int, tuple[str, str, str]]


def _summary_usage(
    session: Session, month: Month, periods: list[Period], agency_id: int | None
) -> tuple[TenantUsage, TenantNames] | None:
    """The month's usage per tenant and price period from ``usage_monthly``; None if a row's
    price segment does not fit the periods the price lists give now.

    A row's segment is the price list in force on its days when they were metered. Price lists
    are only added or withdrawn for days after today (and re-key any later day already
    metered), so a misfit needs usage folded for a future day racing a price list change, or
    rows written around the product; the report then reads ``usage_daily`` instead, which is
    exact whatever the summary holds.
    """
    index = {
        (p.prices.effective_from if p.prices is not None else NO_PRICE_LIST): i
        for i, p in enumerate(periods)
    }
    usage: TenantUsage = defaultdict(list)
    names: TenantNames = {}
    amounts = Usage()
    current: tuple[int, int] | None = None
    # Ordered by tenant, segment (= period, in date order) and GPU model: the amounts of one
    # (tenant, period) are consecutive rows, added in the order the usage_daily path adds them.
    for (
        tenant,
        slug,
        org,
        name,
        price_from,
        model,
        gpu,
        cpu,
        memory,
        storage,
        first_day,
        last_day,
    ) in CostRepository(session).monthly_usage(month.first_day, agency_id=agency_id):
        period_index = index.get(price_from, -1)
        period = periods[period_index] if period_index >= 0 else None
        if period is None or first_day < period.first or last_day > period.last:
            log.warning(
                "usage_monthly segment does not match the price lists; the report reads "
                "usage_daily (sandlada meter rebuild-summary repairs the summary)",
                price_from=str(price_from),
                tenant=slug,
                month=str(month),
            )
            return None
        if current != (tenant, period_index):
            current = (tenant, period_index)
            amounts = Usage()
            usage[tenant].append((period, amounts))
            names[tenant] = (slug, org, name)
        if model:
            amounts.gpu_seconds[model] = amounts.gpu_seconds.get(model, 0.0) + gpu
        amounts.cpu_core_seconds += cpu
        amounts.memory_gib_seconds += memory
        amounts.storage_gib_seconds += storage
    return usage, names


def _daily_rows(
    session: Session,
    periods: list[Period],
    *,
    agency_id: int | None = None,
    tenant_id: int | None = None,
) -> list[UsageRow]:
    return CostRepository(session).usage(
        [(p.first, p.last) for p in periods], agency_id=agency_id, tenant_id=tenant_id
    )


def _usage_by_tenant(
    rows: list[UsageRow], periods: list[Period]
) -> tuple[TenantUsage, TenantNames]:
    usage: TenantUsage = defaultdict(list)
    names: TenantNames = {}
    per_period: dict[tuple[int, int], Usage] = {}
    # The rows come ordered by tenant, period and GPU model (both queries), so the float sums
    # below add in one order.
    for tenant, slug, org, agency_name, index, model, gpu, cpu, memory, storage in rows:
        amounts = per_period.get((tenant, index))
        if amounts is None:
            amounts = per_period[(tenant, index)] = Usage()
            usage[tenant].append((periods[index], amounts))
            names[tenant] = (slug, org, agency_name)
        if model:
            amounts.gpu_seconds[model] = amounts.gpu_seconds.get(model, 0.0) + (gpu or 0.0)
        amounts.cpu_core_seconds += cpu or 0.0
        amounts.memory_gib_seconds += memory or 0.0
        amounts.storage_gib_seconds += storage or 0.0
    return usage, names


def cost_report(
    session: Session,
    month: Month,
    timezone: str,
    *,
    organisation_number: str | None = None,
    now: datetime | None = None,
    source: ReportSource = "summary",
) -> CostReport:
    """The month's costs per tenant, grouped by agency, each day at the prices then in force.

    ``source="summary"`` reads ``usage_monthly`` (a few rows per tenant; falls back to
    ``usage_daily`` if a segment does not fit the price periods), ``"daily"`` sums the month's
    ``usage_daily`` rows; both give the same report.
    """
    repository = CostRepository(session)
    agency_id: int | None = None
    if organisation_number is not None:
        agency = repository.agency_by_organisation_number(organisation_number)
        agency_id = agency.id if agency is not None else -1
    periods = _month_periods(session, month)
    summary = _summary_usage(session, month, periods, agency_id) if source == "summary" else None
    usage, names = summary or _usage_by_tenant(
        _daily_rows(session, periods, agency_id=agency_id), periods
    )

    agencies: dict[str, tuple[str, list[TenantCostLine], Cost]] = {}
    unpriced: list[UnpricedUsage] = []
    # Agencies by name (then organisation number), tenants by slug within each.
    for tenant_id in sorted(usage, key=lambda t: (names[t][2], names[t][1], names[t][0])):
        slug, org, agency_name = names[tenant_id]
        cost, missing = pricing.price(usage[tenant_id])
        unpriced.extend(
            UnpricedUsage(tenant=slug, first_day=m.first, last_day=m.last, what=m.what)
            for m in missing
        )
        entry = agencies.get(org)
        if entry is None:
            entry = agencies[org] = (agency_name, [], Cost())
        entry[1].append(TenantCostLine.model_validate({"tenant": slug, **_items(cost)}))
        entry[2].add(cost)

    agency_out = [
        AgencyCosts(
            organisation_number=format_organisation_number(org),
            name=name,
            tenants=lines,
            totals=CostItems.model_validate(_items(totals)),
        )
        for org, (name, lines, totals) in agencies.items()
    ]
    return CostReport(
        month=str(month),
        timezone=timezone,
        generated_at=now or datetime.now(UTC),
        price_lists=[
            AppliedPriceList(
                id=p.prices.id,
                effective_from=p.prices.effective_from,
                first_day=p.first,
                last_day=p.last,
            )
            for p in periods
            if p.prices is not None
        ],
        agencies=agency_out,
        total_sek=sum((a.totals.total_sek for a in agency_out), Decimal(0)),
        unpriced=unpriced,
    )


def tenant_month_cost(
    session: Session, tenant_id: int, month: Month, timezone: str, now: datetime | None = None
) -> Decimal:
    """One tenant's costs for ``month`` up to ``now``, priced exactly as the report prices them.

    Unlike the all-agency report (usage_daily only), this also counts what the metering has not
    folded into usage_daily yet: running pods and today's usage, up to ``now``
    (:func:`controlplane.metering.service.daily_usage`). Budgets and launch refusals use it, so
    a notebook running right now counts against its tenant's budget.
    """
    now = now or datetime.now(UTC)
    periods = _month_periods(session, month)
    days = daily_usage(
        session,
        tenant_id,
        first=month.first_day,
        last=month.last_day,
        now=now,
        zone=ZoneInfo(timezone),
    )
    usage: list[tuple[Period, Usage]] = []
    for period in periods:
        amounts = Usage()
        for day in days:
            if period.first <= day.day <= period.last:
                for model, seconds in day.gpu_seconds.items():
                    amounts.gpu_seconds[model] = amounts.gpu_seconds.get(model, 0.0) + seconds
                amounts.cpu_core_seconds += day.cpu_core_seconds
                amounts.memory_gib_seconds += day.memory_gib_seconds
                amounts.storage_gib_seconds += day.storage_gib_seconds
        usage.append((period, amounts))
    cost, _ = pricing.price(usage)
    return cost.total_sek


CSV_FIXED = (
    "cpu_core_hours",
    "cpu_cost_sek",
    "memory_gib_hours",
    "memory_cost_sek",
    "storage_gib_days",
    "storage_cost_sek",
    "total_sek",
)


def report_csv(report: CostReport) -> str:
    """The report as CSV: one row per tenant, then one ``agency_total`` row per agency.

    GPU columns are ``gpu_hours:<model>`` and ``gpu_cost_sek:<model>`` for every model that
    occurs in the report; figures are the same decimal strings as in the JSON report.
    """
    models = sorted({model for agency in report.agencies for model in agency.totals.gpu_hours})
    header = ["month", "line", "agency_organisation_number", "agency_name", "tenant"]
    for model in models:
        header += [f"gpu_hours:{model}", f"gpu_cost_sek:{model}"]
    header += list(CSV_FIXED)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)

    def row(line: str, agency: AgencyCosts, tenant: str, items: CostItems) -> list[str]:
        cells = [report.month, line, agency.organisation_number, agency.name, tenant]
        for model in models:
            cells += [
                str(items.gpu_hours.get(model, "")),
                str(items.gpu_cost_sek.get(model, "")),
            ]
        cells += [str(getattr(items, column)) for column in CSV_FIXED]
        return cells

    for agency in report.agencies:
        for line in agency.tenants:
            writer.writerow(row("tenant", agency, line.tenant, line))
        writer.writerow(row("agency_total", agency, "", agency.totals))
    return out.getvalue()
