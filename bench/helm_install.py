"""Benchmark: the Helm chart on the local cluster — install, upgrade and uninstall times.

Usage: ``.venv/bin/python bench/helm_install.py [--rounds 5]``

Each round makes a namespace enforcing Pod Security ``restricted`` with the three Secrets the chart
reads, then times ``helm install --wait`` (migration hook Job complete, CRDs present, all
Deployments available), ``helm upgrade --wait --set controlPlane.replicas=2`` (hook Job again,
control plane rolled to two available pods) and ``helm uninstall --wait``, and deletes the
namespace. Needs the running local cluster (``sandlada dev cluster up``) and the helm binary
``make infra`` builds. kwok "runs" the pods, so the times are the apiserver's, the controllers'
and helm's, not image pulls or container start-up.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client, config

from infra.cluster.config import Binaries, ClusterConfig

UPGRADE = ("--reuse-values", "--set", "controlPlane.replicas=2")
REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "helm" / "sandlada"
SECRETS = {
    "sandlada-database": {"url": "postgresql+psycopg://sandlada:unused@db.invalid:5432/sandlada"},
    "sandlada-keycloak": {"client-secret": "not-a-real-secret"},
    "sandlada-portal": {"client-secret": "not-a-real-secret", "session-secret": "not-real"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    kubeconfig = ClusterConfig.from_env().kubeconfig
    helm = Binaries.locate().helm
    if not helm.is_file():
        raise SystemExit(f"{helm} is missing; run `make infra`")
    config.load_kube_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    core: Any = client.CoreV1Api()  # plain dicts as bodies, as the API documents them
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "HELM_CONFIG_HOME": str(REPO / "var" / "helm" / "config"),
        "HELM_CACHE_HOME": str(REPO / "var" / "helm" / "cache"),
        "HELM_DATA_HOME": str(REPO / "var" / "helm" / "data"),
    }

    def timed(*command: str) -> float:
        start = time.monotonic()
        subprocess.run([str(helm), *command], env=env, check=True, capture_output=True)
        return time.monotonic() - start

    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    results: dict[str, list[float]] = {"install": [], "upgrade": [], "uninstall": []}
    for _ in range(args.rounds):
        namespace = f"helm-bench-{uuid.uuid4().hex[:6]}"
        labels = {"pod-security.kubernetes.io/enforce": "restricted"}
        core.create_namespace({"metadata": {"name": namespace, "labels": labels}})
        try:
            for name, data in SECRETS.items():
                core.create_namespaced_secret(
                    namespace, {"metadata": {"name": name}, "stringData": data}
                )
            ns = ("--namespace", namespace)
            results["install"].append(timed("install", "bench", str(CHART), *ns, "--wait"))
            results["upgrade"].append(
                timed("upgrade", "bench", str(CHART), *ns, "--wait", *UPGRADE)
            )
            results["uninstall"].append(timed("uninstall", "bench", *ns, "--wait"))
        finally:
            core.delete_namespace(namespace)
        print("  ".join(f"{key} {values[-1]:.2f} s" for key, values in results.items()))
    for key, values in results.items():
        print(f"{key}: median {statistics.median(values):.2f} s, max {max(values):.2f} s")


if __name__ == "__main__":
    main()
