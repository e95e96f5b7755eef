"""API shapes of the capacity ledger."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_TOTAL_GPUS = 100_000


class CapacityOut(BaseModel):
    gpu_model: str = Field(examples=["NVIDIA-A100-SXM4-80GB"])
    total: int = Field(description="GPUs of this model the cluster offers.")
    granted: int = Field(description="GPUs granted to tenants that still exist.")
    free: int = Field(
        description="GPUs that approvals may still grant (total × overcommit − granted)."
    )
    admin_override: bool = Field(
        True,
        description="True: an admin set the total and the node sync leaves it; false: the "
        "total follows the cluster's nodes.",
    )


class CapacityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    total: int = Field(
        ge=0, le=MAX_TOTAL_GPUS, description="GPUs of this model the cluster offers."
    )
