"""API shapes of metered usage."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field


class UsageAmounts(BaseModel):
    gpu_hours: dict[str, float] = Field(
        description="GPU-hours per GPU model (node label nvidia.com/gpu.product).",
        examples=[{"NVIDIA-L4": 3.5}],
    )
    cpu_core_hours: float
    memory_gib_hours: float
    storage_gib_days: float


class UsageDay(UsageAmounts):
    day: date = Field(description="Calendar day in the report time zone.")


class UsageSeriesOut(BaseModel):
    """Per-day usage of one tenant, every day of the range present (zeros included)."""

    tenant: str
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    step: Literal["day"]
    timezone: str = Field(examples=["Europe/Stockholm"])
    days: list[UsageDay]
    total: UsageAmounts

    model_config = {"populate_by_name": True}
