"""Benchmark: ``GET /api/v1/tenants`` at 1 000 tenants against a bare FastAPI endpoint.

Usage: ``.venv/bin/python bench/api.py [--backend sqlite|postgresql] [--tenants 1000] [--limit 100]
[--limit 1] [--requests 2000] [--concurrency 8] [--rounds 3] [--seeded-url URL] [--no-cache]``

The run seeds a fresh database (SQLite in a temporary directory, or with ``--backend
postgresql`` a throwaway PostgreSQL cluster) with ``--tenants`` tenants through the real
services (submit + approve), starts a local OIDC issuer, and serves two apps with uvicorn on
loopback, each in its own process: the control plane, and a bare FastAPI app whose one ``async``
route returns the same JSON document without authentication or a database. Load comes from a
separate process: keep-alive HTTP/1.1 connections on ``--concurrency`` threads, a bounded
``--requests`` per measurement, alternating bare/control plane for ``--rounds`` rounds; the
median requests per second of each is reported with the ratio (goal: control plane ≥ 0.5 ×
bare).

The control plane keeps rendered pages until tenants or agencies change
(controlplane/tenancy/listcache.py), so with repeated GETs and no writes it serves kept pages
after the first request of each page; ``--no-cache`` measures the rendering path on every
request.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi import FastAPI  # noqa: E402 - after the path set-up that makes the repo importable

from controlplane import migrate  # noqa: E402
from controlplane.auth.principal import User  # noqa: E402
from controlplane.database import Database  # noqa: E402
from controlplane.requests import service as requests_service  # noqa: E402
from controlplane.requests.schemas import ApproveIn, SandboxRequestIn  # noqa: E402
from infra.process import free_port as _free_port  # noqa: E402

PAYLOAD_ENV = "SANDLADA_BENCH_PAYLOAD"


def bare_app() -> FastAPI:
    """The baseline: FastAPI, one async route, the same JSON document, nothing else."""
    payloads: dict[str, Any] = json.loads(Path(os.environ[PAYLOAD_ENV]).read_text())
    app = FastAPI()

    @app.get("/bare/{limit}")
    async def bare(limit: str) -> Any:
        return payloads[limit]

    return app


def _organisation_numbers(count: int) -> list[str]:
    from stdnum import luhn  # noqa: PLC0415 - only the seeding needs it

    numbers = []
    for n in range(count):
        head = f"2120{n:05d}"
        numbers.append(head + luhn.calc_check_digit(head))
    return numbers


def seed(database_url: str, tenants: int) -> None:
    migrate.upgrade(database_url)
    database = Database.from_url(database_url)
    admin = User(
        subject="bench-admin",
        username="bench",
        name="Bench",
        email=None,
        roles=frozenset({"platform-admin"}),
        groups=frozenset(),
        organisation_number=None,
        organisation_claim=None,
        is_platform_admin=True,
    )
    agencies = _organisation_numbers(10)
    end = (datetime.now(UTC).date() + timedelta(days=365)).isoformat()
    with database.session(write=True) as session:
        for n in range(tenants):
            body = SandboxRequestIn.model_validate(
                {
                    "name": f"bench-tenant-{n:04d}",
                    "agency": {
                        "name": f"Bench kommun {n % 10}",
                        "organisation_number": agencies[n % 10],
                        "kind": "municipality",
                    },
                    "purpose": "Benchmark tenant.",
                    "legal_basis": "None; synthetic data.",
                    "data_classification": "open",
                    "ai_act_risk": "minimal",
                    "quota": {"gpus": 0, "cpu": 4, "memory_gib": 16, "storage_gib": 50},
                    "end_date": end,
                }
            )
            request = requests_service.submit(session, admin, body)
            requests_service.approve(session, admin, request.id, ApproveIn(), 1.0)
        session.commit()
    database.dispose()


def _serve(target: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "uvicorn", target, "--factory", "--host", "127.0.0.1",
        "--port", str(port), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})


def _wait_ready(port: int, path: str, process: subprocess.Popen[bytes]) -> None:
    # Generous: importing the control plane takes tens of seconds on a loaded 2-core machine.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on {port} exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)  # polling a port that is not open yet; nothing to wait on instead
    raise RuntimeError(f"server on {port} did not become ready")


def load(
    port: int, path: str, headers: dict[str, str], total: int, concurrency: int
) -> dict[str, float]:
    """Run in the load process: ``total`` GETs over ``concurrency`` keep-alive connections."""
    per_thread = [
        total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)
    ]
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency + 1)

    def worker(count: int) -> None:
        nonlocal errors
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        bad = 0
        barrier.wait()
        for _ in range(count):
            start = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            bad += response.status != 200
        connection.close()
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=worker, args=(n,)) for n in per_thread]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def _load_in_subprocess(
    port: int, path: str, token: str | None, args: argparse.Namespace
) -> dict[str, float]:
    spec = json.dumps({"port": port, "path": path, "token": token, "total": args.requests,
                       "concurrency": args.concurrency})  # fmt: skip
    result = subprocess.run(
        [sys.executable, __file__, "--load-spec", spec], capture_output=True, text=True, check=True
    )
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument(
        "--limit",
        type=int,
        action="append",
        help="Page size asked for; repeat to measure several (default: 100 and 1).",
    )
    parser.add_argument("--requests", type=int, default=2000, help="Requests per measurement.")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="SQLite file in a temporary directory, or a throwaway PostgreSQL cluster.",
    )
    parser.add_argument(
        "--seeded-url",
        help="Use this already seeded database instead of seeding a new one (for repetitions).",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="Serve with the tenant list cache off (SANDLADA_TENANT_LIST_CACHE_ENTRIES=0): every "
        "request renders its page.",
    )
    parser.add_argument("--load-spec", help=argparse.SUPPRESS)
    args = parser.parse_args()

    args.limit = args.limit or [100, 1]
    if args.load_spec:  # the load-generator process
        spec = json.loads(args.load_spec)
        headers = {"Authorization": f"Bearer {spec['token']}"} if spec["token"] else {}
        print(
            json.dumps(
                load(spec["port"], spec["path"], headers, spec["total"], spec["concurrency"])
            )
        )
        return

    from tests.fixtures.database import start_postgres, stop_postgres  # noqa: PLC0415
    from tests.fixtures.tokens import ADMIN, start_issuer  # noqa: PLC0415 - dev tooling only

    workdir = Path(tempfile.mkdtemp(prefix="sandlada-bench-"))
    cluster = None
    if args.seeded_url:
        database_url = args.seeded_url
    elif args.backend == "postgresql":
        cluster = start_postgres()
        cluster.admin_sql("CREATE DATABASE bench")
        database_url = cluster.url("bench")
    else:
        database_url = f"sqlite:///{workdir / 'bench.db'}"
    try:
        _run(args, workdir, database_url, ADMIN, start_issuer)
    finally:
        if cluster is not None:
            stop_postgres(cluster)
        shutil.rmtree(workdir, ignore_errors=True)


def _run(
    args: argparse.Namespace, workdir: Path, database_url: str, admin: Any, start_issuer: Any
) -> None:
    started = time.perf_counter()
    if not args.seeded_url:
        seed(database_url, args.tenants)
        print(f"seeded {args.tenants} tenants in {time.perf_counter() - started:.1f}s")
    else:
        migrate.upgrade(database_url)  # a database seeded by an older revision

    issuer, issuer_server = start_issuer()
    token = issuer.mint(admin, expires_in=3600)
    app_port, bare_port = _free_port(), _free_port()
    env = {
        "SANDLADA_DATABASE_URL": database_url,
        "SANDLADA_OIDC_ISSUER": issuer.url,
        "SANDLADA_ENVIRONMENT": "test",
        "SANDLADA_LOG_JSON": "true",
    }
    if args.no_cache:
        env["SANDLADA_TENANT_LIST_CACHE_ENTRIES"] = "0"
    app_server = _serve("controlplane.app:create_app", app_port, env)
    bare_server = None
    measurements: list[dict[str, Any]] = []
    try:
        _wait_ready(app_port, "/healthz", app_server)
        documents: dict[str, Any] = {}
        for limit in args.limit:
            connection = http.client.HTTPConnection("127.0.0.1", app_port)
            connection.request(
                "GET",
                f"/api/v1/tenants?limit={limit}",
                headers={"Authorization": f"Bearer {token}"},
            )
            documents[str(limit)] = json.loads(connection.getresponse().read())
        payload = workdir / "payload.json"
        payload.write_text(json.dumps(documents))
        bare_server = _serve("bench.api:bare_app", bare_port, {PAYLOAD_ENV: str(payload)})
        _wait_ready(bare_port, f"/bare/{args.limit[0]}", bare_server)

        for limit in args.limit:
            runs: dict[str, list[dict[str, float]]] = {"bare": [], "controlplane": []}
            app_path = f"/api/v1/tenants?limit={limit}"
            for round_number in range(args.rounds):
                runs["bare"].append(_load_in_subprocess(bare_port, f"/bare/{limit}", None, args))
                runs["controlplane"].append(_load_in_subprocess(app_port, app_path, token, args))
                print(
                    f"limit {limit} round {round_number + 1}: "
                    f"bare {runs['bare'][-1]['rps']:.0f} req/s, "
                    f"control plane {runs['controlplane'][-1]['rps']:.0f} req/s"
                )
            measurement: dict[str, Any] = {
                "limit": limit,
                "items_per_response": len(documents[str(limit)]),
                "response_bytes": len(json.dumps(documents[str(limit)])),
            }
            for name, results in runs.items():
                measurement[name] = {
                    "median_rps": round(statistics.median(r["rps"] for r in results), 1),
                    "median_p50_ms": round(statistics.median(r["p50_ms"] for r in results), 2),
                    "median_p99_ms": round(statistics.median(r["p99_ms"] for r in results), 2),
                    "errors": sum(int(r["errors"]) for r in results),
                }
            measurement["ratio"] = round(
                measurement["controlplane"]["median_rps"] / measurement["bare"]["median_rps"], 3
            )
            # Each round measures both back to back, so a per-round ratio is less exposed to
            # the machine's load moving between rounds than the ratio of the two medians.
            measurement["median_round_ratio"] = round(
                statistics.median(
                    cp["rps"] / bare["rps"]
                    for bare, cp in zip(runs["bare"], runs["controlplane"], strict=True)
                ),
                3,
            )
            measurements.append(measurement)
    finally:
        for server in (app_server, bare_server):
            if server is not None:
                server.terminate()
                server.wait(30)
        issuer_server.shutdown()

    summary: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, "
        f"load average {os.getloadavg()[0]:.1f}, Python {platform.python_version()}",
        "backend": args.backend,
        "tenant_list_cache": not args.no_cache,
        "tenants": args.tenants,
        "requests_per_measurement": args.requests,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "measurements": measurements,
    }
    print(json.dumps(summary, indent=2))
    if any(m[side]["errors"] for m in measurements for side in ("bare", "controlplane")):
        raise SystemExit("non-200 responses during the run")


if __name__ == "__main__":
    main()
