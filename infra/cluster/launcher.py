"""Bring the local Kubernetes cluster up and down: certificates, processes, nodes, readiness.

`up` is idempotent: components whose recorded process is alive are left alone, missing ones are
started, and when everything is already running it only checks health (a fast no-op). Every child
runs in its own session with its output in var/cluster/logs/<component>.log and stdin closed, so
it never holds the caller's terminal or a CI pipe open. `down` stops exactly the processes named in
var/cluster/pids/ (after checking each pid still runs our binary) and removes the state directory.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from infra.cluster import pki
from infra.cluster.config import (
    CLUSTER_DIR,
    KWOK_NODE_ANNOTATION,
    SETUP_SCRIPT,
    Binaries,
    ClusterConfig,
)
from infra.cluster.render import (
    APISERVER,
    CLIENT_IDENTITIES,
    COMPONENTS,
    CONTROLLER_MANAGER,
    ETCD,
    KWOK,
    SCHEDULER,
    apiserver_args,
    controller_manager_args,
    etcd_args,
    kubeconfig,
    kwok_args,
    node_manifests,
    scheduler_args,
    storage_class_manifest,
)
from infra.process import pid_alive as _alive

STAGES = (CLUSTER_DIR / "stages" / "node.yaml", CLUSTER_DIR / "stages" / "pod.yaml")
DEFAULT_TIMEOUT = 120.0


class ClusterError(RuntimeError):
    """The cluster could not be brought to the wanted state; the message says what to look at."""


@dataclass(frozen=True)
class ClusterInfo:
    """What a client needs to use the running cluster."""

    kubeconfig: Path
    server: str
    state_dir: Path
    ca_cert: Path
    nodes: tuple[str, ...]


def _say(message: str) -> None:
    # Progress goes to stderr so `sandlada dev cluster env` output stays eval-able.
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


class Launcher:
    """Starts, checks and stops the components described by a ClusterConfig."""

    def __init__(self, config: ClusterConfig | None = None, binaries: Binaries | None = None):
        self.config = config or ClusterConfig.from_env()
        self._binaries = binaries
        # Popen objects of children started by this process, kept so they are not reaped as
        # "still running" garbage; the processes themselves outlive us on purpose.
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # ---- binaries -----------------------------------------------------------------------
    @property
    def binaries(self) -> Binaries:
        """The built executables, building them first (via the setup script) when missing."""
        if self._binaries is None:
            binaries = Binaries.locate()
            if binaries.missing():
                _say("binaries not built yet; running infra/setup.d/10-cluster.sh")
                subprocess.run(["bash", str(SETUP_SCRIPT)], check=True, stdin=subprocess.DEVNULL)
            self._binaries = binaries
        return self._binaries

    # ---- files --------------------------------------------------------------------------
    def info(self) -> ClusterInfo:
        """Where the running cluster is."""
        return ClusterInfo(
            kubeconfig=self.config.kubeconfig,
            server=self.config.server,
            state_dir=self.config.state_dir,
            ca_cert=self.config.pki_dir / "ca.crt",
            nodes=tuple(n["metadata"]["name"] for n in node_manifests(self.config.node_pools)),
        )

    def ensure_pki(self) -> None:
        """Create the CA, certificates, keys and kubeconfigs unless they exist already."""
        d = self.config.pki_dir
        if (d / "ca.crt").exists() and self.config.kubeconfig.exists():
            return
        _say(f"generating certificates in {d}")
        d.mkdir(parents=True, exist_ok=True)
        ca = pki.make_ca()
        serving = pki.make_serving_cert(
            ca,
            dns_names=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            ips=[self.config.host, self.config.service_ip],
        )
        sa_key = pki.make_service_account_key()
        # A CA of its own: any certificate it signs may assert identities in request headers.
        front_proxy_ca = pki.make_ca("sandlada-front-proxy-ca")
        front_proxy = pki.make_client_cert(front_proxy_ca, "front-proxy-client")
        (d / "front-proxy-ca.crt").write_bytes(front_proxy_ca.cert_pem())
        pki.write_secret(d / "front-proxy-client.key", front_proxy.key_pem())
        (d / "front-proxy-client.crt").write_bytes(front_proxy.cert_pem())
        pki.write_secret(d / "ca.key", ca.key_pem())
        (d / "ca.crt").write_bytes(ca.cert_pem())
        pki.write_secret(d / "serving.key", serving.key_pem())
        (d / "serving.crt").write_bytes(serving.cert_pem())
        pki.write_secret(d / "sa.key", pki.private_key_pem(sa_key))
        (d / "sa.pub").write_bytes(pki.public_key_pem(sa_key))
        for name, (user, groups) in CLIENT_IDENTITIES.items():
            client = pki.make_client_cert(ca, user, groups)
            config = kubeconfig(
                server=self.config.server,
                ca_pem=ca.cert_pem(),
                cert_pem=client.cert_pem(),
                key_pem=client.key_pem(),
                cluster=self.config.cluster_name,
                user=user,
            )
            path = (
                self.config.kubeconfig
                if name == "admin"
                else self.config.state_dir / f"{name}.kubeconfig"
            )
            pki.write_secret(path, yaml.safe_dump(config).encode())

    # ---- processes ----------------------------------------------------------------------
    def _pid_file(self, component: str) -> Path:
        return self.config.pid_dir / f"{component}.pid"

    def _command(self, component: str) -> list[str]:
        kube = str(self.binaries.kube)
        if component == ETCD:
            return [kube, *etcd_args(self.config)]
        if component == APISERVER:
            return [kube, *apiserver_args(self.config)]
        if component == CONTROLLER_MANAGER:
            return [kube, *controller_manager_args(self.config)]
        if component == SCHEDULER:
            return [kube, *scheduler_args(self.config)]
        if component == KWOK:
            return [str(self.binaries.kwok), *kwok_args(self.config, list(STAGES))]
        raise ValueError(component)

    def running_pid(self, component: str) -> int | None:
        """The pid recorded for a component if that process is alive and is the one we started."""
        child = self._children.get(component)
        if child is not None:
            # Our own child: right after fork its /proc cmdline is still ours, not the component's.
            return child.pid if child.poll() is None else None
        try:
            recorded_pid, recorded_exe, *_ = self._pid_file(component).read_text().split("\n")
            pid = int(recorded_pid)
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        # A zombie (exited, not yet reaped) has an empty command line and is not running.
        if len(cmdline) < 2 or stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return None
        # Pids are recycled: only trust the file while the pid still runs the executable we
        # started, in the component's role.
        exe = cmdline[0].decode(errors="replace")
        role = Path(exe).name if component == KWOK else cmdline[1].decode(errors="replace")
        if exe != recorded_exe or role != component:
            return None
        return pid

    def _start(self, component: str) -> None:
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        self.config.pid_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.config.log_dir / f"{component}.log"
        command = self._command(component)
        with log_path.open("ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                cwd=self.config.state_dir,
            )
        self._children[component] = process
        self._pid_file(component).write_text(f"{process.pid}\n{command[0]}\n")
        _say(f"started {component} (pid {process.pid}, log {log_path})")

    def _check_port_free(self, component: str, port: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((self.config.host, port)) == 0:
                raise ClusterError(
                    f"cannot start {component}: {self.config.host}:{port} is taken by a process "
                    "this launcher did not start; stop it or change the port in "
                    "infra/cluster/config.py"
                )

    # ---- health -------------------------------------------------------------------------
    def _ssl_context(self, client: bool) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.config.pki_dir / "ca.crt"))
        if client:
            admin = self.config.state_dir / "admin-client"
            context.load_cert_chain(admin.with_suffix(".crt"), admin.with_suffix(".key"))
        return context

    def _get(self, url: str, client: bool = False) -> bool:
        context = self._ssl_context(client) if url.startswith("https") else None
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310 (loopback URLs we build)
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError, ssl.SSLError):
            return False

    def healthy(self, component: str) -> bool:
        """Whether a component answers its health endpoint."""
        host, ports = self.config.host, self.config.ports
        if component == ETCD:
            return self._get(f"http://{host}:{ports.etcd_client}/health")
        if component == APISERVER:
            return self._get(f"https://{host}:{ports.apiserver}/readyz", client=True)
        if component == CONTROLLER_MANAGER:
            return self._get(f"https://{host}:{ports.controller_manager}/healthz")
        if component == SCHEDULER:
            return self._get(f"https://{host}:{ports.scheduler}/healthz")
        if component == KWOK:
            return self._get(f"http://{host}:{ports.kwok}/healthz")
        raise ValueError(component)

    def _port(self, component: str) -> int:
        ports = self.config.ports
        return {
            ETCD: ports.etcd_client,
            APISERVER: ports.apiserver,
            CONTROLLER_MANAGER: ports.controller_manager,
            SCHEDULER: ports.scheduler,
            KWOK: ports.kwok,
        }[component]

    def _wait(self, what: str, check: Callable[[], bool], timeout: float, component: str) -> None:
        start = time.monotonic()
        last_report = start
        while not check():
            now = time.monotonic()
            if self.running_pid(component) is None:
                raise ClusterError(f"{component} exited; see {self._log(component)}")
            if now - start > timeout:
                raise ClusterError(
                    f"timed out after {timeout:.0f}s waiting for {what}; see {self._log(component)}"
                )
            if now - last_report >= 5:
                _say(f"waiting for {what} ({now - start:.0f}s)")
                last_report = now
            time.sleep(0.2)

    def _log(self, component: str) -> Path:
        return self.config.log_dir / f"{component}.log"

    # ---- up / down / status -------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Several test sessions (or engineers) share one checkout's var/cluster: serialise up and
        # down so two of them never start a second etcd or tear down a cluster being brought up.
        lock_path = self.config.state_dir.parent / f".{self.config.state_dir.name}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                _say(f"another launcher holds {lock_path}; waiting for it")
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def up(self, timeout: float = DEFAULT_TIMEOUT) -> ClusterInfo:
        """Bring every component up (starting only what is not running) and wait until ready."""
        _ = self.binaries  # build first, so a cold build is not counted against the timeout
        with self._locked():
            return self._up(timeout)

    def acquire(self, timeout: float = DEFAULT_TIMEOUT, auto_stop: bool = True) -> ClusterInfo:
        """`up` for a test session: record this process as a user of the cluster.

        When the cluster was not up before and `auto_stop` is set, the last user to `release` it
        stops it; a cluster someone started by hand (`sandlada dev cluster up`) is never stopped.
        """
        _ = self.binaries
        with self._locked():
            was_up = self.is_up()
            info = self._up(timeout)
            if not was_up and auto_stop:
                (self.config.state_dir / "auto-stop").touch()
            users = self.config.state_dir / "users"
            users.mkdir(exist_ok=True)
            (users / str(os.getpid())).touch()
            return info

    def users(self) -> list[int]:
        """Pids of live test sessions that acquired the cluster (other than this process)."""
        users = self.config.state_dir / "users"
        if not users.is_dir():
            return []
        return sorted(
            int(u.name)
            for u in users.iterdir()
            if u.name.isdigit() and int(u.name) != os.getpid() and _alive(int(u.name))
        )

    def release(self) -> None:
        """Drop this process from the users; stop the cluster if it was the last auto-stop user."""
        with self._locked():
            users = self.config.state_dir / "users"
            (users / str(os.getpid())).unlink(missing_ok=True)
            if not self.users() and (self.config.state_dir / "auto-stop").exists():
                self._down(20.0)

    def _up(self, timeout: float) -> ClusterInfo:
        start = time.monotonic()
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self.ensure_pki()
        self._write_admin_client_files()
        # etcd, then the apiserver, then its clients together: each phase needs the previous one.
        for phase in ((ETCD,), (APISERVER,), (CONTROLLER_MANAGER, SCHEDULER, KWOK)):
            for component in phase:
                if self.running_pid(component) is None:
                    self._check_port_free(component, self._port(component))
                    self._start(component)
            for component in phase:
                self._wait(
                    f"{component} to be healthy",
                    lambda c=component: self.healthy(c),  # type: ignore[misc]
                    timeout,
                    component,
                )
        self._ensure_nodes(timeout)
        self._ensure_storage_class()
        self._wait_for_default_service_account(timeout)
        _say(f"ready in {time.monotonic() - start:.1f}s; kubeconfig: {self.config.kubeconfig}")
        return self.info()

    def _write_admin_client_files(self) -> None:
        # The health probe of the apiserver authenticates as admin; urllib wants PEM files.
        config = yaml.safe_load(self.config.kubeconfig.read_text())
        user = config["users"][0]["user"]
        admin = self.config.state_dir / "admin-client"
        admin.with_suffix(".crt").write_bytes(base64.b64decode(user["client-certificate-data"]))
        pki.write_secret(admin.with_suffix(".key"), base64.b64decode(user["client-key-data"]))

    def _core(self) -> Any:
        return k8s_client.CoreV1Api(
            k8s_config.new_client_from_config(config_file=str(self.config.kubeconfig))  # type: ignore[no-untyped-call]
        )

    def _ensure_nodes(self, timeout: float) -> None:
        core = self._core()
        wanted = node_manifests(self.config.node_pools)
        key, value = KWOK_NODE_ANNOTATION
        existing = {
            node.metadata.name
            for node in core.list_node().items
            if (node.metadata.annotations or {}).get(key) == value
        }
        for manifest in wanted:
            name = manifest["metadata"]["name"]
            if name in existing:
                continue
            try:
                core.create_node(manifest)
            except ApiException as error:
                if error.status != 409:
                    raise
        # Nodes of pools that were removed from the configuration go away too.
        for name in existing - {m["metadata"]["name"] for m in wanted}:
            core.delete_node(name)
        names = {m["metadata"]["name"] for m in wanted}

        def all_ready() -> bool:
            ready = {
                node.metadata.name
                for node in core.list_node().items
                if any(
                    c.type == "Ready" and c.status == "True" for c in (node.status.conditions or [])
                )
            }
            return names <= ready

        self._wait(f"{len(names)} simulated nodes to be Ready", all_ready, timeout, KWOK)

    def _ensure_storage_class(self) -> None:
        manifest = storage_class_manifest()
        api = k8s_client.StorageV1Api(
            k8s_config.new_client_from_config(config_file=str(self.config.kubeconfig))  # type: ignore[no-untyped-call]
        )
        try:
            # The client serialises plain dicts as they are.
            api.create_storage_class(manifest)  # type: ignore[arg-type]
        except ApiException as error:
            if error.status != 409:
                raise

    def _wait_for_default_service_account(self, timeout: float) -> None:
        core = self._core()

        def exists() -> bool:
            try:
                core.read_namespaced_service_account("default", "default")
            except ApiException:
                return False
            return True

        # The service-account controller creating `default` proves the controller-manager works.
        self._wait("the default service account", exists, timeout, CONTROLLER_MANAGER)

    def status(self) -> dict[str, str]:
        """Each component's state: `healthy`, `unhealthy (pid N)` or `stopped`."""
        result: dict[str, str] = {}
        for component in COMPONENTS:
            pid = self.running_pid(component)
            if pid is None:
                result[component] = "stopped"
            elif self.healthy(component):
                result[component] = f"healthy (pid {pid})"
            else:
                result[component] = f"unhealthy (pid {pid})"
        return result

    def is_up(self) -> bool:
        """Whether every component runs and answers its health check."""
        return (
            all(self.running_pid(c) is not None and self.healthy(c) for c in COMPONENTS)
            and self.config.kubeconfig.exists()
        )

    def down(self, timeout: float = 20.0, force: bool = True) -> None:
        """Stop the processes this launcher started (reverse order) and remove the state.

        Without `force`, refuse while other test sessions use the cluster (checked under the
        lock, so a session that is just acquiring it counts).
        """
        with self._locked():
            users = self.users()
            if users and not force:
                raise ClusterError(
                    f"test sessions (pids {users}) are using the cluster; use --force to stop it"
                )
            self._down(timeout)

    def _down(self, timeout: float) -> None:
        for component in reversed(COMPONENTS):
            pid = self.running_pid(component)
            if pid is None:
                continue
            _say(f"stopping {component} (pid {pid})")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.running_pid(component) == pid and time.monotonic() < deadline:
                self._reap()
                time.sleep(0.1)
            if self.running_pid(component) == pid:
                _say(f"{component} ignored SIGTERM; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self._reap()
        if self.config.state_dir.exists():
            shutil.rmtree(self.config.state_dir)
            _say(f"removed {self.config.state_dir}")

    def _reap(self) -> None:
        for component, process in list(self._children.items()):
            if process.poll() is not None:
                del self._children[component]


@contextlib.contextmanager
def running(config: ClusterConfig | None = None) -> Iterator[ClusterInfo]:
    """The cluster for the duration of a block, shared with other users (see `acquire`)."""
    launcher = Launcher(config)
    info = launcher.acquire()
    try:
        yield info
    finally:
        launcher.release()
