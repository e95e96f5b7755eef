"""The idle culler's pure parts: the stop decision, Jupyter's status answer, the Notebook view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from operators.culler import (
    NotebookView,
    decide,
    format_duration,
    jupyter_last_activity,
    parse_timestamp,
    status_url,
)
from tenants.notebook import StopReason

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _decide(
    *, age: float | None, idle: float | None, idle_timeout: int | None, max_age: int | None
) -> StopReason | None:
    decision = decide(
        now=NOW,
        started_at=None if age is None else NOW - timedelta(seconds=age),
        last_activity=None if idle is None else NOW - timedelta(seconds=idle),
        idle_timeout_seconds=idle_timeout,
        max_age_seconds=max_age,
    )
    return None if decision is None else decision.reason


@pytest.mark.parametrize(
    ("age", "idle", "idle_timeout", "max_age", "expected"),
    [
        (100, 10, 60, 3600, None),  # active, young
        (100, 60, 60, 3600, StopReason.IDLE),  # exactly at the idle timeout
        (100, 59.9, 60, 3600, None),
        (3600, 1, 60, 3600, StopReason.MAX_AGE),  # active but too old
        (7200, 7000, 60, 3600, StopReason.MAX_AGE),  # both: the age wins
        (100, None, 60, 3600, None),  # Jupyter unreachable: never idle
        (4000, None, 60, 3600, StopReason.MAX_AGE),  # ...but the age still applies
        (None, 10_000, None, None, None),  # limits off
        (10_000, 10_000, 0, 0, None),  # 0 = off
        (None, 120, 60, 3600, StopReason.IDLE),  # no start time known: only idleness
    ],
)
def test_decide(
    age: float | None,
    idle: float | None,
    idle_timeout: int | None,
    max_age: int | None,
    expected: StopReason | None,
) -> None:
    assert _decide(age=age, idle=idle, idle_timeout=idle_timeout, max_age=max_age) == expected


def test_messages_are_bilingual_and_say_the_limit() -> None:
    idle = decide(
        now=NOW,
        started_at=NOW - timedelta(hours=1),
        last_activity=NOW - timedelta(minutes=90),
        idle_timeout_seconds=3600,
        max_age_seconds=86_400,
    )
    assert idle is not None
    assert idle.event_reason == "IdleTimeout"
    assert "Stopped after 1 h 30 min without activity (idle timeout 1 h)" in idle.message
    assert "Stoppad efter 1 h 30 min utan aktivitet" in idle.message
    old = decide(
        now=NOW,
        started_at=NOW - timedelta(days=2),
        last_activity=NOW,
        idle_timeout_seconds=3600,
        max_age_seconds=86_400,
    )
    assert old is not None
    assert old.event_reason == "MaxAgeReached"
    assert "maximum age of 1 d" in old.message
    assert "längsta tillåtna livslängd 1 d" in old.message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (3, "3 s"), (90, "1 min 30 s"), (300, "5 min"), (3900, "1 h 5 min")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_jupyter_status_parsing() -> None:
    answer = {
        "connections": 0,
        "kernels": 0,
        "last_activity": "2026-11-29T05:02:21.525363Z",
        "started": "2026-11-29T05:02:20.120978Z",
    }
    assert jupyter_last_activity(answer) == datetime(2026, 11, 29, 5, 2, 21, 525363, tzinfo=UTC)
    assert jupyter_last_activity({"started": "2026-11-29T05:02:20Z"}) == datetime(
        2026, 11, 29, 5, 2, 20, tzinfo=UTC
    )
    assert jupyter_last_activity({"last_activity": "yesterday"}) is None
    assert jupyter_last_activity(["not", "a", "dict"]) is None
    assert parse_timestamp("2026-11-29T05:02:20+01:00") == datetime(
        2026, 11, 29, 4, 2, 20, tzinfo=UTC
    )


def test_status_url_with_and_without_slash() -> None:
    assert status_url("http://nb-x.t-y.svc:8888/notebooks/t-y/x/") == (
        "http://nb-x.t-y.svc:8888/notebooks/t-y/x/api/status"
    )
    assert status_url("http://127.0.0.1:9000") == "http://127.0.0.1:9000/api/status"


def test_notebook_view_from_body() -> None:
    view = NotebookView.from_body(
        {
            "metadata": {
                "name": "analys",
                "namespace": "t-kiruna",
                "uid": "u-1",
                "creationTimestamp": "2026-11-29T10:00:00Z",
            },
            "spec": {"idleTimeoutSeconds": 3600, "maxAgeSeconds": 86400, "stopped": False},
            "status": {
                "phase": "Running",
                "internalUrl": "http://nb-analys.t-kiruna.svc:8888/",
                "lastActivity": "2026-11-29T11:00:00Z",
            },
        }
    )
    # No startedAt yet: the object's creation stands in for it.
    assert view.started_at == datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    assert view.last_activity == datetime(2026, 11, 29, 11, 0, tzinfo=UTC)
    assert (view.idle_timeout_seconds, view.max_age_seconds, view.stopped) == (3600, 86400, False)
    assert view.internal_url == "http://nb-analys.t-kiruna.svc:8888/"
