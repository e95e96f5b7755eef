"""All Kubernetes I/O of the operators, behind one class that speaks our own error type.

Handlers never see `ApiException`: every call goes through `_call`, which turns it (and
connection errors) into `KubernetesError` with ``transient`` telling whether retrying can help.
Objects are written with server-side apply under one field manager, so a re-apply takes back
any field someone else changed and a no-op apply writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tenants.resource import GROUP, PLURAL, VERSION

FIELD_MANAGER = "sandlada-operator"
_APPLY = "application/apply-patch+yaml"
_MERGE = "application/merge-patch+json"
# Status codes where a later retry can succeed: conflicts, throttling, apiserver trouble, and
# 404/403 for objects in a namespace that is still being created or being torn down.
_TRANSIENT = {404, 409, 429, 500, 502, 503, 504}

T = TypeVar("T")


class KubernetesError(Exception):
    """A failed Kubernetes API call, with whether it is worth retrying."""

    def __init__(self, message: str, *, status: int | None, transient: bool) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


def _call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ApiException as exc:
        reason = exc.reason or ""
        body = exc.body.decode() if isinstance(exc.body, bytes) else (exc.body or "")
        terminating = exc.status == 403 and "being terminated" in body
        raise KubernetesError(
            f"{what}: {exc.status} {reason} {body[:500]}".strip(),
            status=exc.status,
            transient=exc.status in _TRANSIENT or terminating,
        ) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise KubernetesError(f"{what}: {exc}", status=None, transient=True) from exc


@dataclass(frozen=True)
class NamespaceState:
    """A namespace that still exists, and what its deletion is waiting for."""

    phase: str
    message: str


def api_client_from_environment(pool_size: int = 32) -> client.ApiClient:
    """An API client from the in-cluster service account, else ``KUBECONFIG``."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    # kopf runs sync handlers in a thread pool; each thread needs its own connection.
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)


class KubernetesStorage:
    """Server-side apply and the few reads and deletes the Tenant operator needs."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api_client)
        self._net = client.NetworkingV1Api(api_client)
        self._rbac = client.RbacAuthorizationV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._ext = client.ApiextensionsV1Api(api_client)
        self._version = client.VersionApi(api_client)

    def apply(self, obj: dict[str, Any]) -> None:
        """Server-side apply ``obj`` (force: our field manager owns what it sets)."""
        kind = obj["kind"]
        name = obj["metadata"]["name"]
        namespace = obj["metadata"].get("namespace", "")
        kwargs: dict[str, Any] = {
            "field_manager": FIELD_MANAGER,
            "force": True,
            "_content_type": _APPLY,
        }
        appliers: dict[str, Callable[[], object]] = {
            "Namespace": lambda: self._core.patch_namespace(name, obj, **kwargs),
            "ResourceQuota": lambda: self._core.patch_namespaced_resource_quota(
                name, namespace, obj, **kwargs
            ),
            "LimitRange": lambda: self._core.patch_namespaced_limit_range(
                name, namespace, obj, **kwargs
            ),
            "ServiceAccount": lambda: self._core.patch_namespaced_service_account(
                name, namespace, obj, **kwargs
            ),
            "NetworkPolicy": lambda: self._net.patch_namespaced_network_policy(
                name, namespace, obj, **kwargs
            ),
            "Role": lambda: self._rbac.patch_namespaced_role(name, namespace, obj, **kwargs),
            "RoleBinding": lambda: self._rbac.patch_namespaced_role_binding(
                name, namespace, obj, **kwargs
            ),
            "CustomResourceDefinition": lambda: self._ext.patch_custom_resource_definition(
                name, obj, **kwargs
            ),
        }
        if kind not in appliers:
            raise KubernetesError(f"cannot apply kind {kind}", status=None, transient=False)
        _call(f"apply {kind} {namespace}/{name}", appliers[kind])

    def list_network_policy_names(self, namespace: str, label_selector: str) -> list[str]:
        """Names of the network policies in ``namespace`` matching ``label_selector``."""
        result = _call(
            f"list network policies in {namespace}",
            lambda: self._net.list_namespaced_network_policy(
                namespace, label_selector=label_selector
            ),
        )
        return [str(item.metadata.name) for item in result.items if item.metadata]

    def delete_network_policy(self, namespace: str, name: str) -> None:
        """Delete a network policy; already gone is fine."""
        try:
            _call(
                f"delete network policy {namespace}/{name}",
                lambda: self._net.delete_namespaced_network_policy(name, namespace),
            )
        except KubernetesError as exc:
            if exc.status != 404:
                raise

    def delete_pods(self, namespace: str) -> None:
        """Delete every pod in ``namespace`` (suspension: the PVCs and their data stay)."""
        _call(
            f"delete pods in {namespace}",
            lambda: self._core.delete_collection_namespaced_pod(namespace),
        )

    def delete_namespace(self, name: str) -> NamespaceState | None:
        """Ask for ``name`` to be deleted; `None` once it is gone, else what it waits for."""
        try:
            _call(f"delete namespace {name}", lambda: self._core.delete_namespace(name))
            namespace = _call(f"read namespace {name}", lambda: self._core.read_namespace(name))
        except KubernetesError as exc:
            if exc.status == 404:
                return None
            raise
        conditions = (namespace.status.conditions if namespace.status else None) or []
        waiting = [c.message for c in conditions if c.status == "True" and c.message]
        phase = (namespace.status.phase if namespace.status else None) or "Unknown"
        return NamespaceState(phase=phase, message="; ".join(waiting))

    def patch_tenant_status(self, name: str, status: dict[str, Any]) -> None:
        """Merge ``status`` into the Tenant's status subresource."""
        _call(
            f"patch status of tenant {name}",
            lambda: self._custom.patch_cluster_custom_object_status(
                GROUP, VERSION, PLURAL, name, {"status": status}, _content_type=_MERGE
            ),
        )

    def install_crd(self, crd: dict[str, Any], timeout: float = 30.0) -> None:
        """Apply ``crd`` and wait until the apiserver serves it (condition Established)."""
        self.apply(crd)
        name = crd["metadata"]["name"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = _call(
                f"read CRD {name}", lambda: self._ext.read_custom_resource_definition(name)
            )
            conditions = (live.status.conditions if live.status else None) or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                return
            time.sleep(0.2)  # polling the apiserver; there is no event to await here
        raise KubernetesError(f"CRD {name} not established", status=None, transient=True)

    def server_version(self) -> str:
        """The apiserver's version (``git_version``): a cheap liveness check."""
        info = _call("read version", self._version.get_code)
        return str(info.git_version)
