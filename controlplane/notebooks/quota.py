"""Quota accounting for notebook launches: what a tenant uses, and whether one more fits.

Pure: the storage module turns the cluster's pods, Notebooks and PersistentVolumeClaims into
`Requests`, this module adds them up and compares with the grant. What counts is what the
apiserver's ResourceQuota would count, plus what is promised but not created yet:
- every pod that is not finished (``Succeeded``/``Failed``) with its effective requests
  (the larger of the sum of its containers and its largest init container);
- every Notebook that is not stopped and has no live pod yet, with its spec's resources (the
  operator is about to create that pod);
- every PersistentVolumeClaim (stopped notebooks keep their home volume, and it counts), plus
  the home volume of every running Notebook whose claim does not exist yet.

The ResourceQuota in the namespace stays the final guard; this check is what lets the API say
*why* in words before anything is created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from controlplane.errors import ConflictError
from controlplane.messages import message
from tenants.notebook import home_claim_name

GIB = Decimal(2**30)
GPU_RESOURCE = "nvidia.com/gpu"


class QuotaExceededError(ConflictError):
    """Launching would take the tenant past its granted quota (409, names what is in use)."""

    code = "quota_exceeded"


@dataclass(frozen=True)
class Requests:
    """Resources requested: CPU cores, memory and storage in GiB, extended resources by name."""

    cpu: Decimal = Decimal(0)
    memory_gib: Decimal = Decimal(0)
    storage_gib: Decimal = Decimal(0)
    extended: dict[str, Decimal] = field(default_factory=dict)

    def __add__(self, other: Requests) -> Requests:
        extended = dict(self.extended)
        for name, amount in other.extended.items():
            extended[name] = extended.get(name, Decimal(0)) + amount
        return Requests(
            self.cpu + other.cpu,
            self.memory_gib + other.memory_gib,
            self.storage_gib + other.storage_gib,
            extended,
        )

    def gpus(self, resource: str) -> Decimal:
        return self.extended.get(resource, Decimal(0))


@dataclass(frozen=True)
class PodUse:
    """A pod as quota sees it: its requests, whether it still runs, whose notebook it is."""

    requests: Requests
    finished: bool
    notebook: str | None


@dataclass(frozen=True)
class NotebookUse:
    name: str
    stopped: bool
    requests: Requests  # cpu, memory and GPUs of its pod; storage = its home volume


@dataclass(frozen=True)
class Grant:
    """What the tenant was granted: CPU cores, GiB, and GPUs per extended resource."""

    cpu: Decimal
    memory_gib: Decimal
    storage_gib: Decimal
    gpus: dict[str, Decimal]
    gpu_model: str | None


def effective_pod_requests(containers: list[Requests], init_containers: list[Requests]) -> Requests:
    """A pod's requests as the scheduler and quota count them."""
    total = Requests()
    for container in containers:
        total += container
    names = set(total.extended) | {n for c in init_containers for n in c.extended}
    return Requests(
        cpu=max([total.cpu, *(c.cpu for c in init_containers)]),
        memory_gib=max([total.memory_gib, *(c.memory_gib for c in init_containers)]),
        extended={
            name: max([total.gpus(name), *(c.gpus(name) for c in init_containers)])
            for name in names
        },
    )


def in_use(
    pods: list[PodUse], notebooks: list[NotebookUse], claims_gib: dict[str, Decimal]
) -> Requests:
    """Everything the tenant's namespace uses or is about to use (see the module docstring)."""
    live = [pod for pod in pods if not pod.finished]
    with_pod = {pod.notebook for pod in live if pod.notebook}
    total = Requests(storage_gib=sum(claims_gib.values(), Decimal(0)))
    for pod in live:
        total += Requests(pod.requests.cpu, pod.requests.memory_gib, extended=pod.requests.extended)
    for notebook in notebooks:
        if notebook.stopped:
            continue
        if notebook.name not in with_pod:
            total += Requests(
                notebook.requests.cpu,
                notebook.requests.memory_gib,
                extended=notebook.requests.extended,
            )
        if home_claim_name(notebook.name) not in claims_gib:
            total += Requests(storage_gib=notebook.requests.storage_gib)
    return total


def _number(value: Decimal) -> str:
    """2, 1.5, 0.25: no trailing zeros, no exponent."""
    normalized = value.normalize()
    return format(normalized, "f") if normalized == normalized.to_integral() else str(normalized)


def _model_name(model: str | None) -> str:
    # The node label (NVIDIA-A100-SXM4-80GB) reads better with spaces in a sentence.
    return model.replace("-", " ") if model else "GPU"


def check(grant: Grant, used: Requests, need: Requests, *, profile: str) -> None:
    """Raise `QuotaExceededError` naming the first resource that would not fit."""
    for resource, amount in sorted(need.extended.items()):
        if amount <= 0:
            continue
        granted = grant.gpus.get(resource, Decimal(0))
        if used.gpus(resource) + amount > granted:
            model = _model_name(grant.gpu_model)
            if resource != GPU_RESOURCE:
                model = f"{model} ({resource})"
            raise QuotaExceededError(
                message(
                    "notebooks.quota_gpu",
                    used=_number(used.gpus(resource)),
                    granted=_number(granted),
                    model=model,
                    profile=profile,
                    need=_number(amount),
                )
            )
    checks = (
        ("notebooks.quota_cpu", used.cpu, grant.cpu, need.cpu),
        ("notebooks.quota_memory", used.memory_gib, grant.memory_gib, need.memory_gib),
        ("notebooks.quota_storage", used.storage_gib, grant.storage_gib, need.storage_gib),
    )
    for key, used_amount, granted, wanted in checks:
        if wanted > 0 and used_amount + wanted > granted:
            raise QuotaExceededError(
                message(
                    key,
                    used=_number(used_amount),
                    granted=_number(granted),
                    profile=profile,
                    need=_number(wanted),
                )
            )
