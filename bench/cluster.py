"""Benchmark the local cluster: cold build, warm set-up, cold and warm `up`, no-op `up`.

    .venv/bin/python bench/cluster.py            # warm figures (binaries already built)
    .venv/bin/python bench/cluster.py --cold     # also a cold build into a throwaway GOCACHE

The cold build runs infra/setup.d/10-cluster.sh under `/usr/bin/time -v` with an empty Go build
cache and an empty binary cache (the module cache is kept: downloading is network, not build), and
reports wall time and peak RSS of the biggest process (the Go compiler or linker). `up` times are
measured with the real launcher: `up` from nothing (state removed), then `up` again while up.
Results go to stdout as a table and as JSON (for docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import tempfile
import time

from infra.cluster.config import SETUP_SCRIPT
from infra.cluster.launcher import Launcher


def _time_v(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run under /usr/bin/time -v; return (wall seconds, peak RSS in KiB)."""
    result = subprocess.run(
        ["/usr/bin/time", "-v", *command],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    )
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", result.stderr)
    if rss is None or wall is None:
        raise RuntimeError(result.stderr[-2000:])
    seconds = 0.0
    for part in wall.group(1).split(":"):
        seconds = seconds * 60 + float(part)
    return seconds, int(rss.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="also measure a cold build")
    args = parser.parse_args()
    results: dict[str, object] = {
        "machine": f"{platform.node()} {os.cpu_count()} cores, {platform.machine()}",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if args.cold:
        with tempfile.TemporaryDirectory() as gocache, tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, GOCACHE=gocache, SANDLADA_CACHE_DIR=cache)
            wall, rss = _time_v(["bash", str(SETUP_SCRIPT)], env)
            results["cold_build_s"] = round(wall, 1)
            results["cold_build_peak_rss_mib"] = round(rss / 1024)

    wall, _ = _time_v(["bash", str(SETUP_SCRIPT)], dict(os.environ))
    results["warm_setup_s"] = round(wall, 2)

    launcher = Launcher()
    launcher.down()
    start = time.monotonic()
    launcher.up()
    results["up_from_nothing_s"] = round(time.monotonic() - start, 1)
    start = time.monotonic()
    launcher.up()
    results["up_when_up_s"] = round(time.monotonic() - start, 2)

    for key, value in results.items():
        print(f"{key:<28} {value}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
