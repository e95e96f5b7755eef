"""``/api/v1/tenants/{slug}/usage``: metered usage per day, for plots."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from controlplane.auth.dependencies import SettingsDep, TenantMember
from controlplane.database import SessionDep
from controlplane.errors import (
    InvalidInputError,
    NotAuthenticatedError,
    NotFoundError,
    PermissionDeniedError,
    error_responses,
)
from controlplane.metering import service
from controlplane.metering.days import report_zone
from controlplane.metering.schemas import UsageAmounts, UsageDay, UsageSeriesOut

router = APIRouter(prefix="/api/v1/tenants/{slug}/usage", tags=["usage"])

MAX_DAYS = 366
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
HOUR = 3600.0
DAY = 86400.0


EARLIEST = date(2000, 1, 1)
LATEST = date(2999, 12, 31)


def _parse_day(name: str, value: str) -> date:
    if _ISO_DATE.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            pass
        else:
            if EARLIEST <= day <= LATEST:
                return day
            raise InvalidInputError(
                name,
                f"must be between {EARLIEST} and {LATEST} / måste ligga mellan {EARLIEST} och "
                f"{LATEST}",
            )
    raise InvalidInputError(
        name,
        f"{value!r} is not a date; use YYYY-MM-DD / {value!r} är inget datum; ange ÅÅÅÅ-MM-DD",
    )


@router.get(
    "",
    response_model=UsageSeriesOut,
    response_model_by_alias=True,
    responses=error_responses(NotAuthenticatedError, PermissionDeniedError, NotFoundError),
    summary="Metered usage per day (GPU-hours per model, CPU, memory, storage) for plots",
)
def usage_series(
    *,
    caller: TenantMember,
    session: SessionDep,
    settings: SettingsDep,
    from_: Annotated[str, Query(alias="from", max_length=10, description="First day, YYYY-MM-DD.")],
    to: Annotated[str, Query(max_length=10, description="Last day (inclusive), YYYY-MM-DD.")],
    step: Annotated[Literal["day"], Query(description="Only `day` for now.")] = "day",
) -> UsageSeriesOut:
    first = _parse_day("from", from_)
    last = _parse_day("to", to)
    if first > last:
        raise InvalidInputError(
            "from", "must not be after 'to' / 'from' får inte vara senare än 'to'"
        )
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInputError(
            "to",
            f"at most {MAX_DAYS} days per request / högst {MAX_DAYS} dagar per anrop",
        )
    zone = report_zone(settings.report_timezone)
    days = service.daily_usage(
        session, caller.tenant.id, first=first, last=last, now=service.utcnow(), zone=zone
    )
    out = [
        UsageDay(
            day=d.day,
            gpu_hours={model: s / HOUR for model, s in sorted(d.gpu_seconds.items())},
            cpu_core_hours=d.cpu_core_seconds / HOUR,
            memory_gib_hours=d.memory_gib_seconds / HOUR,
            storage_gib_days=d.storage_gib_seconds / DAY,
        )
        for d in days
    ]
    gpu_total: dict[str, float] = {}
    for day in out:
        for model, hours in day.gpu_hours.items():
            gpu_total[model] = gpu_total.get(model, 0.0) + hours
    total = UsageAmounts(
        gpu_hours=dict(sorted(gpu_total.items())),
        cpu_core_hours=sum(d.cpu_core_hours for d in out),
        memory_gib_hours=sum(d.memory_gib_hours for d in out),
        storage_gib_days=sum(d.storage_gib_days for d in out),
    )
    return UsageSeriesOut(
        tenant=caller.tenant.slug,
        from_=first,
        to=last,
        step=step,
        timezone=settings.report_timezone,
        days=out,
        total=total,
    )
