"""All Kubernetes I/O of the control plane, behind one class.

The official ``kubernetes`` client, authenticated from a kubeconfig file. Tenant resources are
written with server-side apply under the field manager ``sandlada-controlplane``: the control
plane owns ``spec``, the operator owns ``status``, and neither can clobber the other. Every
client error becomes a :class:`~controlplane.errors.SandladaError` a person can act on: an
unreachable apiserver (connection refused, timeout, 5xx) is a 503, anything else a 502 naming
what the apiserver said.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from controlplane.errors import ConflictError, SandladaError, ServiceUnavailableError
from controlplane.messages import Message, message
from tenants.resource import GROUP, PLURAL, VERSION, Tenant

FIELD_MANAGER = "sandlada-controlplane"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
_APPLY = "application/apply-patch+yaml"

T = TypeVar("T")


class ClusterError(SandladaError):
    """The apiserver refused a call for a reason other than being unavailable."""

    status_code = 502
    code = "cluster_error"


class ClusterUnavailableError(ServiceUnavailableError):
    """The apiserver cannot be reached (or the control plane has no cluster configured)."""

    code = "cluster_unavailable"


class ClusterNotConfiguredError(ConflictError):
    """The control plane runs without a cluster, so cluster actions cannot be taken (409)."""

    code = "cluster_not_configured"

    def __init__(self, detail: str | Message | None = None) -> None:
        # Callers pass NOT_CONFIGURED_MESSAGE (the English text) or nothing: both mean the
        # catalogue's message, so the response is in the caller's language.
        if detail is None or detail == NOT_CONFIGURED_MESSAGE:
            detail = NOT_CONFIGURED
        super().__init__(detail)


NOT_CONFIGURED = message("cluster.not_configured")
# Both languages in one plain text, for places that cannot render per reader: logs, the CLI and
# tenancy.lifecycle's cluster condition (which could use NOT_CONFIGURED.render(language)).
NOT_CONFIGURED_MESSAGE = f"{NOT_CONFIGURED.render('en')} / {NOT_CONFIGURED.render('sv')}"


def _call(what: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except ApiException as exc:
        if exc.status is None or exc.status == 0 or exc.status >= 500:
            raise ClusterUnavailableError(
                message("cluster.unavailable", what=what, status=exc.status, reason=exc.reason)
            ) from exc
        raise ClusterError(
            message("cluster.refused", what=what, status=exc.status, reason=exc.reason)
        ) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ClusterUnavailableError(
            message("cluster.unreachable", what=what, error=type(exc).__name__)
        ) from exc


class TenantCluster:
    """Tenant resources and node capacity on one cluster."""

    def __init__(self, kubeconfig: Path, *, timeout: float = 5.0) -> None:
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), client_configuration=configuration
        )
        # Fail fast: an approval waits on these calls, and urllib3's default of three retries
        # would turn a refused connection into seconds of waiting before the 503.
        configuration.retries = 0
        self.api_client = client.ApiClient(configuration)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.timeout = timeout

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]

    def apply_tenant(self, body: dict[str, Any]) -> None:
        """Create or update a Tenant resource (server-side apply, forced for our fields)."""
        name = body["metadata"]["name"]
        _call(
            f"apply Tenant {name}",
            lambda: self.custom.patch_cluster_custom_object(
                GROUP,
                VERSION,
                PLURAL,
                name,
                body,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=_APPLY,
                _request_timeout=self.timeout,
            ),
        )

    def get_tenant(self, name: str) -> Tenant | None:
        """The Tenant resource, or None when it does not exist."""
        try:
            raw = self.custom.get_cluster_custom_object(
                GROUP, VERSION, PLURAL, name, _request_timeout=self.timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return Tenant.model_validate(raw)

    def read_tenant(self, name: str) -> Tenant | None:
        return _call(f"read Tenant {name}", lambda: self.get_tenant(name))

    def list_tenants(self) -> dict[str, Tenant]:
        """Every Tenant resource by name (one list call, for the status sync)."""
        raw: Any = _call(
            "list Tenants",
            lambda: self.custom.list_cluster_custom_object(
                GROUP, VERSION, PLURAL, _request_timeout=self.timeout
            ),
        )
        tenants = {}
        for item in raw.get("items", []):
            tenant = Tenant.model_validate(item)
            tenants[tenant.spec.slug] = tenant
        return tenants

    def list_tenants_versioned(self) -> tuple[dict[str, Tenant], str]:
        """Every Tenant resource by name and the list's resourceVersion (to watch from)."""
        raw: Any = _call(
            "list Tenants",
            lambda: self.custom.list_cluster_custom_object(
                GROUP, VERSION, PLURAL, _request_timeout=self.timeout
            ),
        )
        tenants = {}
        for item in raw.get("items", []):
            tenant = Tenant.model_validate(item)
            tenants[tenant.spec.slug] = tenant
        return tenants, str(raw["metadata"]["resourceVersion"])

    def watch_tenants(self, resource_version: str, *, timeout_seconds: int) -> TenantWatch:
        """A watch on Tenant resources from ``resource_version`` (with bookmarks).

        The apiserver ends it after ``timeout_seconds``; :meth:`TenantWatch.close` ends it
        early from another thread.
        """
        response = _call(
            "watch Tenants",
            lambda: self.custom.list_cluster_custom_object(
                GROUP,
                VERSION,
                PLURAL,
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout_seconds,
                _preload_content=False,
                # Connect timeout only; reads wait for events until the server's timeout.
                _request_timeout=(self.timeout, timeout_seconds + self.timeout),
            ),
        )
        return TenantWatch(response)

    def delete_tenant(self, name: str) -> bool:
        """Ask for the Tenant's deletion (the operator's finalizer removes its namespace).

        True if it existed; deleting one already gone is not an error.
        """

        def delete() -> bool:
            try:
                self.custom.delete_cluster_custom_object(
                    GROUP, VERSION, PLURAL, name, _request_timeout=self.timeout
                )
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
            return True

        return _call(f"delete Tenant {name}", delete)

    def gpu_capacity(self) -> dict[str, int]:
        """Allocatable ``nvidia.com/gpu`` summed per ``nvidia.com/gpu.product`` over all nodes."""
        nodes = _call(
            "list nodes",
            lambda: self.core.list_node(
                label_selector=GPU_PRODUCT_LABEL, _request_timeout=self.timeout
            ),
        )
        return gpus_by_model(
            [
                (node.metadata.labels or {}, node.status.allocatable or {})
                for node in nodes.items
                if node.metadata and node.status and not (node.spec and node.spec.unschedulable)
            ]
        )


class TenantWatch:
    """The events of one watch request: ``(type, object)`` pairs as the apiserver sends them."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        try:
            for line in iter_resp_lines(self._response):  # type: ignore[no-untyped-call]
                event = json.loads(line)
                yield str(event.get("type")), event.get("object") or {}
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise ClusterUnavailableError(
                message("cluster.watch_ended", error=type(exc).__name__)
            ) from exc

    def close(self) -> None:
        self._response.close()
        self._response.release_conn()


def gpus_by_model(nodes: list[tuple[dict[str, str], dict[str, str]]]) -> dict[str, int]:
    """Sum allocatable GPUs per product label; ``nodes`` are (labels, allocatable) pairs."""
    totals: dict[str, int] = defaultdict(int)
    for labels, allocatable in nodes:
        model = labels.get(GPU_PRODUCT_LABEL)
        count = allocatable.get(GPU_RESOURCE)
        if model and count is not None:
            totals[model] += int(count)
    return dict(sorted(totals.items()))


def connect(kubeconfig: Path | None, *, timeout: float = 5.0) -> TenantCluster | None:
    """The cluster named by ``kubeconfig``, or None when none is configured (file absent)."""
    if kubeconfig is None or not kubeconfig.is_file():
        return None
    return TenantCluster(kubeconfig, timeout=timeout)
