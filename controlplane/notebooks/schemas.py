"""API shapes of the notebooks endpoints (JSON names are the issue's public contract)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from controlplane.notebooks.messages import text
from tenants.notebook import NAME_MAX_LENGTH, NotebookPhase, StopReason, is_valid_notebook_name


class ProfileOut(BaseModel):
    """A notebook profile from the catalogue."""

    slug: str = Field(examples=["gpu-a100"])
    display_name: dict[str, str] = Field(description='{"sv", "en"}')
    description: dict[str, str] = Field(description='{"sv", "en"}')
    image: str
    gpus: int
    gpu_model: str | None = Field(examples=["NVIDIA-A100-SXM4-80GB"])
    gpu_resource: str = Field(examples=["nvidia.com/gpu"])
    cpu: float
    memory_gib: float
    storage_gib: int
    allowed_tiers: list[str]
    allowed_groups: list[str]


class NotebookIn(BaseModel):
    """What to launch: a name of your choosing and a profile slug."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=NAME_MAX_LENGTH,
        description="DNS label: a-z, 0-9 and '-', starting with a letter.",
        examples=["analys"],
    )
    profile: str = Field(min_length=1, max_length=40, examples=["cpu-small"])

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not is_valid_notebook_name(value):
            raise ValueError(text("notebooks.bad_name", name=value, max=NAME_MAX_LENGTH))
        return value


class NotebookOut(BaseModel):
    """A notebook server and where it is."""

    name: str = Field(examples=["analys"])
    tenant: str = Field(examples=["kiruna-ai-pilot"])
    namespace: str = Field(examples=["t-kiruna-ai-pilot"])
    profile: str = Field(examples=["cpu-small"])
    phase: NotebookPhase = Field(description="Pending, Running, Stopped or Failed.")
    url: str | None = Field(None, description="Where the owner opens it (once Running).")
    owner: str = Field(description="OIDC subject of the person who launched it.")
    owner_name: str
    started_at: datetime | None = None
    last_activity: datetime | None = Field(
        None, description="Last use seen by the idle culler (from Jupyter)."
    )
    stop_reason: StopReason | None = Field(None, description="idle, max-age or user.")
    stopped_at: datetime | None = None
    message: str | None = None
    created_at: datetime | None = None
    gpus: int
    gpu_model: str | None
    gpu_resource: str
    cpu: float
    memory_gib: float
    storage_gib: int
    idle_timeout_seconds: int
    max_age_seconds: int
