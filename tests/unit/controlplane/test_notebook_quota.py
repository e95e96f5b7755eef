"""Quota accounting for notebook launches (pure): what counts as in use, and the refusals."""

from __future__ import annotations

from decimal import Decimal as D  # noqa: N817  (short: the tables read as numbers)

import pytest

from controlplane.notebooks.quota import (
    GPU_RESOURCE,
    Grant,
    NotebookUse,
    PodUse,
    QuotaExceededError,
    Requests,
    check,
    effective_pod_requests,
    in_use,
)
from controlplane.notebooks.storage import container_requests

A100 = "NVIDIA-A100-SXM4-80GB"
GRANT = Grant(
    cpu=D(16), memory_gib=D(64), storage_gib=D(100), gpus={GPU_RESOURCE: D(2)}, gpu_model=A100
)


def gpu_notebook(name: str, *, stopped: bool = False) -> NotebookUse:
    return NotebookUse(name, stopped, Requests(D(4), D(16), D(20), extended={GPU_RESOURCE: D(1)}))


def test_container_requests_parse_kubernetes_quantities() -> None:
    parsed = container_requests({"cpu": "1500m", "memory": "512Mi", "nvidia.com/gpu": "1"})
    assert parsed == Requests(D("1.5"), D("0.5"), extended={GPU_RESOURCE: D(1)})
    assert container_requests(None) == Requests()


def test_init_containers_count_as_the_scheduler_counts_them() -> None:
    containers = [Requests(D(1), D(2)), Requests(D(1), D(2))]
    init = [Requests(D(3), D(1), extended={GPU_RESOURCE: D(1)})]
    assert effective_pod_requests(containers, init) == Requests(
        D(3), D(4), extended={GPU_RESOURCE: D(1)}
    )


def test_in_use_counts_pods_promised_notebooks_and_claims_once() -> None:
    pods = [
        # The running notebook's pod: counted as a pod, not again as a notebook.
        PodUse(Requests(D(4), D(16), extended={GPU_RESOURCE: D(1)}), False, "running"),
        PodUse(Requests(D(2), D(2)), False, None),  # someone's batch job
        PodUse(Requests(D(8), D(8)), True, None),  # finished: free
    ]
    notebooks = [
        gpu_notebook("running"),
        gpu_notebook("starting"),  # no pod yet: its spec counts
        gpu_notebook("culled", stopped=True),  # stopped: only its home volume counts
    ]
    claims = {"home-running": D(20), "home-culled": D(20)}
    used = in_use(pods, notebooks, claims)
    assert used.cpu == D(10)
    assert used.memory_gib == D(34)
    assert used.gpus(GPU_RESOURCE) == D(2)
    # Two existing claims plus the home volume "starting" is about to get.
    assert used.storage_gib == D(60)


def test_gpu_refusal_names_what_is_in_use_in_both_languages() -> None:
    used = in_use([], [gpu_notebook("a"), gpu_notebook("b")], {})
    with pytest.raises(QuotaExceededError) as refused:
        check(GRANT, used, Requests(D(4), D(16), D(20), {GPU_RESOURCE: D(1)}), profile="gpu-a100")
    assert refused.value.status_code == 409
    assert refused.value.code == "quota_exceeded"
    assert refused.value.render("en") == (
        "GPU quota exhausted: 2 of 2 NVIDIA A100 SXM4 80GB in use; profile 'gpu-a100' needs 1"
    )
    assert refused.value.render("sv") == (
        "GPU-kvoten räcker inte: 2 av 2 NVIDIA A100 SXM4 80GB används; profilen 'gpu-a100' "
        "behöver 1"
    )


@pytest.mark.parametrize(
    ("need", "words"),
    [
        (Requests(D(9), D(1), D(1)), "CPU quota exhausted: 8 of 16 cores in use"),
        (Requests(D(1), D("32.5"), D(1)), "memory quota exhausted: 32 of 64 GiB in use"),
        (Requests(D(1), D(1), D(61)), "storage quota exhausted: 40 of 100 GiB in use"),
    ],
)
def test_each_resource_is_checked(need: Requests, words: str) -> None:
    used = in_use([], [gpu_notebook("a"), gpu_notebook("b")], {})
    with pytest.raises(QuotaExceededError, match=words):
        check(GRANT, used, need, profile="p")


def test_exactly_full_fits_and_cpu_profiles_ignore_gpus() -> None:
    used = in_use([], [gpu_notebook("a"), gpu_notebook("b")], {})
    check(GRANT, used, Requests(D(8), D(32), D(60)), profile="fills-it")
    with pytest.raises(QuotaExceededError, match="CPU quota"):
        check(GRANT, used, Requests(D("8.001"), D(1), D(1)), profile="one-too-many")


def test_mig_resources_are_checked_against_their_own_grant() -> None:
    mig = "nvidia.com/mig-1g.10gb"
    grant = Grant(D(16), D(64), D(100), {GPU_RESOURCE: D(0), mig: D(2)}, A100)
    check(
        grant, Requests(extended={mig: D(1)}), Requests(D(1), D(1), D(1), {mig: D(1)}), profile="m"
    )
    with pytest.raises(QuotaExceededError, match=r"2 of 2 NVIDIA A100 SXM4 80GB \(nvidia.com/mig"):
        check(
            grant,
            Requests(extended={mig: D(2)}),
            Requests(D(1), D(1), D(1), {mig: D(1)}),
            profile="m",
        )
