"""What a pod or a volume claim used, derived from the object alone (pure, no I/O).

A pod's usage is its effective resource requests × the time it ran. The interval starts at
``status.startTime`` (when the kubelet took the pod on) and ends at the latest container
``state.terminated.finishedAt`` once the pod has finished. A pod deleted while running ends at
the time its deletion was requested (``deletionTimestamp − deletionGracePeriodSeconds``; for a
force-deleted pod that is the deletion time itself) unless its final status has every container
terminated. Pods that never started (no ``startTime``) used nothing.

All times come from the object, never from the collector's clock, so metering the same pod twice
(after a restart, or by a re-list) yields the same interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity as _parse_quantity

from tenants.labels import TENANT_LABEL
from tenants.names import NAMESPACE_PREFIX

GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
# Whole GPUs (exclusive or time-sliced); metered under the node's product name.
GPU_RESOURCES = ("nvidia.com/gpu", "nvidia.com/gpu.shared")
# MIG slices are metered as their own "model", e.g. NVIDIA-A100-SXM4-80GB/mig-1g.10gb.
MIG_PREFIX = "nvidia.com/mig-"
UNKNOWN_GPU_MODEL = "unknown"
GIB = Decimal(2**30)

Json = dict[str, Any]


class EndSource:
    FINISHED = "finished"
    DELETED = "deleted"
    LAST_SEEN = "last-seen"


@dataclass(frozen=True)
class Requests:
    """A pod's effective requests: what the scheduler reserved for it."""

    cpu_cores: float
    memory_gib: float
    gpus: int
    gpu_resource: str | None  # the extended resource name, None without GPUs


@dataclass(frozen=True)
class PodInterval:
    uid: str
    namespace: str
    name: str
    node_name: str
    requests: Requests
    started_at: datetime
    ended_at: datetime | None
    end_source: str | None


@dataclass(frozen=True)
class VolumeInterval:
    uid: str
    namespace: str
    name: str
    size_gib: float
    started_at: datetime
    ended_at: datetime | None


def parse_quantity(value: str | int | float) -> Decimal:
    """A Kubernetes quantity ("500m", "3Gi") as a Decimal."""
    return Decimal(_parse_quantity(value))  # type: ignore[no-untyped-call]


def parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp as Kubernetes writes it (``2026-11-29T05:02:24Z``), tz-aware."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def tenant_slug(namespace: str, labels: dict[str, str] | None = None) -> str | None:
    """The tenant a namespaced object belongs to: ``t-<slug>`` namespaces, or the tenant label."""
    if namespace.startswith(NAMESPACE_PREFIX) and len(namespace) > len(NAMESPACE_PREFIX):
        return namespace[len(NAMESPACE_PREFIX) :]
    if labels and labels.get(TENANT_LABEL):
        return labels[TENANT_LABEL]
    return None


def _quantities(containers: list[Json]) -> list[dict[str, Decimal]]:
    result = []
    for container in containers:
        resources = container.get("resources") or {}
        # The apiserver defaults requests to limits; a limit-only spec from elsewhere still counts.
        merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        result.append({key: parse_quantity(value) for key, value in merged.items()})
    return result


def effective_requests(spec: Json) -> Requests:
    """Requests as the scheduler counts them: max(sum of containers, largest init) + overhead."""
    containers = _quantities(spec.get("containers") or [])
    inits = _quantities(spec.get("initContainers") or [])
    overhead = {k: parse_quantity(v) for k, v in (spec.get("overhead") or {}).items()}
    keys = {key for quantities in (*containers, *inits) for key in quantities} | set(overhead)
    totals: dict[str, Decimal] = {}
    for key in keys:
        running = sum((q.get(key, Decimal(0)) for q in containers), Decimal(0))
        largest_init = max((q.get(key, Decimal(0)) for q in inits), default=Decimal(0))
        totals[key] = max(running, largest_init) + overhead.get(key, Decimal(0))
    gpu_resource = next(
        (
            k
            for k in sorted(totals)
            if (k in GPU_RESOURCES or k.startswith(MIG_PREFIX)) and totals[k]
        ),
        None,
    )
    return Requests(
        cpu_cores=float(totals.get("cpu", Decimal(0))),
        memory_gib=float(totals.get("memory", Decimal(0)) / GIB),
        gpus=int(totals[gpu_resource]) if gpu_resource else 0,
        gpu_resource=gpu_resource,
    )


def gpu_model(requests: Requests, node_product: str | None) -> str:
    """The model a pod's GPUs are metered as; "" for a pod without GPUs."""
    if requests.gpu_resource is None:
        return ""
    product = node_product or UNKNOWN_GPU_MODEL
    if requests.gpu_resource.startswith(MIG_PREFIX):
        return f"{product}/{requests.gpu_resource.removeprefix('nvidia.com/')}"
    return product


def _finished_at(status: Json) -> datetime | None:
    """The latest container finish, if every container has terminated."""
    statuses = status.get("containerStatuses") or []
    finishes = []
    for container in statuses:
        terminated = (container.get("state") or {}).get("terminated")
        if not terminated or not terminated.get("finishedAt"):
            return None
        finishes.append(parse_time(terminated["finishedAt"]))
    return max(finishes) if finishes else None


def _deletion_requested_at(metadata: Json) -> datetime | None:
    stamp = metadata.get("deletionTimestamp")
    if not stamp:
        return None
    grace = int(metadata.get("deletionGracePeriodSeconds") or 0)
    return parse_time(stamp) - timedelta(seconds=grace)


def _last_transition(status: Json) -> datetime | None:
    times = [
        parse_time(c["lastTransitionTime"])
        for c in status.get("conditions") or []
        if c.get("lastTransitionTime")
    ]
    return max(times) if times else None


def pod_interval(pod: Json, *, deleted: bool = False) -> PodInterval | None:
    """The interval of ``pod`` (a Pod as JSON); None if it never started.

    ``deleted`` says the object is the last state of a pod that is gone (a watch DELETED event).
    """
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    if not status.get("startTime") or not spec.get("nodeName"):
        return None
    started = parse_time(status["startTime"])
    ended: datetime | None = None
    source: str | None = None
    if status.get("phase") in ("Succeeded", "Failed"):
        # Evicted pods have no container finish; their last condition change is when they stopped.
        ended = _finished_at(status) or _last_transition(status) or _deletion_requested_at(metadata)
        source = EndSource.FINISHED
        if ended is None and deleted:
            return None  # a finished pod with no time at all; nothing honest to record
    elif deleted:
        ended = _finished_at(status)
        source = EndSource.FINISHED
        if ended is None:
            ended = _deletion_requested_at(metadata)
            source = EndSource.DELETED
        if ended is None:
            return None
    if ended is not None and ended < started:
        ended = started
    return PodInterval(
        uid=metadata["uid"],
        namespace=metadata["namespace"],
        name=metadata["name"],
        node_name=spec["nodeName"],
        requests=effective_requests(spec),
        started_at=started,
        ended_at=ended,
        end_source=source if ended is not None else None,
    )


def volume_interval(pvc: Json, *, deleted: bool = False) -> VolumeInterval:
    """The interval of a PersistentVolumeClaim: from creation to its deletion request.

    The size is the bound capacity, or the requested size while unbound.
    """
    metadata = pvc.get("metadata") or {}
    spec = pvc.get("spec") or {}
    status = pvc.get("status") or {}
    size = (status.get("capacity") or {}).get("storage") or (
        (spec.get("resources") or {}).get("requests") or {}
    ).get("storage", "0")
    started = parse_time(metadata["creationTimestamp"])
    ended = _deletion_requested_at(metadata) if deleted else None
    if deleted and ended is None:
        ended = started
    return VolumeInterval(
        uid=metadata["uid"],
        namespace=metadata["namespace"],
        name=metadata["name"],
        size_gib=float(parse_quantity(size) / GIB),
        started_at=started,
        ended_at=max(ended, started) if ended is not None else None,
    )
