"""Pure rendering of what the launcher writes and runs: kubeconfigs, command lines, node objects.

Kept free of I/O so unit tests can check the flags that matter (admission at defaults,
Node,RBAC authorization, service-account signing) without starting a process.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from infra.cluster.config import (
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    KWOK_NODE_ANNOTATION,
    POOL_LABEL,
    ClusterConfig,
    NodePool,
)

# Component names double as pid/log file names and as the multi-call binary's first argument.
ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
KWOK = "kwok"
COMPONENTS = (ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER, KWOK)

# Identities (client certificate CN/O) of each client of the apiserver. The component names are
# the ones the built-in RBAC bootstrap policy grants permissions to.
ADMIN_USER = ("kubernetes-admin", ("system:masters",))
CLIENT_IDENTITIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ADMIN_USER,
    CONTROLLER_MANAGER: ("system:kube-controller-manager", ()),
    SCHEDULER: ("system:kube-scheduler", ()),
    # kwok writes node status, leases and pod status for every simulated node: it acts as many
    # kubelets at once, which the Node authorizer cannot express, so it gets cluster-admin.
    KWOK: ("system:kwok-controller", ("system:masters",)),
}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(
    *, server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, cluster: str, user: str
) -> dict[str, Any]:
    """A kubeconfig with embedded credentials, so it can be copied around on its own."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(cert_pem),
                    "client-key-data": _b64(key_pem),
                },
            }
        ],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
    }


def etcd_args(config: ClusterConfig) -> list[str]:
    """etcd: a single member on loopback."""
    client = f"http://{config.host}:{config.ports.etcd_client}"
    peer = f"http://{config.host}:{config.ports.etcd_peer}"
    return [
        ETCD,
        "--name=sandlada",
        f"--data-dir={config.etcd_data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=sandlada={peer}",
        "--initial-cluster-state=new",
        # A throwaway development store: skipping fsync makes the apiserver's writes (and so
        # tests) much faster, at the cost of durability across a machine crash.
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def apiserver_args(config: ClusterConfig) -> list[str]:
    """kube-apiserver with admission plugins at their defaults and Node,RBAC authorization."""
    pki = config.pki_dir
    return [
        APISERVER,
        f"--etcd-servers=http://{config.host}:{config.ports.etcd_client}",
        f"--bind-address={config.host}",
        f"--advertise-address={config.host}",
        f"--secure-port={config.ports.apiserver}",
        f"--tls-cert-file={pki / 'serving.crt'}",
        f"--tls-private-key-file={pki / 'serving.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        # The front-proxy CA lets the apiserver vouch for users to the controller-manager's and
        # scheduler's delegated authentication (and to aggregated APIs), as on kubeadm clusters.
        f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
        f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
        "--authorization-mode=Node,RBAC",
        f"--service-cluster-ip-range={config.service_cidr}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        # Privileged pods are allowed cluster-wide so that Pod Security admission (per namespace)
        # is what refuses them, as on a production cluster.
        "--allow-privileged=true",
        # The `kubernetes` service cannot point at a loopback address; nothing in this cluster
        # reaches the apiserver through it (there is no pod network), so skip its reconciler.
        "--endpoint-reconciler-type=none",
        "--profiling=false",
    ]


def controller_manager_args(config: ClusterConfig) -> list[str]:
    """kube-controller-manager: signs service-account tokens and runs the default controllers."""
    pki = config.pki_dir
    kubeconfig_path = config.state_dir / f"{CONTROLLER_MANAGER}.kubeconfig"
    return [
        CONTROLLER_MANAGER,
        f"--kubeconfig={kubeconfig_path}",
        f"--authentication-kubeconfig={kubeconfig_path}",
        f"--authorization-kubeconfig={kubeconfig_path}",
        f"--bind-address={config.host}",
        f"--secure-port={config.ports.controller_manager}",
        f"--tls-cert-file={pki / 'serving.crt'}",
        f"--tls-private-key-file={pki / 'serving.key'}",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}",
        f"--cluster-signing-key-file={pki / 'ca.key'}",
        # Each controller uses its own service account, so RBAC applies to controllers too.
        "--use-service-account-credentials=true",
        f"--cluster-name={config.cluster_name}",
        f"--service-cluster-ip-range={config.service_cidr}",
        # One instance only: leader election would add seconds to every start for nothing.
        "--leader-elect=false",
        "--profiling=false",
        # The in-tree host-path provisioner backs the default StorageClass
        # (`storage_class_manifest`): notebooks' home volumes get a PersistentVolume without a
        # storage driver. Local only.
        "--enable-hostpath-provisioner=true",
    ]


def storage_class_manifest() -> dict[str, Any]:
    """The default StorageClass: host-path volumes made by the controller-manager (local only)."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": "standard",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "kubernetes.io/host-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


def scheduler_args(config: ClusterConfig) -> list[str]:
    """kube-scheduler with the default profile."""
    pki = config.pki_dir
    kubeconfig_path = config.state_dir / f"{SCHEDULER}.kubeconfig"
    return [
        SCHEDULER,
        f"--kubeconfig={kubeconfig_path}",
        f"--authentication-kubeconfig={kubeconfig_path}",
        f"--authorization-kubeconfig={kubeconfig_path}",
        f"--bind-address={config.host}",
        f"--secure-port={config.ports.scheduler}",
        f"--tls-cert-file={pki / 'serving.crt'}",
        f"--tls-private-key-file={pki / 'serving.key'}",
        "--leader-elect=false",
        "--profiling=false",
    ]


def kwok_args(config: ClusterConfig, stages: list[Path]) -> list[str]:
    """kwok managing the annotated simulated nodes, with our stage files as its configuration."""
    key, value = KWOK_NODE_ANNOTATION
    return [
        f"--kubeconfig={config.state_dir / f'{KWOK}.kubeconfig'}",
        *[f"--config={stage}" for stage in stages],
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={key}={value}",
        "--manage-nodes-with-label-selector=",
        f"--server-address={config.host}:{config.ports.kwok}",
        f"--cidr={config.pod_cidr}",
        f"--node-ip={config.host}",
        # kwok renews each node's Lease, so the node lifecycle controller keeps them Ready.
        "--node-lease-duration-seconds=40",
    ]


def node_manifest(pool: NodePool, name: str) -> dict[str, Any]:
    """A simulated Node with its capacity in status (kwok keeps what we set)."""
    capacity: dict[str, str] = {
        "cpu": pool.cpu,
        "memory": pool.memory,
        "pods": pool.pods,
        "ephemeral-storage": "1Ti",
    }
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": f"kwok-{pool.name}",
        POOL_LABEL: pool.name,
        "type": "kwok",
    }
    if pool.gpus:
        capacity[GPU_RESOURCE] = str(pool.gpus)
        labels[GPU_PRODUCT_LABEL] = pool.gpu_product or ""
        labels["nvidia.com/gpu.count"] = str(pool.gpus)
        labels["nvidia.com/gpu.present"] = "true"
    key, value = KWOK_NODE_ANNOTATION
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {},
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }


def node_manifests(pools: list[NodePool]) -> list[dict[str, Any]]:
    """Every simulated Node of every pool."""
    return [node_manifest(pool, name) for pool in pools for name in pool.node_names()]
