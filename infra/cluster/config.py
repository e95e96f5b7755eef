"""Settings of the local cluster: where things live, which ports, which simulated nodes.

Everything here is pure (no I/O beyond reading environment variables and versions.env), so the
launcher's decisions can be unit-tested without starting anything.

Ports are loopback-only and deliberately off the Kubernetes defaults, so the local cluster never
collides with another apiserver, etcd or kubelet on the same machine:

| component               | address            |
|-------------------------|--------------------|
| etcd client / peer      | 127.0.0.1:12379 / 12380 |
| kube-apiserver          | 127.0.0.1:16443    |
| kube-controller-manager | 127.0.0.1:16257    |
| kube-scheduler          | 127.0.0.1:16259    |
| kwok (healthz, metrics) | 127.0.0.1:16080    |
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = Path(__file__).resolve().parent
GO_DIR = CLUSTER_DIR / "go"
SETUP_SCRIPT = REPO_ROOT / "infra" / "setup.d" / "10-cluster.sh"
# The files whose content decides whether the control-plane binary must be rebuilt; the setup
# script hashes the same files in the same order (cat … | sha256sum).
KUBE_SOURCES = ("go.mod", "go.sum", "main.go")

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
POOL_LABEL = "sandlada.se/node-pool"
# kwok manages only nodes carrying this annotation, so a real node can never be taken over.
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")


def read_versions(path: Path = CLUSTER_DIR / "versions.env") -> dict[str, str]:
    """Parse the KEY=VALUE lines of versions.env (comments and blank lines ignored)."""
    versions: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        versions[key.strip()] = value.strip()
    return versions


def cache_dir() -> Path:
    """The build cache outside the repository (shared by every checkout on the machine)."""
    configured = os.environ.get("SANDLADA_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "sandlada"


def kube_source_hash(go_dir: Path = GO_DIR) -> str:
    """First 12 hex digits of sha256 over go.mod, go.sum and main.go concatenated."""
    digest = hashlib.sha256()
    for name in KUBE_SOURCES:
        digest.update((go_dir / name).read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class Binaries:
    """Paths of the built executables in the version-keyed cache."""

    kube: Path
    kwok: Path
    helm: Path

    @classmethod
    def locate(cls, root: Path | None = None) -> Binaries:
        """Where 10-cluster.sh puts (or has put) each binary."""
        versions = read_versions()
        bin_dir = (root or cache_dir()) / "bin"
        kube = f"kube-{versions['KUBERNETES_VERSION']}-{kube_source_hash()}"
        return cls(
            kube=bin_dir / kube / "sandlada-kube",
            kwok=bin_dir / f"kwok-{versions['KWOK_VERSION']}" / "kwok",
            helm=bin_dir / f"helm-{versions['HELM_VERSION']}" / "helm",
        )

    def missing(self) -> list[Path]:
        """Binaries that are not built yet."""
        return [path for path in (self.kube, self.kwok, self.helm) if not path.is_file()]


@dataclass(frozen=True)
class NodePool:
    """A group of identical simulated nodes."""

    name: str
    count: int
    cpu: str
    memory: str
    gpus: int = 0
    gpu_product: str | None = None
    pods: str = "110"

    def node_names(self) -> list[str]:
        """Stable node names, so re-running `up` finds the nodes it made before."""
        return [f"kwok-{self.name}-{index}" for index in range(self.count)]


# Two GPU models that tenants can ask for: a training-class card and an inference-class card,
# matching the tiers in tenants/ (GPU model as advertised by nvidia.com/gpu.product).
A100 = "NVIDIA-A100-SXM4-80GB"
L4 = "NVIDIA-L4"


def default_node_pools() -> list[NodePool]:
    """4 GPU nodes with 8 GPUs each (2 × A100 80GB, 2 × L4) and 2 CPU-only nodes."""
    return [
        NodePool(name="a100", count=2, cpu="96", memory="1Ti", gpus=8, gpu_product=A100),
        NodePool(name="l4", count=2, cpu="48", memory="384Gi", gpus=8, gpu_product=L4),
        NodePool(name="cpu", count=2, cpu="32", memory="128Gi"),
    ]


_POOL_SPEC = re.compile(
    r"^(?P<name>[a-z0-9]([a-z0-9-]*[a-z0-9])?)=(?P<count>\d+)"
    r"(?::(?P<gpus>\d+)(?::(?P<product>[A-Za-z0-9._-]+))?)?$"
)


def parse_node_pools(spec: str) -> list[NodePool]:
    """Parse `SANDLADA_CLUSTER_NODES`, e.g. `a100=2:8:NVIDIA-A100-SXM4-80GB,l4=1:8:NVIDIA-L4,cpu=2`.

    Each comma-separated item is `pool=count[:gpus_per_node[:gpu_product]]`. GPU pools get the
    same CPU/memory as the default GPU nodes; pools without GPUs get the CPU node shape.
    """
    pools: list[NodePool] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        match = _POOL_SPEC.match(item)
        if match is None:
            raise ValueError(
                f"bad node pool {item!r}: expected pool=count[:gpus_per_node[:gpu_product]]"
            )
        gpus = int(match["gpus"] or 0)
        if gpus and not match["product"]:
            raise ValueError(f"node pool {item!r} has GPUs but no gpu_product")
        if gpus:
            pools.append(
                NodePool(
                    name=match["name"],
                    count=int(match["count"]),
                    cpu="64",
                    memory="512Gi",
                    gpus=gpus,
                    gpu_product=match["product"],
                )
            )
        else:
            pools.append(
                NodePool(name=match["name"], count=int(match["count"]), cpu="32", memory="128Gi")
            )
    if len({pool.name for pool in pools}) != len(pools):
        raise ValueError(f"node pool names repeat in {spec!r}")
    return pools


@dataclass(frozen=True)
class Ports:
    """Loopback ports of each component (see the module docstring)."""

    etcd_client: int = 12379
    etcd_peer: int = 12380
    apiserver: int = 16443
    controller_manager: int = 16257
    scheduler: int = 16259
    kwok: int = 16080


@dataclass(frozen=True)
class ClusterConfig:
    """Everything the launcher needs to know to bring the cluster up."""

    state_dir: Path = REPO_ROOT / "var" / "cluster"
    ports: Ports = field(default_factory=Ports)
    node_pools: list[NodePool] = field(default_factory=default_node_pools)
    host: str = "127.0.0.1"
    service_cidr: str = "10.96.0.0/16"
    # The first address of the service range is the in-cluster `kubernetes` service.
    service_ip: str = "10.96.0.1"
    pod_cidr: str = "10.244.0.0/16"
    cluster_name: str = "sandlada-local"

    @classmethod
    def from_env(cls) -> ClusterConfig:
        """Defaults, overridden by SANDLADA_CLUSTER_STATE_DIR and SANDLADA_CLUSTER_NODES."""
        state = os.environ.get("SANDLADA_CLUSTER_STATE_DIR")
        nodes = os.environ.get("SANDLADA_CLUSTER_NODES")
        return cls(
            state_dir=Path(state) if state else cls.state_dir,
            node_pools=parse_node_pools(nodes) if nodes else default_node_pools(),
        )

    @property
    def server(self) -> str:
        """The apiserver URL clients use."""
        return f"https://{self.host}:{self.ports.apiserver}"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig."""
        return self.state_dir / "kubeconfig"

    @property
    def pki_dir(self) -> Path:
        """Certificates and keys."""
        return self.state_dir / "pki"

    @property
    def log_dir(self) -> Path:
        """One log file per component."""
        return self.state_dir / "logs"

    @property
    def pid_dir(self) -> Path:
        """One pid file per component this launcher started."""
        return self.state_dir / "pids"

    @property
    def etcd_data_dir(self) -> Path:
        """etcd's data."""
        return self.state_dir / "etcd"
