"""Pure pricing rules: months, price periods, and exact money arithmetic.

Units and rounding (the contract with finance):
- GPU, CPU and memory are priced per hour: ``seconds / 3600 × SEK per hour``.
- Storage is priced per GiB-month, where a month is ``MONTH_DAYS`` = 30 days whatever the
  calendar says, so a GiB kept for a whole 31-day month costs 31/30 of the monthly price and a
  GiB-day always costs the same: ``GiB-seconds / 86 400 / 30 × SEK per GiB-month``.
- Every day is priced at the price list in force on that calendar day (report time zone).
- Arithmetic is ``Decimal`` throughout; each cost item of a line (one per GPU model, CPU,
  memory, storage) is rounded once, half up, to öre (2 decimals); a line's ``total_sek`` is the
  sum of its rounded items and an agency's totals are the sums of its rounded lines, so every
  total equals the sum of what is printed above it. Quantities are rounded to 4 decimals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from controlplane.errors import InvalidInputError

MONTH_DAYS = 30
SECONDS_PER_HOUR = Decimal(3600)
SECONDS_PER_DAY = Decimal(86400)
ORE = Decimal("0.01")
QUANTITY = Decimal("0.0001")
ZERO = Decimal(0)

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str, field_name: str = "month") -> Month:
        """``YYYY-MM``; a 422 naming ``field_name`` otherwise."""
        match = _MONTH.match(text.strip()) if isinstance(text, str) else None
        if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
            raise InvalidInputError(
                field_name,
                f"{text!r} is not a month; use YYYY-MM, e.g. 2026-11 / ange månad som ÅÅÅÅ-MM",
            )
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return self.next().first_day - timedelta(days=1)

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class Prices:
    """One price list version, as the pricing rules need it."""

    id: int
    effective_from: date
    cpu_core_hour_sek: Decimal
    memory_gib_hour_sek: Decimal
    storage_gib_month_sek: Decimal
    gpu_hour_sek: dict[str, Decimal]


@dataclass(frozen=True)
class Period:
    """Consecutive days ``first``..``last`` (inclusive) priced by ``prices`` (None: no list)."""

    first: date
    last: date
    prices: Prices | None


def periods(price_lists: Sequence[Prices], first: date, last: date) -> list[Period]:
    """Split ``first``..``last`` into runs of days that share the price list in force."""
    ordered = sorted(price_lists, key=lambda p: p.effective_from)
    result: list[Period] = []
    current: Prices | None = None
    for prices in ordered:
        if prices.effective_from <= first:
            current = prices
    start = first
    for prices in ordered:
        if first < prices.effective_from <= last:
            result.append(Period(start, prices.effective_from - timedelta(days=1), current))
            start, current = prices.effective_from, prices
    result.append(Period(start, last, current))
    return result


@dataclass
class Usage:
    """Metered usage of one tenant in one period, in seconds as usage_daily holds it."""

    gpu_seconds: dict[str, float] = field(default_factory=dict)
    cpu_core_seconds: float = 0.0
    memory_gib_seconds: float = 0.0
    storage_gib_seconds: float = 0.0


def exact(value: float | int | Decimal) -> Decimal:
    """A float as the decimal it prints as (no binary expansion noise)."""
    return value if isinstance(value, Decimal) else Decimal(repr(float(value)))


def money(value: Decimal) -> Decimal:
    return value.quantize(ORE, rounding=ROUND_HALF_UP)


def quantity(value: Decimal) -> Decimal:
    return value.quantize(QUANTITY, rounding=ROUND_HALF_UP)


@dataclass
class Cost:
    """One tenant's priced usage for a month: rounded quantities and costs."""

    gpu_hours: dict[str, Decimal] = field(default_factory=dict)
    gpu_cost_sek: dict[str, Decimal] = field(default_factory=dict)
    cpu_core_hours: Decimal = ZERO
    cpu_cost_sek: Decimal = ZERO
    memory_gib_hours: Decimal = ZERO
    memory_cost_sek: Decimal = ZERO
    storage_gib_days: Decimal = ZERO
    storage_cost_sek: Decimal = ZERO

    @property
    def total_sek(self) -> Decimal:
        return money(
            sum(self.gpu_cost_sek.values(), ZERO)
            + self.cpu_cost_sek
            + self.memory_cost_sek
            + self.storage_cost_sek
        )

    def add(self, other: Cost) -> None:
        """Add another (already rounded) line: agency totals are sums of printed lines."""
        for model, hours in other.gpu_hours.items():
            self.gpu_hours[model] = self.gpu_hours.get(model, ZERO) + hours
        for model, cost in other.gpu_cost_sek.items():
            self.gpu_cost_sek[model] = self.gpu_cost_sek.get(model, ZERO) + cost
        self.cpu_core_hours += other.cpu_core_hours
        self.cpu_cost_sek += other.cpu_cost_sek
        self.memory_gib_hours += other.memory_gib_hours
        self.memory_cost_sek += other.memory_cost_sek
        self.storage_gib_days += other.storage_gib_days
        self.storage_cost_sek += other.storage_cost_sek


@dataclass(frozen=True)
class Unpriced:
    """Usage that no price list covered (before the first list, or a GPU model it lacks)."""

    first: date
    last: date
    what: str  # "all" or a GPU model


def price(usage: Iterable[tuple[Period, Usage]]) -> tuple[Cost, list[Unpriced]]:
    """Price one tenant's usage, period by period, each at the prices then in force.

    Usage that no price covers still shows in the quantities and costs 0; it is returned in the
    second element so that the report can say so instead of hiding it.
    """
    gpu_seconds: dict[str, Decimal] = {}
    gpu_cost: dict[str, Decimal] = {}
    cpu_seconds = memory_seconds = storage_seconds = ZERO
    cpu_cost = memory_cost = storage_cost = ZERO
    unpriced: list[Unpriced] = []
    for period, amounts in usage:
        prices = period.prices
        cpu = exact(amounts.cpu_core_seconds)
        memory = exact(amounts.memory_gib_seconds)
        storage = exact(amounts.storage_gib_seconds)
        cpu_seconds += cpu
        memory_seconds += memory
        storage_seconds += storage
        if prices is None:
            if cpu or memory or storage or any(amounts.gpu_seconds.values()):
                unpriced.append(Unpriced(period.first, period.last, "all"))
        else:
            cpu_cost += cpu / SECONDS_PER_HOUR * prices.cpu_core_hour_sek
            memory_cost += memory / SECONDS_PER_HOUR * prices.memory_gib_hour_sek
            storage_cost += storage / SECONDS_PER_DAY / MONTH_DAYS * prices.storage_gib_month_sek
        for model, seconds in amounts.gpu_seconds.items():
            gpu = exact(seconds)
            gpu_seconds[model] = gpu_seconds.get(model, ZERO) + gpu
            gpu_cost.setdefault(model, ZERO)
            if prices is None:
                continue
            hourly = prices.gpu_hour_sek.get(model)
            if hourly is None:
                if gpu:
                    unpriced.append(Unpriced(period.first, period.last, model))
                continue
            gpu_cost[model] += gpu / SECONDS_PER_HOUR * hourly
    cost = Cost(
        gpu_hours={m: quantity(s / SECONDS_PER_HOUR) for m, s in sorted(gpu_seconds.items())},
        gpu_cost_sek={m: money(c) for m, c in sorted(gpu_cost.items())},
        cpu_core_hours=quantity(cpu_seconds / SECONDS_PER_HOUR),
        cpu_cost_sek=money(cpu_cost),
        memory_gib_hours=quantity(memory_seconds / SECONDS_PER_HOUR),
        memory_cost_sek=money(memory_cost),
        storage_gib_days=quantity(storage_seconds / SECONDS_PER_DAY),
        storage_cost_sek=money(storage_cost),
    )
    return cost, unpriced
