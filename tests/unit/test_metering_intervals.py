"""Metering: intervals derived from Pod and PVC objects, and days split in the report zone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from controlplane.metering.days import day_start, split_by_day
from controlplane.metering.intervals import (
    EndSource,
    effective_requests,
    gpu_model,
    pod_interval,
    tenant_slug,
    volume_interval,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
START = "2026-11-29T05:00:00Z"


def pod(
    *,
    phase: str = "Running",
    start: str | None = START,
    finished: Sequence[str | None] | None = None,
    deletion: str | None = None,
    grace: int | None = None,
    containers: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    containers = containers or [
        {"name": "c", "resources": {"requests": {"cpu": "2", "memory": "3Gi"}}}
    ]
    metadata: dict[str, Any] = {"uid": "u1", "namespace": "t-kiruna", "name": "p"}
    if deletion:
        metadata["deletionTimestamp"] = deletion
        metadata["deletionGracePeriodSeconds"] = grace
    status: dict[str, Any] = {"phase": phase}
    if start:
        status["startTime"] = start
    if finished is not None:
        status["containerStatuses"] = [
            {"name": f"c{i}", "state": {"terminated": {"finishedAt": f}} if f else {"running": {}}}
            for i, f in enumerate(finished)
        ]
    spec: dict[str, Any] = {"nodeName": "kwok-l4-0", "containers": containers}
    if init:
        spec["initContainers"] = init
    return {"metadata": metadata, "spec": spec, "status": status}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class TestPodInterval:
    def test_running_pod_is_open_from_its_start_time(self) -> None:
        interval = pod_interval(pod())
        assert interval is not None
        assert interval.started_at == at(START)
        assert interval.ended_at is None
        assert interval.started_at.tzinfo is not None

    def test_pod_that_never_started_used_nothing(self) -> None:
        assert pod_interval(pod(phase="Pending", start=None)) is None

    def test_succeeded_pod_ends_at_its_last_container_finish(self) -> None:
        finished = ["2026-11-29T05:10:00Z", "2026-11-29T05:12:30Z"]
        interval = pod_interval(pod(phase="Succeeded", finished=finished))
        assert interval is not None
        assert interval.ended_at == at("2026-11-29T05:12:30Z")
        assert interval.end_source == EndSource.FINISHED

    def test_running_pod_with_a_terminated_container_is_still_open(self) -> None:
        interval = pod_interval(pod(finished=["2026-11-29T05:10:00Z", None]))
        assert interval is not None
        assert interval.ended_at is None

    def test_deleted_running_pod_ends_when_deletion_was_requested(self) -> None:
        # Graceful delete: deletionTimestamp is the request time plus the grace period.
        interval = pod_interval(
            pod(deletion="2026-11-29T05:20:30Z", grace=30, finished=[None]), deleted=True
        )
        assert interval is not None
        assert interval.ended_at == at("2026-11-29T05:20:00Z")
        assert interval.end_source == EndSource.DELETED

    def test_deleted_pod_with_terminated_containers_ends_at_their_finish(self) -> None:
        interval = pod_interval(
            pod(deletion="2026-11-29T05:21:00Z", grace=0, finished=["2026-11-29T05:20:10Z"]),
            deleted=True,
        )
        assert interval is not None
        assert interval.ended_at == at("2026-11-29T05:20:10Z")

    def test_modified_pod_being_deleted_is_still_running(self) -> None:
        interval = pod_interval(pod(deletion="2026-11-29T05:20:30Z", grace=30))
        assert interval is not None
        assert interval.ended_at is None

    def test_end_never_precedes_start(self) -> None:
        interval = pod_interval(pod(phase="Failed", finished=["2026-11-29T04:00:00Z"]))
        assert interval is not None
        assert interval.ended_at == interval.started_at


class TestRequests:
    def test_sum_of_containers_with_gpus(self) -> None:
        requests = effective_requests(
            {
                "containers": [
                    {
                        "resources": {
                            "requests": {"cpu": "1500m", "memory": "1536Mi"},
                            "limits": {"nvidia.com/gpu": "2"},
                        }
                    },
                    {"resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}},
                ]
            }
        )
        assert requests.cpu_cores == pytest.approx(2.0)
        assert requests.memory_gib == pytest.approx(2.0)
        assert requests.gpus == 2
        assert requests.gpu_resource == "nvidia.com/gpu"

    def test_largest_init_container_wins_when_larger_and_overhead_is_added(self) -> None:
        requests = effective_requests(
            {
                "containers": [{"resources": {"requests": {"cpu": "1"}}}],
                "initContainers": [{"resources": {"requests": {"cpu": "4"}}}],
                "overhead": {"cpu": "250m"},
            }
        )
        assert requests.cpu_cores == pytest.approx(4.25)

    def test_gpu_model_comes_from_the_node_and_is_empty_without_gpus(self) -> None:
        with_gpu = effective_requests(
            {"containers": [{"resources": {"limits": {"nvidia.com/gpu": "1"}}}]}
        )
        without = effective_requests({"containers": [{"resources": {"requests": {"cpu": "1"}}}]})
        mig = effective_requests(
            {"containers": [{"resources": {"limits": {"nvidia.com/mig-1g.10gb": "1"}}}]}
        )
        assert gpu_model(with_gpu, "NVIDIA-L4") == "NVIDIA-L4"
        assert gpu_model(with_gpu, None) == "unknown"
        assert gpu_model(without, "NVIDIA-L4") == ""
        assert gpu_model(mig, "NVIDIA-A100-SXM4-80GB") == "NVIDIA-A100-SXM4-80GB/mig-1g.10gb"


def test_tenant_from_namespace_or_label() -> None:
    assert tenant_slug("t-kiruna") == "kiruna"
    assert tenant_slug("kube-system") is None
    assert tenant_slug("shared", {"sandlada.se/tenant": "lund"}) == "lund"


def test_volume_interval_uses_bound_capacity_and_deletion_request() -> None:
    pvc: dict[str, Any] = {
        "metadata": {
            "uid": "v1",
            "namespace": "t-kiruna",
            "name": "home",
            "creationTimestamp": START,
            "deletionTimestamp": "2026-11-30T05:00:00Z",
            "deletionGracePeriodSeconds": 0,
        },
        "spec": {"resources": {"requests": {"storage": "10Gi"}}},
        "status": {"capacity": {"storage": "20Gi"}},
    }
    open_interval = volume_interval(pvc)
    closed = volume_interval(pvc, deleted=True)
    assert open_interval.size_gib == 20.0
    assert open_interval.ended_at is None
    assert closed.ended_at == at("2026-11-30T05:00:00Z")


class TestSplitByDay:
    def test_within_one_day(self) -> None:
        start = datetime(2026, 11, 29, 5, tzinfo=UTC)
        assert list(split_by_day(start, start + timedelta(hours=2), STOCKHOLM)) == [
            (date(2026, 11, 29), 7200.0)
        ]

    def test_split_at_local_midnight_not_utc_midnight(self) -> None:
        # 22:30 UTC on 28 Nov is 23:30 in Stockholm (CET, UTC+1): 30 min then, rest on the 29th.
        start = datetime(2026, 11, 28, 22, 30, tzinfo=UTC)
        pieces = list(split_by_day(start, start + timedelta(hours=2), STOCKHOLM))
        assert pieces == [(date(2026, 11, 28), 1800.0), (date(2026, 11, 29), 5400.0)]

    @pytest.mark.parametrize(
        ("day", "hours"),
        [
            (date(2026, 3, 29), 23),  # spring forward: 02:00 -> 03:00
            (date(2026, 10, 25), 25),  # fall back: 03:00 -> 02:00
            (date(2026, 6, 1), 24),
        ],
    )
    def test_dst_days_have_their_true_length(self, day: date, hours: int) -> None:
        start = day_start(day, STOCKHOLM)
        end = day_start(day + timedelta(days=1), STOCKHOLM)
        assert list(split_by_day(start, end, STOCKHOLM)) == [(day, hours * 3600.0)]

    def test_a_week_across_the_autumn_change_sums_to_the_elapsed_time(self) -> None:
        start = datetime(2026, 10, 22, 10, 17, 3, tzinfo=UTC)
        end = start + timedelta(days=7, minutes=11)
        pieces = list(split_by_day(start, end, STOCKHOLM))
        assert sum(s for _, s in pieces) == (end - start).total_seconds()
        assert [d for d, _ in pieces] == [date(2026, 10, 22) + timedelta(days=i) for i in range(8)]
        assert dict(pieces)[date(2026, 10, 25)] == 25 * 3600.0

    def test_empty_interval(self) -> None:
        start = datetime(2026, 11, 29, 5, tzinfo=UTC)
        assert list(split_by_day(start, start, STOCKHOLM)) == []
