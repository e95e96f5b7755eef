"""The ``Notebook`` custom resource (``notebooks.sandlada.se/v1alpha1``) as pydantic models.

A Notebook is one Jupyter server of one tenant member, in the tenant's namespace. Its spec is
self-contained: `notebook_body` copies the chosen catalogue `Profile` (image, CPU, memory, GPUs,
storage) and the idle/age limits into it, so the operator needs no catalogue and a later change
of the catalogue does not change running notebooks. The status is written by the notebook
operator (phase, URLs, start time, conditions) and by the idle culler (stop reason, last
activity).

The CRD is generated from these models (`notebook_crd`) and committed at `CRD_PATH`; regenerate
with ``python -m tenants.notebook``. The names of a notebook's children are here too, because
the control plane, the culler and the operator all need them.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal, Self

import yaml
from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from tenants.catalog import GPU_RESOURCE, NotebookDefaults, Profile
from tenants.crd import openapi_schema
from tenants.labels import MANAGED_BY, MANAGED_BY_LABEL, standard_labels
from tenants.names import NAMESPACE_PREFIX
from tenants.resource import GROUP, VERSION, CamelModel, Condition

API_VERSION: Final = "sandlada.se/v1alpha1"
KIND: Final = "Notebook"
PLURAL = "notebooks"
SINGULAR = "notebook"
CRD_NAME = f"{PLURAL}.{GROUP}"
CRD_PATH = Path(__file__).parent / "crds" / f"{CRD_NAME}.yaml"

NOTEBOOK_LABEL = "sandlada.se/notebook"
OWNER_ANNOTATION = "sandlada.se/owner"
JUPYTER_PORT = 8888
# Children are named "nb-<name>", "nb-<name>-token" and "home-<name>"; 40 characters keep every
# one a valid DNS label and leave room for a StatefulSet-style suffix should one be needed.
NAME_MAX_LENGTH = 40
_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


class NotebookPhase(StrEnum):
    """Where a notebook is: one word for people and the printer column."""

    PENDING = "Pending"
    RUNNING = "Running"
    STOPPED = "Stopped"
    FAILED = "Failed"


class StopReason(StrEnum):
    """Why a notebook was stopped (written by the culler or the API)."""

    IDLE = "idle"
    MAX_AGE = "max-age"
    USER = "user"


class NotebookSpec(CamelModel):
    """What the member asked for: a profile's resources, frozen at launch, and who owns it."""

    # Merged with CamelModel's configuration (camelCase aliases, extra="forbid").
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.gpus == 0 || has(self.gpuModel)",
                    "message": "gpuModel is required when gpus is greater than 0",
                }
            ]
        },
    )

    profile: str = Field(..., min_length=1, max_length=40, description="Catalogue profile slug.")
    owner: str = Field(..., min_length=1, max_length=255, description="OIDC subject of the owner.")
    owner_name: str = Field("", max_length=255, description="The owner's display name.")
    image: str = Field(..., min_length=1, max_length=500, description="Jupyter container image.")
    cpu: float = Field(..., ge=0.01, le=256, description="CPU cores (request = limit).")
    memory_gib: float = Field(
        ..., ge=0.0625, le=4096, description="Memory in GiB (request = limit)."
    )
    gpus: int = Field(0, ge=0, le=16, description="GPU devices of gpuResource.")
    gpu_model: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Node label nvidia.com/gpu.product the pod must run on.",
    )
    gpu_resource: str = Field(
        GPU_RESOURCE,
        pattern=r"^nvidia\.com/(gpu|gpu\.shared|mig-[1-7]g\.[0-9]+gb)$",
        description="Extended resource of the GPUs (nvidia.com/gpu, gpu.shared, mig-…).",
    )
    storage_gib: int = Field(..., ge=1, le=10_000, description="Home volume size in GiB.")
    idle_timeout_seconds: int = Field(
        ..., ge=60, le=30 * 86_400, description="Stopped after this long without activity."
    )
    max_age_seconds: int = Field(
        ..., ge=60, le=90 * 86_400, description="Stopped this long after it started."
    )
    stopped: bool = Field(False, description="True: no pod; the home volume is kept.")

    @model_validator(mode="after")
    def _gpu_model_with_gpus(self) -> Self:
        if self.gpus > 0 and not self.gpu_model:
            raise ValueError("gpuModel is required when gpus is greater than 0")
        return self


class NotebookStatus(CamelModel):
    """What the operator observed; the culler adds stop reason and last activity."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    phase: NotebookPhase | None = None
    url: str | None = Field(None, description="Where the owner opens the notebook.")
    internal_url: str | None = Field(
        None, description="In-cluster Jupyter base URL (ends with /; append api/status)."
    )
    started_at: datetime | None = Field(None, description="When the Jupyter container started.")
    last_activity: datetime | None = Field(None, description="Jupyter's last_activity.")
    stop_reason: StopReason | None = None
    stopped_at: datetime | None = None
    message: str | None = Field(None, max_length=32768, description="What is going on, or wrong.")
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    observed_generation: int | None = Field(None, ge=0)


class Notebook(CamelModel):
    """A whole Notebook object as read from the apiserver (metadata kept as a mapping)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    api_version: Literal["sandlada.se/v1alpha1"] = API_VERSION
    kind: Literal["Notebook"] = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: NotebookSpec
    status: NotebookStatus = Field(default_factory=NotebookStatus)

    @field_validator("metadata")
    @classmethod
    def _valid_name(cls, value: dict[str, Any]) -> dict[str, Any]:
        name = value.get("name")
        if name is not None and not is_valid_notebook_name(str(name)):
            raise ValueError(
                f"notebook name {name!r} must be a DNS label starting with a letter, "
                f"at most {NAME_MAX_LENGTH} characters"
            )
        return value


def is_valid_notebook_name(name: str) -> bool:
    """Whether ``name`` can name a Notebook (and so its ``nb-``/``home-`` children)."""
    return len(name) <= NAME_MAX_LENGTH and re.match(_NAME_PATTERN, name) is not None


def service_name(name: str) -> str:
    """The Service (and pod) of notebook ``name``."""
    return f"nb-{name}"


def token_secret_name(name: str) -> str:
    """The Secret holding the Jupyter token (key ``token``)."""
    return f"nb-{name}-token"


def home_claim_name(name: str) -> str:
    """The home PersistentVolumeClaim; it has no owner reference and outlives the notebook."""
    return f"home-{name}"


def base_path(namespace: str, name: str) -> str:
    """Jupyter's base URL path, the same behind the platform proxy and inside the cluster."""
    return f"/notebooks/{namespace}/{name}/"


def internal_url(namespace: str, name: str) -> str:
    """The in-cluster Jupyter base URL, e.g. ``http://nb-x.t-y.svc:8888/notebooks/t-y/x/``."""
    return f"http://{service_name(name)}.{namespace}.svc:{JUPYTER_PORT}{base_path(namespace, name)}"


def tenant_of(namespace: str) -> str:
    """The tenant slug of a tenant namespace ``t-<slug>``."""
    if not namespace.startswith(NAMESPACE_PREFIX):
        raise ValueError(f"{namespace!r} is not a tenant namespace")
    return namespace.removeprefix(NAMESPACE_PREFIX)


def notebook_spec(
    profile: Profile, owner: str, owner_name: str, defaults: NotebookDefaults
) -> NotebookSpec:
    """The spec of a notebook launched from ``profile`` by ``owner``."""
    return NotebookSpec(
        profile=profile.slug,
        owner=owner,
        owner_name=owner_name,
        image=profile.image,
        cpu=profile.cpu,
        memory_gib=profile.memory_gib,
        gpus=profile.gpus,
        gpu_model=profile.gpu_model,
        gpu_resource=profile.gpu_resource,
        storage_gib=profile.storage_gib,
        idle_timeout_seconds=defaults.idle_timeout_seconds,
        max_age_seconds=defaults.max_age_seconds,
    )


def notebook_body(  # noqa: PLR0917  (positional order is the cross-team contract)
    namespace: str,
    name: str,
    profile: Profile,
    owner: str,
    owner_name: str,
    defaults: NotebookDefaults,
) -> dict[str, Any]:
    """The Notebook to create in tenant namespace ``namespace`` (standard labels, owner)."""
    if not is_valid_notebook_name(name):
        raise ValueError(
            f"notebook name {name!r} must be a DNS label starting with a letter, "
            f"at most {NAME_MAX_LENGTH} characters"
        )
    spec = notebook_spec(profile, owner, owner_name, defaults)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**standard_labels(tenant_of(namespace)), NOTEBOOK_LABEL: name},
        },
        "spec": spec.model_dump(mode="json", exclude_none=True),
    }


def notebook_crd() -> dict[str, Any]:
    """The CustomResourceDefinition of ``Notebook`` (namespaced, status subresource)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": ["nb"],
                "categories": ["sandlada"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Profile", "type": "string", "jsonPath": ".spec.profile"},
                        {
                            "name": "Owner",
                            "type": "string",
                            "priority": 1,
                            "jsonPath": ".spec.ownerName",
                        },
                        {
                            "name": "Age",
                            "type": "date",
                            "jsonPath": ".metadata.creationTimestamp",
                        },
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A tenant member's Jupyter notebook server.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": openapi_schema(NotebookSpec),
                                "status": openapi_schema(NotebookStatus),
                            },
                            "x-kubernetes-validations": [
                                {
                                    "rule": f"self.metadata.name.size() <= {NAME_MAX_LENGTH} "
                                    f"&& self.metadata.name.matches('{_NAME_PATTERN}')",
                                    "message": "metadata.name must be a DNS label starting "
                                    f"with a letter, at most {NAME_MAX_LENGTH} characters",
                                }
                            ],
                        }
                    },
                }
            ],
        },
    }


def render_crd() -> str:
    """`notebook_crd` as the YAML committed at `CRD_PATH`."""
    header = "# Generated by `python -m tenants.notebook` from tenants/notebook.py; do not edit.\n"
    return header + yaml.safe_dump(notebook_crd(), sort_keys=False, width=100, allow_unicode=True)


if __name__ == "__main__":
    CRD_PATH.write_text(render_crd())
