"""Capacity rules: list, set, and reserve GPUs for an approval without oversubscribing."""

from __future__ import annotations

import math

from sqlalchemy.orm import Session

from controlplane.audit.service import Actor, record
from controlplane.capacity.repository import CapacityRepository
from controlplane.capacity.schemas import CapacityOut
from controlplane.errors import (
    CapacityExceededError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from controlplane.messages import message
from controlplane.models import GpuCapacity
from controlplane.schemas import clean_text_problem


def _limit(total: int, overcommit: float) -> int:
    return math.floor(total * overcommit)


def _out(capacity: GpuCapacity, granted: int, overcommit: float) -> CapacityOut:
    return CapacityOut(
        gpu_model=capacity.gpu_model,
        total=capacity.total,
        granted=granted,
        free=max(0, _limit(capacity.total, overcommit) - granted),
        admin_override=capacity.admin_override,
    )


def list_capacity(session: Session, overcommit: float) -> list[CapacityOut]:
    repository = CapacityRepository(session)
    granted = repository.granted_by_model()
    return [_out(c, granted.get(c.gpu_model, 0), overcommit) for c in repository.list()]


def get_capacity(session: Session, gpu_model: str, overcommit: float) -> CapacityOut:
    repository = CapacityRepository(session)
    capacity = repository.get(gpu_model)
    if capacity is None:
        raise NotFoundError(message("capacity.not_found", gpu_model=gpu_model))
    return _out(capacity, repository.granted(gpu_model), overcommit)


def known_models(session: Session) -> list[str]:
    return [c.gpu_model for c in CapacityRepository(session).list()]


def require_known_model(session: Session, field: str, gpu_model: str) -> None:
    """422 naming ``field`` unless ``gpu_model`` is registered."""
    if clean_text_problem(gpu_model) is None and CapacityRepository(session).get(gpu_model):
        return
    models = ", ".join(known_models(session)) or message("capacity.none_registered")
    raise InvalidInputError(
        field, message("capacity.unknown_model", gpu_model=gpu_model, models=models)
    )


def set_capacity(
    session: Session, actor: Actor, gpu_model: str, total: int, overcommit: float
) -> CapacityOut:
    """Register or change how many GPUs of a model the cluster offers."""
    repository = CapacityRepository(session)
    capacity = repository.get_for_update(gpu_model)
    granted = repository.granted(gpu_model)
    if total < 0:
        raise InvalidInputError("total", message("capacity.negative"))
    if granted > _limit(total, overcommit):
        raise ConflictError(
            message(
                "capacity.below_granted",
                granted=granted,
                gpu_model=gpu_model,
                needed=math.ceil(granted / overcommit),
            )
        )
    before = None if capacity is None else {"gpu_model": gpu_model, "total": capacity.total}
    if capacity is None:
        capacity = repository.add(GpuCapacity(gpu_model=gpu_model, total=total))
    else:
        capacity.total = total
        # An admin's number wins over the node sync from now on (see sync_from_nodes).
        capacity.admin_override = True
        session.flush()
    record(
        session,
        actor,
        "capacity.set",
        "gpu_capacity",
        gpu_model,
        before=before,
        after={"gpu_model": gpu_model, "total": total},
    )
    return _out(capacity, granted, overcommit)


def reserve(session: Session, field: str, gpu_model: str, gpus: int, overcommit: float) -> None:
    """Check, under the model's row lock, that ``gpus`` more GPUs fit; the caller then grants them.

    The lock is held until the caller's transaction ends, so the check and the grant are atomic
    with respect to every other approval of the same model.
    """
    repository = CapacityRepository(session)
    capacity = (
        repository.get_for_update(gpu_model) if clean_text_problem(gpu_model) is None else None
    )
    if capacity is None:
        require_known_model(session, field, gpu_model)
        raise AssertionError("unreachable")  # pragma: no cover
    granted = repository.granted(gpu_model)
    free = _limit(capacity.total, overcommit) - granted
    if gpus > free:
        raise CapacityExceededError(
            message(
                "capacity.exceeded",
                gpus=gpus,
                gpu_model=gpu_model,
                free=max(free, 0),
                total=capacity.total,
                granted=granted,
            )
        )


def sync_from_nodes(
    session: Session, actor: Actor, observed: dict[str, int], overcommit: float
) -> list[CapacityOut]:
    """Make each model's total follow the GPUs the cluster's nodes offer (``observed``).

    The rule: a model an admin set with ``PUT /api/v1/capacity/{gpu_model}`` keeps the admin's
    number (``admin_override``); every other model gets the nodes' allocatable total, and one no
    longer on any node drops to 0. The nodes are the truth even when that leaves fewer GPUs than
    are granted: nothing is revoked, the model just has none free until the nodes come back.
    """
    repository = CapacityRepository(session)
    known = {c.gpu_model for c in repository.list()}
    for gpu_model in sorted(known | set(observed)):
        capacity = repository.get_for_update(gpu_model)
        total = observed.get(gpu_model, 0)
        if capacity is not None and (capacity.admin_override or capacity.total == total):
            continue
        before = None if capacity is None else {"gpu_model": gpu_model, "total": capacity.total}
        if capacity is None:
            repository.add(GpuCapacity(gpu_model=gpu_model, total=total, admin_override=False))
        else:
            capacity.total = total
            session.flush()
        record(
            session,
            actor,
            "capacity.synced",
            "gpu_capacity",
            gpu_model,
            before=before,
            after={"gpu_model": gpu_model, "total": total},
        )
    return list_capacity(session, overcommit)
