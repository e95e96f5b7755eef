"""kopf handlers for ``Notebook``: a tenant member's Jupyter server, converged from its spec.

Runs in the same operator process as the Tenant handlers (``python -m operators``).

- create/resume/update(spec): parse the spec (bad → ``phase: Failed``, `kopf.PermanentError`),
  then make sure the token Secret and home PVC exist (created once, never rewritten; the PVC
  has no owner reference so it outlives the notebook), server-side apply the Service, and
  create the pod. ``spec.stopped`` deletes the pod and keeps everything else (``Stopped``).
- Pod events drive the status: the pod's own watch events (no polling) map to the phase
  (``Pending`` → ``Running`` once the pod is Ready), ``startedAt`` and the ``Ready``
  condition. A pod that disappears while its notebook should run is created again (this is
  also how a changed spec replaces the immutable pod).
- The apiserver's refusal of a pod (quota exceeded, Pod Security) is shown in status as it
  came (``Failed``, reason ``QuotaExceeded`` or ``PodRejected``) and not retried until the
  spec changes: the control plane checks quota before it creates a Notebook, so reaching this
  guard means something else took the room.

Status is written in one place per moment: the reconcile handler writes ``Pending`` (with the
URLs) *before* it creates the pod, and from then on only pod events write the phase, so a
fast pod can never be overwritten by a stale ``Pending``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from operators.config import OperatorConfig
from operators.notebook_storage import NotebookStorage
from operators.storage import KubernetesError, KubernetesStorage, api_client_from_environment
from tenants.labels import MANAGED_BY, MANAGED_BY_LABEL
from tenants.notebook import (
    API_VERSION,
    KIND,
    NOTEBOOK_LABEL,
    PLURAL,
    NotebookPhase,
    NotebookSpec,
    StopReason,
    base_path,
    internal_url,
    is_valid_notebook_name,
    notebook_crd,
    service_name,
)
from tenants.notebook_builders import (
    SPEC_HASH_ANNOTATION,
    build_home_claim,
    build_pod,
    build_service,
    build_token_secret,
)
from tenants.resource import GROUP, VERSION
from tenants.status import READY, set_condition

_log = logging.getLogger("sandlada.operators.notebook")
_OURS: dict[str, Any] = {MANAGED_BY_LABEL: MANAGED_BY, NOTEBOOK_LABEL: kopf.PRESENT}
# Independent API calls of one launch go out together (see `_start`).
_IO = ThreadPoolExecutor(max_workers=32, thread_name_prefix="notebook-io")


class Reason:
    """Reasons of a Notebook's ``Ready`` condition."""

    STARTING = "Starting"
    UNSCHEDULABLE = "Unschedulable"
    RUNNING = "Running"
    STOPPED = "Stopped"
    INVALID_SPEC = "InvalidSpec"
    QUOTA_EXCEEDED = "QuotaExceeded"
    POD_REJECTED = "PodRejected"
    POD_FAILED = "PodFailed"
    APPLY_FAILED = "ApplyFailed"


@dataclass(frozen=True)
class IndexedNotebook:
    """What pod events need to know about a Notebook, kept in memory by kopf."""

    uid: str
    spec: NotebookSpec | None  # None when invalid: nothing to run
    deleting: bool
    status: dict[str, Any]


@dataclass(frozen=True)
class PodView:
    """A notebook's status as its pod shows it."""

    phase: NotebookPhase
    ready: bool
    reason: str
    message: str
    started_at: str | None


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _storage(memo: kopf.Memo) -> NotebookStorage:
    storage: NotebookStorage = memo["notebook_storage"]
    return storage


def _config(memo: kopf.Memo) -> OperatorConfig:
    config: OperatorConfig = memo["notebook_config"]
    return config


def _owner(name: str, uid: str) -> kopf.Body:
    return kopf.Body(
        {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name, "uid": uid}}
    )


def public_url(config: OperatorConfig, namespace: str, name: str) -> str:
    """The user-facing URL: the platform proxy's base plus the notebook's Jupyter path."""
    return config.notebook_url_base.rstrip("/") + base_path(namespace, name)


def view_of_pod(pod: dict[str, Any]) -> PodView:
    """Map a pod (API JSON) to the notebook's phase, readiness and what to tell the user."""
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    containers = status.get("containerStatuses") or []
    started_at = next(
        (
            # API answers say +00:00, watch events Z: one form in status.
            str(c["state"]["running"].get("startedAt")).replace("+00:00", "Z")
            for c in containers
            if (c.get("state") or {}).get("running", {}).get("startedAt")
        ),
        None,
    )
    waiting = [
        f"{c['state']['waiting'].get('reason', '')}: {c['state']['waiting'].get('message', '')}"
        for c in containers
        if (c.get("state") or {}).get("waiting")
    ]
    phase = status.get("phase") or "Pending"
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return PodView(NotebookPhase.PENDING, False, Reason.STARTING, "pod is stopping", None)
    if phase in {"Failed", "Succeeded"}:
        message = status.get("message") or status.get("reason") or f"Jupyter pod {phase.lower()}"
        return PodView(NotebookPhase.FAILED, False, Reason.POD_FAILED, message, None)
    ready = (conditions.get("Ready") or {}).get("status") == "True"
    if phase == "Running" and ready:
        return PodView(
            NotebookPhase.RUNNING, True, Reason.RUNNING, "Jupyter is running", started_at
        )
    scheduled = conditions.get("PodScheduled") or {}
    if scheduled.get("status") == "False":
        message = scheduled.get("message") or "waiting for a node"
        return PodView(NotebookPhase.PENDING, False, Reason.UNSCHEDULABLE, message, None)
    message = "; ".join(waiting) or "Jupyter is starting"
    return PodView(NotebookPhase.PENDING, False, Reason.STARTING, message, started_at)


def status_patch(
    previous: dict[str, Any],
    *,
    phase: NotebookPhase,
    ready: bool,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A merge patch for the status: phase, message, Ready condition and ``extra`` fields."""
    patch: dict[str, Any] = {
        "phase": phase.value,
        "message": message,
        "conditions": set_condition(
            list(previous.get("conditions") or []),
            type_=READY,
            status=ready,
            reason=reason,
            message=message,
            now=now,
            generation=generation,
        ),
        **(extra or {}),
    }
    if generation is not None:
        patch["observedGeneration"] = generation
    return patch


def status_changes(previous: dict[str, Any], patch: dict[str, Any]) -> bool:
    """Whether writing ``patch`` would change anything we report (avoids write loops)."""
    for key, value in patch.items():
        if key == "conditions":
            old = {c.get("type"): c for c in previous.get("conditions") or []}
            for condition in value:
                before = old.get(condition["type"]) or {}
                if any(before.get(k) != condition.get(k) for k in ("status", "reason", "message")):
                    return True
        elif previous.get(key) != value:
            return True
    return False


def _rejection_reason(exc: KubernetesError) -> str:
    return Reason.QUOTA_EXCEEDED if "exceeded quota" in str(exc) else Reason.POD_REJECTED


@kopf.on.startup()
def configure_notebooks(*, memo: kopf.Memo, **_: Any) -> None:
    """The notebook storage in ``memo`` and (for local runs) the Notebook CRD."""
    config = OperatorConfig()
    api_client = api_client_from_environment(pool_size=config.workers + 4)
    if config.install_crd:
        KubernetesStorage(api_client).install_crd(notebook_crd())
    memo["notebook_config"] = config
    memo["notebook_storage"] = NotebookStorage(api_client)


@kopf.index(GROUP, VERSION, PLURAL)
def notebooks_by_key(
    *,
    namespace: str | None,
    name: str,
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    **_: Any,
) -> dict[tuple[str, str], IndexedNotebook]:
    """Notebooks by (namespace, name), so pod events find their notebook without a GET."""
    try:
        spec: NotebookSpec | None = NotebookSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        spec = None
    return {
        (str(namespace), name): IndexedNotebook(
            uid=str(meta.get("uid")),
            spec=spec,
            deleting=meta.get("deletionTimestamp") is not None,
            status=dict(status),
        )
    }


def _start(
    storage: NotebookStorage,
    config: OperatorConfig,
    *,
    namespace: str,
    name: str,
    uid: str,
    spec: NotebookSpec,
    before_pod: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Secret, PVC, Service (and ``before_pod``) in place, then the pod; the live pod.

    The first four are independent API calls and go out together: on a busy apiserver each
    costs tens to hundreds of milliseconds, and launch latency is what members feel.
    """
    owner = _owner(name, uid)
    secret = build_token_secret(namespace, name, secrets.token_urlsafe(32))
    kopf.append_owner_reference(secret, owner=owner)
    # No owner reference: the home volume outlives the notebook (stop, delete, relaunch).
    claim = build_home_claim(namespace, name, spec, config.notebook_storage_class)
    service = build_service(namespace, name)
    kopf.append_owner_reference(service, owner=owner)
    calls: list[Callable[[], object]] = [
        lambda: storage.create_if_absent(claim),
        lambda: storage.create_if_absent(secret),
        lambda: storage.apply_service(service),
    ]
    if before_pod is not None:
        calls.append(before_pod)
    futures = [_IO.submit(call) for call in calls]
    wait(futures)  # all done before any failure is reported, so none lands after it
    for future in futures:
        future.result()  # re-raises the first failure
    pod = build_pod(namespace, name, spec)
    kopf.append_owner_reference(pod, owner=owner)
    if storage.create_if_absent(pod):
        return pod
    pod_name = service_name(name)
    live = storage.read_pod(namespace, pod_name)
    wanted = pod["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    if (
        live is not None
        and (live["metadata"].get("annotations") or {}).get(SPEC_HASH_ANNOTATION) != wanted
    ):
        # Pod specs are immutable: delete; its DELETED event creates the new one.
        storage.delete_pod(namespace, pod_name)
    return live or pod


def _stop(
    storage: NotebookStorage,
    *,
    namespace: str,
    name: str,
    previous: dict[str, Any],
    urls: dict[str, str],
    generation: int | None,
) -> None:
    """Delete the pod, keep the rest, report ``Stopped`` (keeping the culler's reason)."""
    storage.delete_pod(namespace, service_name(name))
    extra: dict[str, Any] = {**urls, "startedAt": None}
    if previous.get("stopReason") and previous.get("message"):
        message = str(previous["message"])  # the culler's (or API's) explanation
    else:
        message = "stopped; the home volume is kept"
        extra["stopReason"] = StopReason.USER.value
    if not previous.get("stoppedAt"):
        extra["stoppedAt"] = _stamp(_now())
    storage.patch_status(
        namespace,
        name,
        status_patch(
            previous,
            phase=NotebookPhase.STOPPED,
            ready=False,
            reason=Reason.STOPPED,
            message=message,
            now=_now(),
            generation=generation,
            extra=extra,
        ),
    )


def _invalid(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def reconcile_notebook(
    *,
    body: kopf.Body,
    namespace: str | None,
    name: str,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: kopf.Memo,
    reason: str,
    **_: Any,
) -> None:
    """Converge the notebook's children to the spec (see the module docstring)."""
    namespace = str(namespace)
    storage = _storage(memo)
    config = _config(memo)
    generation = meta.get("generation")
    previous = dict(status)
    urls = {
        "url": public_url(config, namespace, name),
        "internalUrl": internal_url(namespace, name),
    }
    try:
        if not is_valid_notebook_name(name):
            raise ValueError(f"name {name!r} is not a valid notebook name")
        spec = NotebookSpec.model_validate(body.get("spec") or {})
    except (ValidationError, ValueError) as exc:
        message = _invalid(exc) if isinstance(exc, ValidationError) else str(exc)
        storage.patch_status(
            namespace,
            name,
            status_patch(
                previous,
                phase=NotebookPhase.FAILED,
                ready=False,
                reason=Reason.INVALID_SPEC,
                message=message,
                now=_now(),
                generation=generation,
            ),
        )
        raise kopf.PermanentError(f"invalid Notebook spec: {message}") from exc

    try:
        if spec.stopped:
            _stop(
                storage,
                namespace=namespace,
                name=name,
                previous=previous,
                urls=urls,
                generation=generation,
            )
            return
        # A new Notebook has no pod yet: save the read on the path members wait on.
        live = (
            None
            if reason == kopf.Reason.CREATE.value
            else storage.read_pod(namespace, service_name(name))
        )
        if live is None:
            patch = status_patch(
                previous,
                phase=NotebookPhase.PENDING,
                ready=False,
                reason=Reason.STARTING,
                message="starting Jupyter",
                now=_now(),
                generation=generation,
                extra={**urls, "startedAt": None, "stopReason": None, "stoppedAt": None},
            )
        else:
            # Resumed (operator restart) or a spec change: report what the pod shows now.
            view = view_of_pod(live)
            patch = status_patch(
                previous,
                phase=view.phase,
                ready=view.ready,
                reason=view.reason,
                message=view.message,
                now=_now(),
                generation=generation,
                extra={**urls, "startedAt": view.started_at},
            )
        _start(
            storage,
            config,
            namespace=namespace,
            name=name,
            uid=str(meta["uid"]),
            spec=spec,
            # Before the pod exists, so no pod event can be overwritten by it.
            before_pod=lambda: storage.patch_status(namespace, name, patch),
        )
    except KubernetesError as exc:
        if exc.transient:
            raise kopf.TemporaryError(str(exc), delay=config.retry_delay) from exc
        storage.patch_status(
            namespace,
            name,
            status_patch(
                previous,
                phase=NotebookPhase.FAILED,
                ready=False,
                reason=_rejection_reason(exc),
                message=str(exc),
                now=_now(),
                generation=generation,
                extra=urls,
            ),
        )
        raise kopf.PermanentError(str(exc)) from exc


async def _recreate(
    storage: NotebookStorage,
    config: OperatorConfig,
    *,
    namespace: str,
    name: str,
    notebook: IndexedNotebook,
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    assert notebook.spec is not None  # checked by the caller
    try:
        await asyncio.to_thread(
            _start,
            storage,
            config,
            namespace=namespace,
            name=name,
            uid=notebook.uid,
            spec=notebook.spec,
        )
    except KubernetesError as exc:
        if exc.transient:
            logger.warning("could not recreate the pod of %s/%s: %s", namespace, name, exc)
            return
        patch = status_patch(
            storage.last_status(namespace, name) or notebook.status,
            phase=NotebookPhase.FAILED,
            ready=False,
            reason=_rejection_reason(exc),
            message=str(exc),
            now=_now(),
        )
        await asyncio.to_thread(storage.patch_status, namespace, name, patch)


async def pod_event(
    *,
    type: str,
    body: kopf.Body,
    notebooks_by_key: kopf.Index[tuple[str, str], IndexedNotebook],
    memo: kopf.Memo,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **_: Any,
) -> None:
    """Report the pod's state in the Notebook's status; recreate a pod that vanished."""
    metadata = body.get("metadata") or {}
    namespace = str(metadata.get("namespace"))
    name = str((metadata.get("labels") or {}).get(NOTEBOOK_LABEL, ""))
    notebook = next(iter(notebooks_by_key.get((namespace, name), [])), None)
    if notebook is None:
        _storage(memo).forget(namespace, name)
        return
    if notebook.deleting or notebook.spec is None:
        return
    if metadata.get("name") != service_name(name):
        return
    storage = _storage(memo)
    if type == "DELETED":
        if not notebook.spec.stopped:
            # Deleted by someone, evicted, or replaced after a spec change: start it again.
            await _recreate(
                storage,
                _config(memo),
                namespace=namespace,
                name=name,
                notebook=notebook,
                logger=logger,
            )
        return
    if notebook.spec.stopped:
        return
    # Our own last write is fresher than kopf's index, which lags behind it.
    previous = storage.last_status(namespace, name) or notebook.status
    view = view_of_pod(dict(body))
    patch = status_patch(
        previous,
        phase=view.phase,
        ready=view.ready,
        reason=view.reason,
        message=view.message,
        now=_now(),
        extra={"startedAt": view.started_at} if view.started_at else None,
    )
    if not status_changes(previous, patch):
        return
    try:
        await asyncio.to_thread(storage.patch_status, namespace, name, patch)
    except KubernetesError as exc:
        # Event handlers are not retried; the pod's next event (or a resume) reports again.
        logger.warning("could not report the pod of %s/%s: %s", namespace, name, exc)


# kopf passes indexes as extra keyword arguments its WatchingFn protocol does not list.
kopf.on.event("v1", "pods", labels=_OURS, id="notebook-pods")(pod_event)  # type: ignore[arg-type]


@kopf.index("v1", "pods", labels=_OURS)
def notebook_pods(
    *, namespace: str | None, body: kopf.Body, labels: kopf.Labels, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    """Notebook pods by (namespace, notebook name), for the status check below."""
    return {(str(namespace), str(labels.get(NOTEBOOK_LABEL))): dict(body)}


async def check_status(
    *,
    namespace: str | None,
    name: str,
    spec: kopf.Spec,
    status: kopf.Status,
    notebook_pods: kopf.Index[tuple[str, str], dict[str, Any]],
    memo: kopf.Memo,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **_: Any,
) -> None:
    """Level-triggered safety net: the status agrees with the pod, whatever events were lost.

    Pod events are the fast path; this catches what they cannot: a status written by someone
    else after the last pod event, or an event lost while the operator was down. In memory
    (both sides come from watches); it writes only on disagreement.
    """
    if spec.get("stopped") or status.get("phase") is None:
        return
    key = (str(namespace), name)
    pod = next(iter(notebook_pods.get(key, [])), None)
    if pod is None:
        # No pod yet, being replaced, or refused (Failed): the handlers above own those.
        return
    view = view_of_pod(pod)
    current = dict(status)
    patch = status_patch(
        current,
        phase=view.phase,
        ready=view.ready,
        reason=view.reason,
        message=view.message,
        now=_now(),
        extra={"startedAt": view.started_at} if view.started_at else None,
    )
    if not status_changes(current, patch):
        return
    logger.warning("status of notebook %s/%s disagreed with its pod; corrected", *key)
    try:
        await asyncio.to_thread(_storage(memo).patch_status, key[0], name, patch)
    except KubernetesError as exc:
        logger.warning("could not correct the status of %s/%s: %s", *key, exc)


# Indexes are extra keyword arguments that kopf's TimerFn protocol does not list.
kopf.timer(GROUP, VERSION, PLURAL, interval=10.0, idle=5.0, id="check-status")(
    check_status  # type: ignore[arg-type]
)
