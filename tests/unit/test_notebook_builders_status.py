"""The notebook operator's pure status logic: pod → phase/message, condition bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from operators.notebook import Reason, status_changes, status_patch, view_of_pod
from tenants.notebook import NotebookPhase


def _pod(phase: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "nb-a"}, "status": {"phase": phase, **status}}


def test_pod_view_running_only_when_ready() -> None:
    started = "2026-01-01T10:00:00Z"
    running = _pod(
        "Running",
        conditions=[{"type": "Ready", "status": "True"}],
        containerStatuses=[{"state": {"running": {"startedAt": started}}}],
    )
    view = view_of_pod(running)
    assert (view.phase, view.ready, view.started_at) == (NotebookPhase.RUNNING, True, started)
    not_ready = _pod("Running", conditions=[{"type": "Ready", "status": "False"}])
    assert view_of_pod(not_ready).phase == NotebookPhase.PENDING


def test_pod_view_tells_why_it_waits_or_failed() -> None:
    unschedulable = _pod(
        "Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "message": "0/6 nodes are available: 6 Insufficient nvidia.com/gpu.",
            }
        ],
    )
    view = view_of_pod(unschedulable)
    assert view.reason == Reason.UNSCHEDULABLE
    assert "Insufficient nvidia.com/gpu" in view.message
    pulling = _pod(
        "Pending",
        containerStatuses=[{"state": {"waiting": {"reason": "ErrImagePull", "message": "nope"}}}],
    )
    assert "ErrImagePull" in view_of_pod(pulling).message
    failed = view_of_pod(_pod("Failed", reason="Evicted", message="node ran out of memory"))
    assert (failed.phase, failed.message) == (NotebookPhase.FAILED, "node ran out of memory")


def test_status_patch_keeps_transition_time_and_detects_no_change() -> None:
    first_time = datetime(2026, 1, 1, tzinfo=UTC)
    first = status_patch(
        {},
        phase=NotebookPhase.RUNNING,
        ready=True,
        reason=Reason.RUNNING,
        message="Jupyter is running",
        now=first_time,
    )
    again = status_patch(
        first,
        phase=NotebookPhase.RUNNING,
        ready=True,
        reason=Reason.RUNNING,
        message="Jupyter is running",
        now=first_time + timedelta(minutes=5),
    )
    assert again["conditions"][0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert not status_changes(first, again)
    stopped = status_patch(
        first,
        phase=NotebookPhase.STOPPED,
        ready=False,
        reason=Reason.STOPPED,
        message="stopped",
        now=first_time,
    )
    assert status_changes(first, stopped)
