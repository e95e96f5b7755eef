"""The audit hash: deterministic, and sensitive to every field and to the chain link."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controlplane.audit.service import GENESIS_HASH, event_hash
from controlplane.models import AuditEvent


def _event(**overrides: object) -> AuditEvent:
    values: dict[str, object] = {
        "occurred_at": datetime(2026, 11, 29, 2, 0, 0, 123456, tzinfo=UTC),
        "actor": "u-1",
        "actor_name": "anna",
        "action": "sandbox_request.approved",
        "subject_type": "sandbox_request",
        "subject_id": "7",
        "before": {"status": "pending"},
        "after": {"status": "approved", "tenant": "kiruna"},
        "prev_hash": GENESIS_HASH,
    }
    values.update(overrides)
    return AuditEvent(**values)


def test_hash_is_deterministic_and_key_order_free() -> None:
    reordered = _event(after={"tenant": "kiruna", "status": "approved"})
    assert event_hash(_event()) == event_hash(_event()) == event_hash(reordered)
    assert len(event_hash(_event())) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"occurred_at": datetime(2026, 11, 29, 2, 0, 0, 123457, tzinfo=UTC)},
        {"actor": "mallory"},
        {"actor_name": None},
        {"action": "sandbox_request.rejected"},
        {"subject_type": "tenant"},
        {"subject_id": "8"},
        {"before": None},
        {"after": {"status": "approved", "tenant": "other"}},
        {"prev_hash": "f" * 64},
    ],
)
def test_every_field_is_covered(change: dict[str, object]) -> None:
    assert event_hash(_event(**change)) != event_hash(_event())
