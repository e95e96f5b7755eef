"""Time from starting the local Keycloak to the ``sandlada`` realm answering, and its memory.

Runs Keycloak exactly as ``infra.keycloak.launcher`` does (dev mode, realm import, heap
``-Xms64m -Xmx512m``) from the cached distribution, in a fresh state directory on a free port,
so a developer's ``var/keycloak`` server is left alone:

1. first start: empty database, so Keycloak creates its schema and imports the realm;
2. restart on the same state directory: schema and realm exist (what `make dev` usually does).

After the first start it takes password-grant tokens through ``sandlada-cli`` (latency) and
reads the JVM's memory from /proc (RSS, and PSS where shared pages are split). The download
(``infra/setup.d/20-keycloak.sh``) and Keycloak's one-off build step on a fresh distribution
are timed by hand; docs/benchmarks.md has both.

    .venv/bin/python bench/keycloak_startup.py --tokens 100
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

# Run as a script from anywhere: the checkout root holds the infra package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.keycloak.launcher import DEFAULT_HEAP, KeycloakConfig, pss_bytes, rss_bytes, start, stop
from infra.keycloak.realm import CLI_CLIENT_ID, DEMO_REQUESTER
from infra.process import free_port as _free_port

MIB = 1024 * 1024


def _timed_start(config: KeycloakConfig) -> tuple[float, int]:
    began = time.monotonic()
    info = start(config, timeout=900, progress=lambda message: print(message, file=sys.stderr))
    elapsed = time.monotonic() - began
    assert info.pid is not None
    return elapsed, info.pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100, help="password grants to time")
    parser.add_argument(
        "--heap", default=DEFAULT_HEAP, help="JVM memory options (JAVA_OPTS_KC_HEAP) to try"
    )
    args = parser.parse_args()

    result: dict[str, object] = {
        "machine": f"{platform.node()} {os.cpu_count()} cores",
        "load_average_at_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="kc-bench-") as state:
        config = KeycloakConfig(state_dir=Path(state), port=_free_port(), heap=args.heap)
        result["keycloak"] = config.version
        result["jvm_memory_options"] = config.heap
        try:
            first, pid = _timed_start(config)
            result["first_start_s"] = round(first, 1)
            result["rss_ready_mib"] = round(rss_bytes(pid) / MIB)
            result["pss_ready_mib"] = round(pss_bytes(pid) / MIB)

            latencies = []
            with httpx.Client(timeout=30) as client:
                for _ in range(args.tokens):
                    began = time.monotonic()
                    response = client.post(
                        f"{config.issuer}/protocol/openid-connect/token",
                        data={
                            "grant_type": "password",
                            "client_id": CLI_CLIENT_ID,
                            "username": DEMO_REQUESTER.username,
                            "password": DEMO_REQUESTER.password,
                        },
                    )
                    latencies.append(time.monotonic() - began)
                    if response.status_code != 200:
                        errors = [
                            line
                            for line in config.log_file.read_text().splitlines()
                            if "LOGIN_ERROR" in line or "ERROR" in line
                        ]
                        raise SystemExit(
                            f"token grant {len(latencies)} refused: {response.text}\n"
                            + "\n".join(errors[-5:])
                        )
            latencies.sort()
            result["token_grants"] = args.tokens
            result["token_p50_ms"] = round(statistics.median(latencies) * 1000, 1)
            result["token_p95_ms"] = round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1)
            result["rss_after_tokens_mib"] = round(rss_bytes(pid) / MIB)
            result["pss_after_tokens_mib"] = round(pss_bytes(pid) / MIB)
            stop(config)

            restart, pid = _timed_start(config)
            result["restart_s"] = round(restart, 1)
            result["rss_restart_mib"] = round(rss_bytes(pid) / MIB)
        finally:
            stop(config)
    result["load_average_at_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
