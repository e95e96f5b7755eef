"""The ``Tenant`` custom resource (``tenants.sandlada.se/v1alpha1``) as pydantic models.

These models are the one source of the resource: the control plane builds Tenant bodies with
them, the operator parses bodies into them, and the CRD's OpenAPI schema is generated from them
(`tenants.crd`). Field names on the wire are camelCase as Kubernetes API conventions ask; Python
code uses the snake_case attribute names.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from stdnum.exceptions import ValidationError as OrgnrError
from stdnum.se import orgnr

from tenants.labels import standard_labels
from tenants.names import SLUG_MAX_LENGTH, is_valid_slug
from tenants.quota import MAX_GPUS, Quota

GROUP = "sandlada.se"
VERSION = "v1alpha1"
API_VERSION: Final = "sandlada.se/v1alpha1"
KIND: Final = "Tenant"
PLURAL = "tenants"
SINGULAR = "tenant"

# The MIG profiles of the GPU models the platform offers (A100 40 GB, A100/H100 80 GB). Every
# one gets a quota key, 0 unless granted: a quota without a key for an extended resource puts no
# limit on it, so a profile left out would be free for the taking.
MIG_PROFILES = (
    "1g.5gb",
    "2g.10gb",
    "3g.20gb",
    "4g.20gb",
    "7g.40gb",
    "1g.10gb",
    "1g.20gb",
    "2g.20gb",
    "3g.40gb",
    "4g.40gb",
    "7g.80gb",
)
MAX_SHARED_GPUS = 4 * MAX_GPUS
_MIG_PROFILE = re.compile(r"^[1-7]g\.[0-9]+gb$")


class CamelModel(BaseModel):
    """Accepts and emits camelCase (the wire format) and snake_case (Python keywords)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class DataClassification(StrEnum):
    """The agency's own information classification of the data the sandbox will hold.

    Levels follow the usual Swedish public-sector scheme (MSB) in words; material covered by
    the Protective Security Act does not belong on a shared platform and has no level here.
    """

    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"


class SharedService(StrEnum):
    """Platform services a tenant may be allowed to reach from its namespace."""

    MLFLOW = "mlflow"


class Phase(StrEnum):
    """The phase of a Tenant: one word for people and the printer column."""

    PROVISIONING = "Provisioning"
    READY = "Ready"
    SUSPENDED = "Suspended"
    DELETING = "Deleting"
    FAILED = "Failed"


class Agency(CamelModel):
    """The public-sector body that owns the sandbox."""

    name: str = Field(..., min_length=1, max_length=200, description="Agency name.")
    organisation_number: str = Field(
        ...,
        pattern=r"^[0-9]{6}-?[0-9]{4}$",
        description="Swedish organisation number, NNNNNN-NNNN.",
    )

    @field_validator("organisation_number")
    @classmethod
    def _valid_orgnr(cls, value: str) -> str:
        # The CRD pattern catches the shape; only the check digit needs code.
        try:
            return str(orgnr.format(orgnr.validate(value)))
        except OrgnrError as exc:
            raise ValueError(f"not a valid Swedish organisation number: {value}") from exc


class TenantQuota(Quota):
    """The granted quota: the shared `Quota` plus keys only the cluster cares about."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.gpus == 0 || has(self.gpuModel)",
                    "message": "gpuModel is required when gpus is greater than 0",
                }
            ]
        },
    )

    mig: dict[str, int] = Field(
        default_factory=dict,
        max_length=len(MIG_PROFILES),
        description="MIG instances per profile, e.g. {'1g.10gb': 2} "
        "(resource nvidia.com/mig-<profile>).",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.all(k, k in " + str(list(MIG_PROFILES)) + ")",
                    "message": "unknown MIG profile",
                },
                {"rule": "self.all(k, self[k] >= 0)", "message": "counts must be >= 0"},
            ]
        },
    )
    shared_gpus: int = Field(
        0,
        ge=0,
        le=MAX_SHARED_GPUS,
        description="Time-sliced GPU replicas (resource nvidia.com/gpu.shared).",
    )
    ephemeral_storage_gib: int = Field(
        20, ge=1, le=10_000, description="Node-local scratch space in GiB."
    )

    @field_validator("mig")
    @classmethod
    def _known_profiles(cls, value: dict[str, int]) -> dict[str, int]:
        for profile, count in value.items():
            if profile not in MIG_PROFILES or not _MIG_PROFILE.match(profile):
                raise ValueError(f"unknown MIG profile {profile!r}; known: {MIG_PROFILES}")
            if count < 0:
                raise ValueError(f"MIG profile {profile!r}: count must be >= 0")
        return value

    @classmethod
    def from_quota(cls, quota: Quota, **extra: Any) -> TenantQuota:
        """The tenant quota for a granted `Quota`, with optional MIG/shared/ephemeral keys."""
        return cls.model_validate({**quota.model_dump(), **extra})


class TenantSpec(CamelModel):
    """What the platform granted: the desired state of a tenant."""

    slug: str = Field(
        ...,
        min_length=1,
        max_length=SLUG_MAX_LENGTH,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="DNS-1123 label; the namespace is t-<slug>. Equals metadata.name.",
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}]
        },
    )
    agency: Agency
    quota: TenantQuota
    data_classification: DataClassification = Field(
        ..., description="Classification of the data the tenant will hold."
    )
    expires_at: datetime | None = Field(
        None, description="When the sandbox ends; the control plane acts on it."
    )
    suspended: bool = Field(
        False, description="No new pods; running pods are stopped; data is kept."
    )
    shared_services: list[SharedService] = Field(
        default_factory=list,
        max_length=len(SharedService),
        description="Platform services the tenant's pods may reach.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )

    @field_validator("slug")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not is_valid_slug(value):
            raise ValueError(f"not a DNS-1123 label of at most {SLUG_MAX_LENGTH} chars")
        return value

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expiresAt needs a time zone")
        return value


class Condition(CamelModel):
    """A Kubernetes-style status condition (as metav1.Condition)."""

    type: str = Field(..., min_length=1, max_length=316)
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(..., min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_]*)$")
    message: str = Field("", max_length=32768)
    last_transition_time: datetime
    observed_generation: int | None = Field(None, ge=0)


class TenantStatus(CamelModel):
    """What the operator observed and did; written only by the operator."""

    model_config = ConfigDict(extra="ignore")

    phase: Phase | None = None
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    observed_generation: int | None = Field(None, ge=0)
    namespace: str | None = Field(None, description="The tenant's namespace.")
    gpus_used: int | None = Field(None, ge=0, description="GPUs requested by running pods.")
    provisioned_at: datetime | None = Field(None, description="When the tenant first got Ready.")


class Tenant(CamelModel):
    """A whole Tenant object as read from the apiserver (metadata kept as a plain mapping)."""

    model_config = ConfigDict(extra="ignore")

    api_version: Literal["sandlada.se/v1alpha1"] = API_VERSION
    kind: Literal["Tenant"] = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: TenantSpec
    status: TenantStatus = Field(default_factory=TenantStatus)

    @model_validator(mode="after")
    def _name_is_slug(self) -> Self:
        name = self.metadata.get("name")
        if name is not None and name != self.spec.slug:
            raise ValueError(f"metadata.name {name!r} must equal spec.slug {self.spec.slug!r}")
        return self


def tenant_body(spec: TenantSpec, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The body to create (or server-side apply) for ``spec``: name = slug, standard labels."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": spec.slug,
            "labels": {**standard_labels(spec.slug), **(labels or {})},
        },
        "spec": spec.model_dump(mode="json", exclude_none=True),
    }
