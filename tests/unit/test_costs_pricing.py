"""Pricing rules: months, price periods and exact money (controlplane.costs.pricing)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from controlplane.costs.pricing import (
    Cost,
    Month,
    Period,
    Prices,
    Unpriced,
    Usage,
    periods,
    price,
)
from controlplane.errors import InvalidInputError

A100 = "NVIDIA-A100-SXM4-80GB"
L4 = "NVIDIA-L4"
HOUR = 3600.0
DAY = 86400.0


def prices(price_list_id: int, effective_from: date, *prices_sek: str) -> Prices:
    """SEK per GPU-hour (A100), CPU core-hour, memory GiB-hour and storage GiB-month."""
    gpu, cpu, memory, storage = prices_sek
    return Prices(
        id=price_list_id,
        effective_from=effective_from,
        cpu_core_hour_sek=Decimal(cpu),
        memory_gib_hour_sek=Decimal(memory),
        storage_gib_month_sek=Decimal(storage),
        gpu_hour_sek={A100: Decimal(gpu)},
    )


OCTOBER = prices(1, date(2026, 10, 1), "40.00", "0.50", "0.05", "3.00")
MID_OCTOBER = prices(2, date(2026, 10, 16), "50.00", "0.60", "0.10", "6.00")


class TestMonth:
    @pytest.mark.parametrize(
        ("text", "first", "last"),
        [
            ("2026-02", date(2026, 2, 1), date(2026, 2, 28)),
            ("2028-02", date(2028, 2, 1), date(2028, 2, 29)),
            ("2026-12", date(2026, 12, 1), date(2026, 12, 31)),
        ],
    )
    def test_days(self, text: str, first: date, last: date) -> None:
        month = Month.parse(text)
        assert (month.first_day, month.last_day, str(month)) == (first, last, text)

    @pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-1", "26-01", "november", ""])
    def test_bad_month_names_the_field(self, text: str) -> None:
        with pytest.raises(InvalidInputError) as caught:
            Month.parse(text)
        assert caught.value.field == "month"
        assert "YYYY-MM" in caught.value.detail

    def test_next_crosses_the_year(self) -> None:
        assert Month(2026, 12).next() == Month(2027, 1)


class TestPeriods:
    def test_no_price_list(self) -> None:
        assert periods([], date(2026, 10, 1), date(2026, 10, 31)) == [
            Period(date(2026, 10, 1), date(2026, 10, 31), None)
        ]

    def test_list_from_before_the_month_covers_it(self) -> None:
        earlier = prices(9, date(2026, 1, 1), "1", "1", "1", "1")
        assert periods([earlier], date(2026, 10, 1), date(2026, 10, 31)) == [
            Period(date(2026, 10, 1), date(2026, 10, 31), earlier)
        ]

    def test_change_mid_month_splits_it(self) -> None:
        assert periods([MID_OCTOBER, OCTOBER], date(2026, 10, 1), date(2026, 10, 31)) == [
            Period(date(2026, 10, 1), date(2026, 10, 15), OCTOBER),
            Period(date(2026, 10, 16), date(2026, 10, 31), MID_OCTOBER),
        ]

    def test_first_list_mid_month_leaves_the_start_unpriced(self) -> None:
        assert periods([MID_OCTOBER], date(2026, 10, 1), date(2026, 10, 31)) == [
            Period(date(2026, 10, 1), date(2026, 10, 15), None),
            Period(date(2026, 10, 16), date(2026, 10, 31), MID_OCTOBER),
        ]

    def test_later_version_does_not_reach_back(self) -> None:
        november = prices(3, date(2026, 11, 1), "1", "1", "1", "1")
        assert periods([OCTOBER, november], date(2026, 10, 1), date(2026, 10, 31)) == [
            Period(date(2026, 10, 1), date(2026, 10, 31), OCTOBER)
        ]


class TestPrice:
    def test_each_period_at_its_prices(self) -> None:
        first, second = periods([OCTOBER, MID_OCTOBER], date(2026, 10, 1), date(2026, 10, 31))
        cost, unpriced = price(
            [
                (
                    first,
                    Usage(
                        gpu_seconds={A100: 10 * HOUR},
                        cpu_core_seconds=100 * HOUR,
                        memory_gib_seconds=400 * HOUR,
                        storage_gib_seconds=100 * 15 * DAY,
                    ),
                ),
                (
                    second,
                    Usage(
                        gpu_seconds={A100: 2.5 * HOUR},
                        cpu_core_seconds=10 * HOUR,
                        memory_gib_seconds=40 * HOUR,
                        storage_gib_seconds=100 * 16 * DAY,
                    ),
                ),
            ]
        )
        assert unpriced == []
        # GPU 10 h × 40 + 2.5 h × 50 = 525; CPU 100 × 0.5 + 10 × 0.6 = 56; memory 400 × 0.05 +
        # 40 × 0.10 = 24; storage 1500 GiB-days / 30 × 3 + 1600 / 30 × 6 = 150 + 320 = 470.
        assert cost.gpu_hours == {A100: Decimal("12.5000")}
        assert cost.gpu_cost_sek == {A100: Decimal("525.00")}
        assert (cost.cpu_core_hours, cost.cpu_cost_sek) == (Decimal("110.0000"), Decimal("56.00"))
        assert (cost.memory_gib_hours, cost.memory_cost_sek) == (
            Decimal("440.0000"),
            Decimal("24.00"),
        )
        assert (cost.storage_gib_days, cost.storage_cost_sek) == (
            Decimal("3100.0000"),
            Decimal("470.00"),
        )
        assert cost.total_sek == Decimal("1075.00")

    def test_rounds_each_item_half_up_to_ore_once(self) -> None:
        (period,) = periods([OCTOBER], date(2026, 10, 1), date(2026, 10, 31))
        # 0.01 CPU-hours × 0.50 = 0.005 → 0.01 (half up); three such days still round once:
        # 0.03 h × 0.50 = 0.015 → 0.02, not 3 × 0.01.
        cost, _ = price([(period, Usage(cpu_core_seconds=0.03 * HOUR))])
        assert cost.cpu_cost_sek == Decimal("0.02")
        cost, _ = price([(period, Usage(cpu_core_seconds=0.01 * HOUR))])
        assert cost.cpu_cost_sek == Decimal("0.01")

    def test_float_seconds_do_not_leak_binary_noise(self) -> None:
        (period,) = periods([OCTOBER], date(2026, 10, 1), date(2026, 10, 31))
        # 0.1 + 0.2 in floats is 0.30000000000000004; priced as the decimal it prints as.
        cost, _ = price([(period, Usage(cpu_core_seconds=(0.1 + 0.2) * HOUR))])
        assert cost.cpu_core_hours == Decimal("0.3000")
        assert cost.cpu_cost_sek == Decimal("0.15")

    def test_usage_without_prices_is_reported_not_hidden(self) -> None:
        (before, after) = periods([MID_OCTOBER], date(2026, 10, 1), date(2026, 10, 31))
        cost, unpriced = price(
            [
                (before, Usage(cpu_core_seconds=HOUR)),
                (after, Usage(gpu_seconds={L4: HOUR}, cpu_core_seconds=HOUR)),
            ]
        )
        assert cost.cpu_core_hours == Decimal("2.0000")
        assert cost.cpu_cost_sek == Decimal("0.60")
        assert cost.gpu_hours == {L4: Decimal("1.0000")}
        assert cost.gpu_cost_sek == {L4: Decimal("0.00")}
        assert unpriced == [
            Unpriced(date(2026, 10, 1), date(2026, 10, 15), "all"),
            Unpriced(date(2026, 10, 16), date(2026, 10, 31), L4),
        ]


def test_agency_totals_are_sums_of_rounded_lines() -> None:
    (period,) = periods([OCTOBER], date(2026, 10, 1), date(2026, 10, 31))
    total = Cost()
    lines = []
    for seconds in (0.01 * HOUR, 0.01 * HOUR, 0.01 * HOUR):
        line, _ = price([(period, Usage(cpu_core_seconds=seconds, gpu_seconds={A100: seconds}))])
        lines.append(line)
        total.add(line)
    # Each line: CPU 0.005 → 0.01, GPU 0.4 → 0.40; the total is what the lines print.
    assert total.cpu_cost_sek == sum((line.cpu_cost_sek for line in lines), Decimal(0))
    assert total.cpu_cost_sek == Decimal("0.03")
    assert total.total_sek == sum((line.total_sek for line in lines), Decimal(0))
    assert total.gpu_hours == {A100: Decimal("0.0300")}
