"""Usage and costs per day for the portal: the metering's daily usage, priced per day.

Quantities come from :func:`controlplane.metering.service.daily_usage` (folded days plus what
is still running), prices from the price list in force on each day, exactly as the monthly
report prices a month (:func:`controlplane.costs.pricing.price`). The chart is inline SVG
rendered on the server, with the same figures in a table beside it for screen readers.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from controlplane.costs import pricing
from controlplane.costs import service as costs
from controlplane.costs.pricing import Month, Usage
from controlplane.metering.service import daily_usage


@dataclass(frozen=True)
class DayCost:
    day: date
    gpu_hours: Decimal
    cpu_core_hours: Decimal
    memory_gib_hours: Decimal
    storage_gib_days: Decimal
    cost_sek: Decimal


def tenant_days(
    session: Session, tenant_id: int, month: Month, timezone: str, now: datetime
) -> list[DayCost]:
    """Each day of ``month`` (up to ``now``) with its usage and its cost in SEK."""
    # The report's own split of the month into price-list periods.
    periods = costs.month_periods(session, month)
    days = daily_usage(
        session,
        tenant_id,
        first=month.first_day,
        last=month.last_day,
        now=now,
        zone=ZoneInfo(timezone),
    )
    result = []
    for day in days:
        period = next(p for p in periods if p.first <= day.day <= p.last)
        amounts = Usage(
            gpu_seconds=dict(day.gpu_seconds),
            cpu_core_seconds=day.cpu_core_seconds,
            memory_gib_seconds=day.memory_gib_seconds,
            storage_gib_seconds=day.storage_gib_seconds,
        )
        cost, _ = pricing.price([(period, amounts)])
        result.append(
            DayCost(
                day=day.day,
                gpu_hours=sum(cost.gpu_hours.values(), Decimal(0)),
                cpu_core_hours=cost.cpu_core_hours,
                memory_gib_hours=cost.memory_gib_hours,
                storage_gib_days=cost.storage_gib_days,
                cost_sek=cost.total_sek,
            )
        )
    return result


def days_csv(slug: str, days: list[DayCost]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "tenant",
            "day",
            "gpu_hours",
            "cpu_core_hours",
            "memory_gib_hours",
            "storage_gib_days",
            "cost_sek",
        ]
    )
    for d in days:
        writer.writerow(
            [
                slug,
                d.day.isoformat(),
                d.gpu_hours,
                d.cpu_core_hours,
                d.memory_gib_hours,
                d.storage_gib_days,
                d.cost_sek,
            ]
        )
    return out.getvalue()


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # day of month
    value: Decimal


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    top: int
    bottom: int
    left: int
    maximum: Decimal
    bars: list[Bar]


def bar_chart(days: list[DayCost], width: int = 720, height: int = 240) -> Chart:
    """Geometry of a bar per day, scaled to the largest day (the template draws it)."""
    top, bottom, left, right = 16, 28, 64, 8
    maximum = max((d.cost_sek for d in days), default=Decimal(0))
    scale = (height - top - bottom) / float(maximum) if maximum > 0 else 0.0
    slot = (width - left - right) / max(len(days), 1)
    bars = []
    for index, d in enumerate(days):
        bar_height = float(d.cost_sek) * scale
        bars.append(
            Bar(
                x=round(left + index * slot + slot * 0.15, 1),
                y=round(height - bottom - bar_height, 1),
                width=round(slot * 0.7, 1),
                height=round(bar_height, 1),
                label=str(d.day.day),
                value=d.cost_sek,
            )
        )
    return Chart(width, height, top, bottom, left, maximum, bars)
