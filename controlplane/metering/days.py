"""Calendar days in the report time zone: splitting intervals at local midnights (pure)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def report_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (SANDLADA_REPORT_TIMEZONE)") from exc


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant local ``day`` begins (its midnight; 23 or 25 hours apart around DST)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def local_day(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def split_by_day(start: datetime, end: datetime, zone: ZoneInfo) -> Iterator[tuple[date, float]]:
    """Seconds of [start, end) falling on each local calendar day, in order."""
    if end <= start:
        return
    day = local_day(start, zone)
    cursor = start
    while cursor < end:
        boundary = day_start(day + timedelta(days=1), zone)
        piece_end = min(boundary, end)
        yield day, (piece_end - cursor).total_seconds()
        cursor = piece_end
        day += timedelta(days=1)
