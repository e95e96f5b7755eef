"""API shapes of price lists, cost reports and budgets.

Money and quantities are decimal strings in JSON ("1234.50"), never binary floats, so what a
client reads is exactly what was computed; requests accept numbers or strings.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from controlplane.schemas import SafeText

MAX_PRICE = Decimal("1000000")
MAX_BUDGET = Decimal("1000000000")

PriceSek = Annotated[
    Decimal,
    Field(ge=0, le=MAX_PRICE, max_digits=14, decimal_places=4, examples=["12.5000"]),
]
GpuModel = Annotated[SafeText, StringConstraints(min_length=1, max_length=100)]


class PriceListIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    effective_from: date = Field(
        description="First calendar day (SANDLADA_REPORT_TIMEZONE) these prices apply; must be "
        "after today, so prices already used for usage can never change.",
        examples=["2026-12-01"],
    )
    gpu_hour_sek: dict[GpuModel, PriceSek] = Field(
        max_length=100,
        description="SEK per GPU-hour, per GPU model (the nodes' nvidia.com/gpu.product).",
        examples=[{"NVIDIA-A100-SXM4-80GB": "45.00", "NVIDIA-L4": "12.00"}],
    )
    cpu_core_hour_sek: PriceSek = Field(description="SEK per CPU core-hour (requested cores).")
    memory_gib_hour_sek: PriceSek = Field(description="SEK per GiB-hour of requested memory.")
    storage_gib_month_sek: PriceSek = Field(
        description="SEK per GiB-month of volume storage; a month is 30 days."
    )
    note: Annotated[SafeText, StringConstraints(max_length=1000)] | None = None


class PriceListOut(BaseModel):
    id: int
    effective_from: date
    status: Literal["superseded", "in_force", "scheduled"] = Field(
        description="superseded: a later version is in force; in_force: applies today; "
        "scheduled: applies from effective_from (may still be deleted)."
    )
    currency: Literal["SEK"] = "SEK"
    gpu_hour_sek: dict[str, Decimal]
    cpu_core_hour_sek: Decimal
    memory_gib_hour_sek: Decimal
    storage_gib_month_sek: Decimal
    note: str | None
    created_at: datetime
    created_by: str


class CostItems(BaseModel):
    """Quantities used in the month and what each cost (SEK, rounded to öre)."""

    gpu_hours: dict[str, Decimal] = Field(description="GPU-hours per GPU model.")
    gpu_cost_sek: dict[str, Decimal]
    cpu_core_hours: Decimal
    cpu_cost_sek: Decimal
    memory_gib_hours: Decimal
    memory_cost_sek: Decimal
    storage_gib_days: Decimal
    storage_cost_sek: Decimal
    total_sek: Decimal


class TenantCostLine(CostItems):
    tenant: str = Field(description="Tenant slug.")


class AgencyCosts(BaseModel):
    organisation_number: str
    name: str
    tenants: list[TenantCostLine]
    totals: CostItems = Field(description="Sums of the tenant lines above.")


class AppliedPriceList(BaseModel):
    id: int
    effective_from: date
    first_day: date = Field(description="First day of the month priced with this version.")
    last_day: date


class UnpricedUsage(BaseModel):
    """Usage no price list covered: shown in the quantities, priced at 0 SEK."""

    tenant: str
    first_day: date
    last_day: date
    what: str = Field(
        description='"all" (no price list in force) or the GPU model lacking a price.'
    )


class CostReport(BaseModel):
    month: str = Field(examples=["2026-11"])
    currency: Literal["SEK"] = "SEK"
    timezone: str = Field(description="Calendar days and months are in this time zone.")
    generated_at: datetime
    price_lists: list[AppliedPriceList]
    agencies: list[AgencyCosts]
    total_sek: Decimal = Field(description="Sum of the agencies' totals.")
    unpriced: list[UnpricedUsage]


class BudgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    monthly_sek: Decimal = Field(
        gt=0, le=MAX_BUDGET, max_digits=14, decimal_places=2, examples=["25000.00"]
    )
    enforce: bool = Field(
        False, description="Refuse new notebook launches once the month's costs reach 100 %."
    )


class BudgetAlertOut(BaseModel):
    month: str
    threshold_percent: int
    budget_sek: Decimal
    spent_sek: Decimal
    recorded_at: datetime
    delivery_state: Literal["pending", "delivered", "failed", "skipped"]
    attempts: int
    delivered_at: datetime | None
    last_error: str | None


class BudgetOut(BaseModel):
    tenant: str
    monthly_sek: Decimal
    enforce: bool
    month: str = Field(description="The current month (report time zone).")
    spent_sek: Decimal = Field(description="Costs so far this month, as the report prices them.")
    percent_used: Decimal
    launches_refused: bool = Field(description="True when enforce is on and 100 % is reached.")
    alerts: list[BudgetAlertOut] = Field(description="Alerts recorded this month.")
    updated_at: datetime
    updated_by: str
