"""Kubernetes I/O of the notebooks API: Notebook resources, and what the namespace uses.

Uses the control plane's one cluster connection (`TenantCluster`: its client, timeouts and
error mapping). The calls that have answers a person can act on are mapped here: creating a
Notebook that exists is 409, one the apiserver's ResourceQuota refuses is 409 with the quota's
words, a namespace that does not exist (tenant not provisioned) is 409; anything else goes
through the cluster module's mapping (unreachable → 503, other refusals → 502).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.utils.quantity import parse_quantity

from controlplane.cluster.storage import TenantCluster, _call
from controlplane.errors import ConflictError
from controlplane.messages import message
from controlplane.notebooks.quota import (
    GIB,
    NotebookUse,
    PodUse,
    QuotaExceededError,
    Requests,
    effective_pod_requests,
)
from tenants.notebook import NOTEBOOK_LABEL, PLURAL, NotebookSpec, tenant_of
from tenants.resource import GROUP, VERSION

_FINISHED = {"Succeeded", "Failed"}


class NotebookExistsError(ConflictError):
    code = "notebook_exists"


class NamespaceMissingError(ConflictError):
    code = "tenant_not_ready"


def _quantity(value: object) -> Decimal:
    return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]


def container_requests(requests: dict[str, Any] | None) -> Requests:
    """Requests of one container from its ``resources.requests`` mapping."""
    requests = requests or {}
    extended = {
        name: _quantity(value) for name, value in requests.items() if name.startswith("nvidia.com/")
    }
    return Requests(
        cpu=_quantity(requests.get("cpu", 0)),
        memory_gib=_quantity(requests.get("memory", 0)) / GIB,
        extended=extended,
    )


def spec_requests(spec: NotebookSpec) -> Requests:
    """What a notebook's pod will request, and its home volume."""
    return Requests(
        cpu=Decimal(str(spec.cpu)),
        memory_gib=Decimal(str(spec.memory_gib)),
        storage_gib=Decimal(spec.storage_gib),
        extended={spec.gpu_resource: Decimal(spec.gpus)} if spec.gpus else {},
    )


def _refused_by_quota(exc: ApiException) -> str | None:
    body = exc.body.decode() if isinstance(exc.body, bytes) else str(exc.body or "")
    if exc.status == 403 and "exceeded quota" in body:
        # The apiserver's own words: "exceeded quota: <name>, requested: …, used: …, limited: …"
        start = body.find("exceeded quota")
        return body[start : body.find('"', start)] if '"' in body[start:] else body[start:]
    return None


class NotebookStore:
    """Notebooks and the namespace's usage through the control plane's cluster client."""

    def __init__(self, cluster: TenantCluster) -> None:
        self.custom = cluster.custom
        self.core: client.CoreV1Api = cluster.core
        self.timeout = cluster.timeout

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            try:
                raw: Any = self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, _request_timeout=self.timeout
                )
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            return dict(raw)

        return _call(f"read Notebook {namespace}/{name}", read)

    def notebooks(self, namespace: str) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            try:
                raw: Any = self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, _request_timeout=self.timeout
                )
            except ApiException as exc:
                if exc.status == 404:  # no namespace (yet): no notebooks
                    return []
                raise
            return list(raw.get("items", []))

        return _call(f"list Notebooks in {namespace}", read)

    def create(self, body: dict[str, Any], *, slug: str) -> dict[str, Any]:
        namespace = body["metadata"]["namespace"]
        name = body["metadata"]["name"]

        def create() -> dict[str, Any]:
            try:
                raw: Any = self.custom.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, body, _request_timeout=self.timeout
                )
            except ApiException as exc:
                if exc.status == 409:
                    raise NotebookExistsError(
                        message("notebooks.exists", name=name, slug=slug, phase="?")
                    ) from exc
                if exc.status == 404:
                    raise NamespaceMissingError(
                        message("notebooks.no_namespace", slug=slug)
                    ) from exc
                refusal = _refused_by_quota(exc)
                if refusal is not None:
                    raise QuotaExceededError(
                        message("notebooks.quota_apiserver", reason=refusal)
                    ) from exc
                raise
            return dict(raw)

        return _call(f"create Notebook {namespace}/{name}", create)

    def replace_spec(self, existing: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        """Give a Notebook a whole new spec (a stopped one started again).

        A JSON merge patch (keys the new spec lacks are set to null, so nothing of the old
        profile is left), not a replace: the operators annotate Notebooks all the time, and a
        replace would lose to them on resourceVersion.
        """
        meta = existing["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        old = existing.get("spec") or {}
        patch = {"spec": {**dict.fromkeys(old), **spec}}

        def replace() -> dict[str, Any]:
            try:
                raw: Any = self.custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    PLURAL,
                    name,
                    patch,
                    _content_type="application/merge-patch+json",
                    _request_timeout=self.timeout,
                )
            except ApiException as exc:
                if exc.status == 404:  # deleted since we read it
                    raise NotebookExistsError(
                        message("notebooks.changed", name=name, slug=tenant_of(namespace))
                    ) from exc
                raise
            return dict(raw)

        return _call(f"restart Notebook {namespace}/{name}", replace)

    def delete(self, namespace: str, name: str) -> bool:
        """Delete a Notebook (its pod, service and token go with it; the home volume stays)."""

        def delete() -> bool:
            try:
                self.custom.delete_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, _request_timeout=self.timeout
                )
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
            return True

        return _call(f"delete Notebook {namespace}/{name}", delete)

    def pods(self, namespace: str) -> list[PodUse]:
        pods = _call(
            f"list pods in {namespace}",
            lambda: self.core.list_namespaced_pod(namespace, _request_timeout=self.timeout),
        )
        uses = []
        for pod in pods.items:
            spec = pod.spec
            if spec is None:
                continue
            containers = [container_requests(_requests(c)) for c in spec.containers or []]
            inits = [container_requests(_requests(c)) for c in spec.init_containers or []]
            labels = (pod.metadata.labels if pod.metadata else None) or {}
            uses.append(
                PodUse(
                    requests=effective_pod_requests(containers, inits),
                    finished=bool(pod.status and pod.status.phase in _FINISHED),
                    notebook=labels.get(NOTEBOOK_LABEL),
                )
            )
        return uses

    def claims_gib(self, namespace: str) -> dict[str, Decimal]:
        """Requested size of every PersistentVolumeClaim in the namespace, by name."""
        claims = _call(
            f"list volume claims in {namespace}",
            lambda: self.core.list_namespaced_persistent_volume_claim(
                namespace, _request_timeout=self.timeout
            ),
        )
        sizes = {}
        for claim in claims.items:
            if claim.metadata is None or claim.spec is None:
                continue
            requests = (claim.spec.resources.requests if claim.spec.resources else None) or {}
            sizes[str(claim.metadata.name)] = _quantity(requests.get("storage", 0)) / GIB
        return sizes

    def quota_hard(self, namespace: str, name: str) -> dict[str, Decimal]:
        """``spec.hard`` of a ResourceQuota (empty when it does not exist)."""

        def read() -> dict[str, Decimal]:
            try:
                quota = self.core.read_namespaced_resource_quota(
                    name, namespace, _request_timeout=self.timeout
                )
            except ApiException as exc:
                if exc.status == 404:
                    return {}
                raise
            hard = (quota.spec.hard if quota.spec else None) or {}
            return {key: _quantity(value) for key, value in hard.items()}

        return _call(f"read quota {namespace}/{name}", read)


def _requests(container: client.V1Container) -> dict[str, Any] | None:
    resources = container.resources
    return resources.requests if resources is not None else None


def notebook_uses(notebooks: list[dict[str, Any]]) -> list[NotebookUse]:
    """Notebook resources as quota sees them (ones with a spec we cannot read are skipped)."""
    uses = []
    for raw in notebooks:
        if (raw.get("metadata") or {}).get("deletionTimestamp"):
            continue  # going away: its pod (while it lasts) is counted as a pod
        try:
            spec = NotebookSpec.model_validate(raw.get("spec") or {})
        except ValueError:
            continue
        uses.append(
            NotebookUse(
                name=str(raw.get("metadata", {}).get("name", "")),
                stopped=spec.stopped,
                requests=spec_requests(spec),
            )
        )
    return uses
