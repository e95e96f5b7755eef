"""The notebook profiles catalogue: what a data scientist can launch, as data.

A `Profile` is one kind of notebook server (image, CPU, memory, GPUs and their model or a
MIG/shared-GPU resource, home storage), with the data classifications (tenant tiers) and
identity groups allowed to use it. `Catalog` holds the profiles and the defaults every notebook
gets (idle timeout, maximum age). The packaged `profiles.yaml` is the platform's catalogue;
`load_catalog(path)` reads another file with the same shape (an operator's own list).

Pure and I/O-free apart from reading the file: the control plane lists and checks profiles
with it, `tenants.notebook.notebook_body` copies a profile into a Notebook's spec, and the
notebook operator never needs it (the spec carries everything).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tenants.names import is_valid_slug

CATALOG_PATH = Path(__file__).parent / "profiles.yaml"
GPU_RESOURCE = "nvidia.com/gpu"
LANGUAGES = ("sv", "en")
# The data classifications a tenant can have (tenants.resource.DataClassification values).
TIERS = ("public", "internal", "confidential")


def _both_languages(value: dict[str, str], field: str) -> dict[str, str]:
    missing = [lang for lang in LANGUAGES if not value.get(lang, "").strip()]
    if missing:
        raise ValueError(f"{field} needs text in {', '.join(missing)}")
    return value


class Profile(BaseModel):
    """One kind of notebook server a tenant member can launch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: str = Field(..., min_length=1, max_length=40, description="Stable id, DNS-1123 label.")
    display_name: dict[str, str] = Field(..., description='Name per language: {"sv", "en"}.')
    description: dict[str, str] = Field(..., description='Description per language: {"sv", "en"}.')
    image: str = Field(..., min_length=1, max_length=500, description="Jupyter container image.")
    cpu: float = Field(..., ge=0.01, le=256, description="CPU cores (request = limit).")
    memory_gib: float = Field(
        ..., ge=0.0625, le=4096, description="Memory in GiB (request = limit)."
    )
    gpus: int = Field(0, ge=0, le=16, description="Number of GPU devices (of gpu_resource).")
    gpu_model: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Value of the node label nvidia.com/gpu.product, e.g. NVIDIA-L4.",
    )
    gpu_resource: str = Field(
        GPU_RESOURCE,
        pattern=r"^nvidia\.com/(gpu|gpu\.shared|mig-[1-7]g\.[0-9]+gb)$",
        description="Extended resource: nvidia.com/gpu, nvidia.com/gpu.shared or a MIG key.",
    )
    storage_gib: int = Field(..., ge=1, le=10_000, description="Home volume size in GiB.")
    allowed_tiers: list[str] = Field(
        default_factory=lambda: list(TIERS),
        description="Data classifications of the tenants that may use the profile.",
    )
    allowed_groups: list[str] = Field(
        default_factory=list,
        description="Identity groups allowed to use it; empty = every tenant member.",
    )

    @field_validator("slug")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not is_valid_slug(value):
            raise ValueError(f"profile slug {value!r} is not a DNS-1123 label")
        return value

    @field_validator("display_name")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        return _both_languages(value, "display_name")

    @field_validator("description")
    @classmethod
    def _descriptions(cls, value: dict[str, str]) -> dict[str, str]:
        return _both_languages(value, "description")

    @field_validator("allowed_tiers")
    @classmethod
    def _known_tiers(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(TIERS))
        if unknown:
            raise ValueError(f"unknown tiers {unknown}; known: {list(TIERS)}")
        return value

    @model_validator(mode="after")
    def _gpu_model_with_gpus(self) -> Self:
        if self.gpus > 0 and not self.gpu_model:
            raise ValueError(f"profile {self.slug}: gpu_model is required when gpus > 0")
        if self.gpus == 0 and self.gpu_model:
            raise ValueError(f"profile {self.slug}: gpu_model given without gpus")
        return self

    def allows(self, tier: str, groups: set[str] | frozenset[str] = frozenset()) -> bool:
        """Whether a tenant of data classification ``tier``, caller in ``groups``, may use it."""
        if tier not in self.allowed_tiers:
            return False
        return not self.allowed_groups or bool(set(self.allowed_groups) & set(groups))


class NotebookDefaults(BaseModel):
    """What every notebook gets unless its tenant says otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idle_timeout_seconds: int = Field(
        ..., ge=60, le=30 * 86_400, description="Stop after this long without activity."
    )
    max_age_seconds: int = Field(
        ..., ge=60, le=90 * 86_400, description="Stop this long after start, active or not."
    )


class Catalog(BaseModel):
    """The notebook profiles on offer and the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profiles: list[Profile] = Field(..., min_length=1)
    defaults: NotebookDefaults

    @field_validator("profiles")
    @classmethod
    def _unique_slugs(cls, value: list[Profile]) -> list[Profile]:
        slugs = [profile.slug for profile in value]
        duplicates = sorted({slug for slug in slugs if slugs.count(slug) > 1})
        if duplicates:
            raise ValueError(f"duplicate profile slugs: {duplicates}")
        return value

    def get(self, slug: str) -> Profile | None:
        """The profile called ``slug``, or None."""
        return next((profile for profile in self.profiles if profile.slug == slug), None)


@cache
def _packaged() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8")))


def load_catalog(path: Path | None = None) -> Catalog:
    """The catalogue in ``path`` (YAML), or the packaged one (read once, then cached)."""
    if path is None:
        return _packaged()
    return Catalog.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


__all__ = [
    "CATALOG_PATH",
    "GPU_RESOURCE",
    "TIERS",
    "Catalog",
    "NotebookDefaults",
    "Profile",
    "load_catalog",
]
