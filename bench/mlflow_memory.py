"""Memory of the shared MLflow server per tenant, against a dedicated server per tenant.

Starts a fresh shared server (workspaces + basic auth, as ``infra.mlflow`` runs it), measures
its process tree at 0 tenants, then provisions tenants in steps (workspace, user, role through
``operators.mlflow_workspaces``; then, as the tenant, an experiment, a run with a param, a
metric and an artifact, and a read back) and measures again after each step. The marginal
memory per tenant is the least-squares slope of memory over tenants. Then, for comparison, a
dedicated server holding one tenant's run: MLflow's defaults, and the slim settings used here.

Memory is read from /proc: RSS summed over the process tree (shared pages counted in each
process) and PSS (shared pages split between processes, so the sum is what the tree costs).

    .venv/bin/python bench/mlflow_memory.py --tenants 100 --step 25
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import httpx

# Run as a script from anywhere: the checkout root holds the infra and operators packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.mlflow.server import (
    MlflowServer,
    MlflowServerConfig,
    pss_bytes,
    rss_bytes,
    start,
    stop,
)
from infra.process import free_port as _free_port
from operators.mlflow_workspaces import (
    WORKSPACE_HEADER,
    TenantMlflowCredentials,
    ensure_tenant_workspace,
)

MIB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    tenants: int
    rss_mib: float
    pss_mib: float


def _settle_and_measure(server: MlflowServer, tenants: int) -> Sample:
    # Let the allocator and any background thread settle; memory is read, not awaited on.
    time.sleep(2.0)
    return Sample(tenants, rss_bytes(server.pid) / MIB, pss_bytes(server.pid) / MIB)


def _tenant_work(url: str, credentials: TenantMlflowCredentials | None, index: int) -> None:
    """What a tenant's first notebook session leaves on the server: one experiment, one run."""
    auth = (credentials.username, credentials.password) if credentials else None
    headers = {WORKSPACE_HEADER: credentials.workspace} if credentials else {}
    with httpx.Client(base_url=url, auth=auth, headers=headers, timeout=60.0) as client:
        experiment_id = (
            client.post("/api/2.0/mlflow/experiments/create", json={"name": f"experiment-{index}"})
            .raise_for_status()
            .json()["experiment_id"]
        )
        run = (
            client.post(
                "/api/2.0/mlflow/runs/create",
                json={"experiment_id": experiment_id, "start_time": int(time.time() * 1000)},
            )
            .raise_for_status()
            .json()["run"]["info"]
        )
        run_id = run["run_id"]
        client.post(
            "/api/2.0/mlflow/runs/log-batch",
            json={
                "run_id": run_id,
                "params": [{"key": "learning_rate", "value": "0.01"}],
                "metrics": [
                    {"key": "accuracy", "value": 0.9, "timestamp": 0, "step": step}
                    for step in range(10)
                ],
            },
        ).raise_for_status()
        client.put(
            f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/card.txt",
            content=secrets.token_bytes(4096),
        ).raise_for_status()
        client.post(
            "/api/2.0/mlflow/runs/update", json={"run_id": run_id, "status": "FINISHED"}
        ).raise_for_status()
        client.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id}).raise_for_status()
        client.post(
            "/api/2.0/mlflow/experiments/search", json={"max_results": 100}
        ).raise_for_status()


def _slope(samples: list[Sample], field: str) -> float:
    xs = [s.tenants for s in samples]
    ys = [getattr(s, field) for s in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    denominator = sum((x - mean_x) ** 2 for x in xs)
    numerator: float = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return numerator / denominator


def shared(tenants: int, step: int, root: Path) -> dict[str, object]:
    config = MlflowServerConfig(state_dir=root / "shared", port=_free_port())
    server = start(config, timeout=300)
    try:
        key = secrets.token_bytes(32)
        with httpx.Client(
            base_url=server.url,
            auth=(server.admin_username, server.admin_password),
            timeout=60.0,
        ) as admin:
            # Warm-up: the first requests import handlers lazily; that is not a tenant's cost.
            admin.get("/api/3.0/mlflow/workspaces").raise_for_status()
            admin.post("/api/2.0/mlflow/experiments/search", json={"max_results": 1})
            samples = [_settle_and_measure(server, 0)]
            print(f"shared  0 tenants: {samples[-1]}", flush=True)
            started = time.monotonic()
            for index in range(1, tenants + 1):
                credentials = ensure_tenant_workspace(admin, f"bench-{index:04d}", password_key=key)
                _tenant_work(server.url, credentials, index)
                if index % step == 0 or index == tenants:
                    samples.append(_settle_and_measure(server, index))
                    print(f"shared {index:3d} tenants: {samples[-1]}", flush=True)
            elapsed = time.monotonic() - started
    finally:
        stop(config)
    return {
        "samples": [asdict(s) for s in samples],
        "marginal_rss_mib_per_tenant": _slope(samples, "rss_mib"),
        "marginal_pss_mib_per_tenant": _slope(samples, "pss_mib"),
        "provisioning_seconds_per_tenant": elapsed / tenants,
    }


def dedicated(root: Path, name: str, config: MlflowServerConfig) -> dict[str, object]:
    server = start(config, timeout=300)
    try:
        if config.basic_auth:
            with httpx.Client(
                base_url=server.url,
                auth=(server.admin_username, server.admin_password),
                timeout=60.0,
            ) as admin:
                key = secrets.token_bytes(32)
                credentials = ensure_tenant_workspace(admin, "dedicated", password_key=key)
            _tenant_work(server.url, credentials, 1)
        else:
            _tenant_work(server.url, None, 1)
        sample = _settle_and_measure(server, 1)
        print(f"dedicated ({name}): {sample}", flush=True)
    finally:
        stop(config)
    return {"rss_mib": sample.rss_mib, "pss_mib": sample.pss_mib, "settings": name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--step", type=int, default=25)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mlflow-bench-") as tmp:
        root = Path(tmp)
        result: dict[str, object] = {
            "machine": {
                "cpus": os.cpu_count(),
                "memory_gib": round(
                    os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1
                ),
                "python": platform.python_version(),
                "mlflow": version("mlflow"),
            },
            "shared": shared(args.tenants, args.step, root),
            "dedicated_slim": dedicated(
                root,
                "1 worker, no job runner, basic auth + workspaces",
                MlflowServerConfig(state_dir=root / "slim", port=_free_port()),
            ),
            "dedicated_default": dedicated(
                root,
                "MLflow defaults: 4 workers, job runner, no auth",
                MlflowServerConfig(
                    state_dir=root / "default",
                    port=_free_port(),
                    workers=4,
                    job_execution=True,
                    enable_workspaces=False,
                    basic_auth=False,
                ),
            ),
        }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
