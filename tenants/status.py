"""Pure helpers for Tenant status conditions (the ``metav1.Condition`` conventions).

``lastTransitionTime`` changes only when a condition's status changes, so watchers can tell how
long a tenant has been Ready (or not) from the status alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from tenants.resource import Condition

READY = "Ready"


class Reason:
    """Reasons of the ``Ready`` condition (CamelCase, as Kubernetes conventions ask)."""

    PROVISIONING = "Provisioning"
    PROVISIONED = "Provisioned"
    INVALID_SPEC = "InvalidSpec"
    APPLY_FAILED = "ApplyFailed"
    SUSPENDED = "Suspended"
    DELETING = "Deleting"


def set_condition(
    conditions: list[dict[str, Any]],
    *,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """``conditions`` with condition ``type_`` set; other conditions are kept as they are."""
    wanted: Literal["True", "False"] = "True" if status else "False"
    previous = next((c for c in conditions if c.get("type") == type_), None)
    if previous is not None and previous.get("status") == wanted:
        transition = Condition.model_validate(previous).last_transition_time
    else:
        transition = now
    condition = Condition(
        type=type_,
        status=wanted,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    ).model_dump(mode="json", exclude_none=True)
    return [*(c for c in conditions if c.get("type") != type_), condition]
