"""The quota vocabulary shared by sandbox requests, tenants and the Tenant custom resource."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Upper bounds are sanity limits that turn absurd input into a clear 422, not policy.
MAX_GPUS = 64
MAX_CPU = 1024
MAX_MEMORY_GIB = 8192
MAX_STORAGE_GIB = 100_000


class Quota(BaseModel):
    """Resources requested for, or granted to, a sandbox.

    JSON names are a public contract: ``gpus``, ``gpu_model``, ``cpu``, ``memory_gib``,
    ``storage_gib``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpus: int = Field(0, ge=0, le=MAX_GPUS, description="Number of GPUs.")
    gpu_model: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="GPU model as advertised by the nodes (nvidia.com/gpu.product); "
        "required when gpus > 0.",
    )
    cpu: int = Field(..., ge=1, le=MAX_CPU, description="CPU cores.")
    memory_gib: int = Field(..., ge=1, le=MAX_MEMORY_GIB, description="Memory in GiB.")
    storage_gib: int = Field(..., ge=1, le=MAX_STORAGE_GIB, description="Storage in GiB.")

    @model_validator(mode="after")
    def _gpu_model_with_gpus(self) -> Self:
        if self.gpus > 0 and not self.gpu_model:
            raise ValueError("gpu_model is required when gpus is greater than 0")
        return self
