"""Kubernetes I/O of the notebook operator, speaking `KubernetesError` like `operators.storage`.

Objects come and go as plain dicts (the API's JSON), so the pure status logic in
`operators.notebook` reads the same shape from watch events and from API answers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from operators.storage import FIELD_MANAGER, KubernetesError
from tenants.notebook import PLURAL
from tenants.resource import GROUP, VERSION

_APPLY = "application/apply-patch+yaml"
_MERGE = "application/merge-patch+json"
_TRANSIENT = {404, 409, 429, 500, 502, 503, 504}

T = TypeVar("T")


def _api_message(exc: ApiException) -> str:
    """The apiserver's own sentence (Status.message), e.g. the quota it exceeded."""
    body = exc.body.decode() if isinstance(exc.body, bytes) else (exc.body or "")
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or body[:500] or exc.reason or exc.status)


def call_api(what: str, fn: Callable[[], T]) -> T:
    """Run ``fn``; `ApiException` and connection errors become `KubernetesError`."""
    try:
        return fn()
    except ApiException as exc:
        message = _api_message(exc)
        # A namespace the Tenant operator is still filling has no ServiceAccount "notebook" yet.
        missing_account = exc.status == 403 and "error looking up service account" in message
        raise KubernetesError(
            message, status=exc.status, transient=exc.status in _TRANSIENT or missing_account
        ) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise KubernetesError(f"{what}: {exc}", status=None, transient=True) from exc


class NotebookStorage:
    """Creates, applies, reads and deletes a notebook's children; writes Notebook status."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._api = api_client
        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._written: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def last_status(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The status as this process last wrote it (merged), or None."""
        with self._lock:
            written = self._written.get((namespace, name))
            return dict(written) if written is not None else None

    def forget(self, namespace: str, name: str) -> None:
        """Drop what `last_status` remembers of a notebook that is gone."""
        with self._lock:
            self._written.pop((namespace, name), None)

    def _dict(self, obj: object) -> dict[str, Any]:
        result: dict[str, Any] = self._api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
        return result

    def create_if_absent(self, obj: dict[str, Any]) -> bool:
        """Create ``obj`` (Secret, PVC or Pod) unless it exists; whether it was created.

        For objects whose content must not be rewritten (a token, a volume whose size may only
        grow, an immutable pod spec), so a re-run of the handler leaves them alone.
        """
        kind = obj["kind"]
        namespace = obj["metadata"]["namespace"]
        # The client serialises plain dicts as they are (its stubs ask for model classes).
        body: Any = obj
        creators: dict[str, Callable[[], object]] = {
            "Secret": lambda: self._core.create_namespaced_secret(namespace, body),
            "PersistentVolumeClaim": lambda: self._core.create_namespaced_persistent_volume_claim(
                namespace, body
            ),
            "Pod": lambda: self._core.create_namespaced_pod(namespace, body),
        }
        name = obj["metadata"]["name"]
        readers: dict[str, Callable[[], object]] = {
            "Secret": lambda: self._core.read_namespaced_secret(name, namespace),
            "PersistentVolumeClaim": lambda: self._core.read_namespaced_persistent_volume_claim(
                name, namespace
            ),
            "Pod": lambda: self._core.read_namespaced_pod(name, namespace),
        }
        try:
            call_api(f"create {kind} {namespace}/{name}", creators[kind])
        except KubernetesError as exc:
            if exc.status == 409:
                return False
            # Admission (quota) runs before the existence check: a full quota refuses even
            # an object that is already there, and that one is fine.
            if exc.status == 403 and self._exists(readers[kind]):
                return False
            raise
        return True

    @staticmethod
    def _exists(read: Callable[[], object]) -> bool:
        try:
            call_api("read", read)
        except KubernetesError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def apply_service(self, obj: dict[str, Any]) -> None:
        """Server-side apply a Service (force: our field manager owns what it sets)."""
        name = obj["metadata"]["name"]
        namespace = obj["metadata"]["namespace"]
        call_api(
            f"apply Service {namespace}/{name}",
            lambda: self._core.patch_namespaced_service(
                name,
                namespace,
                obj,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=_APPLY,
            ),
        )

    def read_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The pod as JSON, or None when there is none."""
        try:
            pod = call_api(
                f"read pod {namespace}/{name}",
                lambda: self._core.read_namespaced_pod(name, namespace),
            )
        except KubernetesError as exc:
            if exc.status == 404:
                return None
            raise
        return self._dict(pod)

    def delete_pod(self, namespace: str, name: str) -> None:
        """Delete the pod; already gone is fine."""
        try:
            call_api(
                f"delete pod {namespace}/{name}",
                lambda: self._core.delete_namespaced_pod(name, namespace),
            )
        except KubernetesError as exc:
            if exc.status != 404:
                raise

    def claim_exists(self, namespace: str, name: str) -> bool:
        """Whether the PersistentVolumeClaim exists."""
        try:
            call_api(
                f"read PVC {namespace}/{name}",
                lambda: self._core.read_namespaced_persistent_volume_claim(name, namespace),
            )
        except KubernetesError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge ``status`` into the Notebook's status subresource (gone: nothing to do).

        What was written is remembered (`last_status`): kopf's index of Notebooks lags behind
        our own writes, and comparing with a stale index would skip a needed write.
        """
        with self._lock:
            self._written[(namespace, name)] = {
                **self._written.get((namespace, name), {}),
                **status,
            }
        try:
            call_api(
                f"patch status of notebook {namespace}/{name}",
                lambda: self._custom.patch_namespaced_custom_object_status(
                    GROUP,
                    VERSION,
                    namespace,
                    PLURAL,
                    name,
                    {"status": status},
                    _content_type=_MERGE,
                ),
            )
        except KubernetesError as exc:
            if exc.status != 404:
                raise
