"""kopf handlers for ``Tenant``: thin glue between the builders, storage and status.

Each handler parses the body into the `tenants` models, builds the desired objects with the
pure builders, server-side applies them through `KubernetesStorage`, and reports through
``status`` (``phase`` and the ``Ready`` condition). Bad specs are `kopf.PermanentError`
(shown in status, not retried until the spec changes); API trouble is `kopf.TemporaryError`.

Drift repair is event-driven: the operator watches every kind it creates, filtered by our
label, and re-applies an object as soon as it is deleted or no longer matches what the
builders produce. The desired state comes from an in-memory kopf index of the Tenants, so an
unchanged child costs no API call.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from operators.config import OperatorConfig
from operators.drift import drifted
from operators.mlflow_tenant import CONDITION as MLFLOW_CONDITION
from operators.mlflow_tenant import MlflowStep, Outcome, as_granted, failure
from operators.mlflow_workspaces import MlflowAdminError
from operators.storage import KubernetesError, KubernetesStorage, api_client_from_environment
from tenants.builders import GPU_RESOURCE, build_network_policies, build_tenant_objects
from tenants.crd import tenant_crd
from tenants.labels import MANAGED_BY, MANAGED_BY_LABEL, TENANT_LABEL
from tenants.names import namespace_for
from tenants.resource import API_VERSION, GROUP, KIND, PLURAL, VERSION, Phase, Tenant, TenantSpec
from tenants.status import READY, Reason, set_condition

FINALIZER = "sandlada.se/tenant-operator"
_log = logging.getLogger("sandlada.operators.tenant")
_ANNOTATION_PREFIX = "operator.sandlada.se"
_OURS: dict[str, Any] = {
    MANAGED_BY_LABEL: MANAGED_BY,
    TENANT_LABEL: kopf.PRESENT,
}
# (group/version, plural) of every kind the builders produce, for drift watching.
_CHILD_RESOURCES = (
    ("v1", "namespaces"),
    ("v1", "resourcequotas"),
    ("v1", "limitranges"),
    ("v1", "serviceaccounts"),
    ("networking.k8s.io/v1", "networkpolicies"),
    ("rbac.authorization.k8s.io/v1", "roles"),
    ("rbac.authorization.k8s.io/v1", "rolebindings"),
)


@dataclass(frozen=True)
class IndexedTenant:
    """What drift repair needs to know about a Tenant, kept in memory by kopf."""

    uid: str
    spec: TenantSpec | None  # None when the spec is invalid: nothing to repair towards
    deleting: bool
    gpus_used: int | None


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _storage(memo: kopf.Memo) -> KubernetesStorage:
    storage: KubernetesStorage = memo["storage"]
    return storage


def _config(memo: kopf.Memo) -> OperatorConfig:
    config: OperatorConfig = memo["config"]
    return config


def _owner(name: str, uid: str) -> kopf.Body:
    return kopf.Body(
        {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name, "uid": uid}}
    )


def _ready_first(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``Ready`` leads the list (as people and tools read it), then the rest in order."""
    return sorted(conditions, key=lambda condition: condition.get("type") != READY)


def _report(
    patch: kopf.Patch,
    status: kopf.Status,
    *,
    phase: Phase,
    ready: bool,
    reason: str,
    message: str,
    generation: int | None,
) -> None:
    """Put phase and the Ready condition into the status patch kopf writes after the handler."""
    patch.status["phase"] = phase.value
    patch.status["conditions"] = _ready_first(
        set_condition(
            list(status.get("conditions") or []),
            type_=READY,
            status=ready,
            reason=reason,
            message=message,
            now=_now(),
            generation=generation,
        )
    )
    if generation is not None:
        patch.status["observedGeneration"] = generation


@kopf.on.startup()
def configure(*, settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Settings, the API client in ``memo``, and (for local runs) the CRD."""
    config = OperatorConfig()
    settings.persistence.finalizer = FINALIZER
    # Annotations, not status: the CRD's structural schema would prune a status.kopf field.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=_ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=_ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    # Every handler success as a Kubernetes Event would double the API writes per tenant.
    settings.posting.level = logging.WARNING
    settings.peering.standalone = config.standalone
    settings.execution.max_workers = config.workers
    # React to an event quickly; the default 0.1 s window is latency we do not need.
    settings.batching.batch_window = 0.02
    api_client = api_client_from_environment(pool_size=config.workers + 4)
    storage = KubernetesStorage(api_client)
    if config.install_crd:
        storage.install_crd(tenant_crd())
    memo["config"] = config
    memo["storage"] = storage
    memo["mlflow"] = MlflowStep(config, api_client)


@kopf.on.probe(id="apiserver")
def apiserver_version(*, memo: kopf.Memo, **_: Any) -> str:
    """Liveness: the operator can still reach the apiserver."""
    return _storage(memo).server_version()


@kopf.index(GROUP, VERSION, PLURAL)
def tenants_by_name(
    *, name: str, body: kopf.Body, meta: kopf.Meta, status: kopf.Status, **_: Any
) -> dict[str, IndexedTenant]:
    """Tenants by name (= slug), so child events find their desired state without a GET."""
    try:
        spec: TenantSpec | None = TenantSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        spec = None
    return {
        name: IndexedTenant(
            uid=str(meta.get("uid")),
            spec=spec,
            deleting=meta.get("deletionTimestamp") is not None,
            gpus_used=status.get("gpusUsed"),
        )
    }


def _apply_all(
    storage: KubernetesStorage, spec: TenantSpec, owner: kopf.Body, *, prune: bool = True
) -> None:
    for obj in build_tenant_objects(spec).all():
        kopf.append_owner_reference(obj, owner=owner)
        storage.apply(obj)
    if not prune:
        return
    # Network policies are the only kind whose set follows the spec (shared services):
    # a policy for a service no longer allowed must go, or the access would outlive the grant.
    namespace = namespace_for(spec.slug)
    wanted = {p["metadata"]["name"] for p in build_network_policies(spec)}
    selector = f"{MANAGED_BY_LABEL}={MANAGED_BY},{TENANT_LABEL}={spec.slug}"
    for name in storage.list_network_policy_names(namespace, selector):
        if name not in wanted:
            storage.delete_network_policy(namespace, name)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def reconcile(
    *,
    body: kopf.Body,
    name: str,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    reason: str,
    memo: kopf.Memo,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **_: Any,
) -> None:
    """Converge the tenant's namespace and everything in it to the spec."""
    generation = meta.get("generation")
    try:
        # Only the spec (and the name it must match) decides; status is ours and never invalid.
        tenant = Tenant.model_validate({"metadata": {"name": name}, "spec": body.get("spec")})
    except ValidationError as exc:
        message = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        _report(
            patch,
            status,
            phase=Phase.FAILED,
            ready=False,
            reason=Reason.INVALID_SPEC,
            message=message,
            generation=generation,
        )
        raise kopf.PermanentError(f"invalid Tenant spec: {message}") from exc

    spec = tenant.spec
    storage = _storage(memo)
    try:
        # A Tenant just created has no stale policies to prune: save the list call.
        _apply_all(
            storage,
            spec,
            _owner(name, str(meta.get("uid"))),
            prune=reason != kopf.Reason.CREATE.value,
        )
        if spec.suspended:
            storage.delete_pods(namespace_for(spec.slug))
    except KubernetesError as exc:
        _report(
            patch,
            status,
            phase=Phase.FAILED if not exc.transient else Phase.PROVISIONING,
            ready=False,
            reason=Reason.APPLY_FAILED,
            message=str(exc),
            generation=generation,
        )
        if exc.transient:
            raise kopf.TemporaryError(str(exc), delay=_config(memo).retry_delay) from exc
        raise kopf.PermanentError(str(exc)) from exc

    patch.status["namespace"] = namespace_for(spec.slug)
    mlflow, retry_mlflow = _mlflow_step(memo, spec, name, str(meta.get("uid")))
    if spec.suspended:
        _report(
            patch,
            status,
            phase=Phase.SUSPENDED,
            ready=False,
            reason=Reason.SUSPENDED,
            message="suspended: no new pods; running pods stopped; data kept",
            generation=generation,
        )
        _report_mlflow(patch, mlflow, generation, retry=retry_mlflow, memo=memo)
        return
    _report(
        patch,
        status,
        phase=Phase.READY,
        ready=True,
        reason=Reason.PROVISIONED,
        message=f"namespace {namespace_for(spec.slug)} and its policies are in place",
        generation=generation,
    )
    if not status.get("provisionedAt"):
        # Milliseconds, unlike condition times: the control plane derives how long provisioning
        # took from this, and most tenants are Ready well within a second.
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        patch.status["provisionedAt"] = stamp.replace("+00:00", "Z")
    _log.info("tenant %s is ready", name)
    _report_mlflow(patch, mlflow, generation, retry=retry_mlflow, memo=memo)


def _mlflow_step(memo: kopf.Memo, spec: TenantSpec, name: str, uid: str) -> tuple[Outcome, bool]:
    """The tenant's MLflow workspace and Secret (or its suspension); whether to retry.

    Runs before Ready is reported, so a Ready tenant with MLflow has its Secret.
    """
    step: MlflowStep = memo["mlflow"]
    owner = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    try:
        if spec.suspended:
            return step.suspend(spec.slug), False
        return as_granted(step.provision(spec.slug, owner), spec), False
    except MlflowAdminError as exc:
        return failure(exc), exc.retryable
    except KubernetesError as exc:
        return failure(exc), exc.transient


def _report_mlflow(
    patch: kopf.Patch, outcome: Outcome, generation: int | None, *, retry: bool, memo: kopf.Memo
) -> None:
    """The ``MlflowReady`` condition; a retryable failure retries the reconcile."""
    patch.status["conditions"] = _ready_first(
        set_condition(
            list(patch.status.get("conditions") or []),
            type_=MLFLOW_CONDITION,
            status=outcome.ready,
            reason=outcome.reason,
            message=outcome.message,
            now=_now(),
            generation=generation,
        )
    )
    if retry:
        raise kopf.TemporaryError(outcome.message, delay=_config(memo).retry_delay)


@kopf.on.delete(GROUP, VERSION, PLURAL)
def delete(
    *,
    name: str,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Remove the namespace (and all in it), reporting progress until it is gone."""
    namespace = namespace_for(name)
    if status.get("phase") != Phase.DELETING.value:
        # Offboarding removes the tenant's MLflow workspace with its runs and artifacts.
        try:
            mlflow: MlflowStep = memo["mlflow"]
            mlflow.remove(name)
        except MlflowAdminError as exc:
            if exc.retryable:
                raise kopf.TemporaryError(str(exc), delay=_config(memo).retry_delay) from exc
            # A refusal would hold the namespace hostage forever: offboard anyway, loudly.
            _log.error("MLflow workspace of tenant %s not removed: %s", name, exc)
    try:
        state = _storage(memo).delete_namespace(namespace)
    except KubernetesError as exc:
        raise kopf.TemporaryError(str(exc), delay=_config(memo).retry_delay) from exc
    if state is None:
        return  # gone: kopf removes the finalizer and the Tenant disappears
    message = f"namespace {namespace} is {state.phase}" + (
        f": {state.message}" if state.message else ""
    )
    _report(
        patch,
        status,
        phase=Phase.DELETING,
        ready=False,
        reason=Reason.DELETING,
        message=message,
        generation=meta.get("generation"),
    )
    raise kopf.TemporaryError(message, delay=_config(memo).deletion_poll)


def _desired_child(spec: TenantSpec, kind: str, name: str) -> dict[str, Any] | None:
    for obj in build_tenant_objects(spec).all():
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    return None


async def _child_event(
    *,
    type: str,
    body: kopf.Body,
    tenants_by_name: kopf.Index[str, IndexedTenant],
    memo: kopf.Memo,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **_: Any,
) -> None:
    """Restore a child that was deleted or edited; keep the Tenant's GPU usage current.

    Async so that the common case (an unchanged child, e.g. the echo of our own apply) is a
    pure in-memory comparison without a hop to the thread pool; only real I/O goes there.
    """
    metadata = body.get("metadata") or {}
    slug = str((metadata.get("labels") or {}).get(TENANT_LABEL, ""))
    tenant = next(iter(tenants_by_name.get(slug, [])), None) if slug else None
    if tenant is None or tenant.deleting or tenant.spec is None:
        return
    kind = str(body.get("kind"))
    desired = _desired_child(tenant.spec, kind, str(metadata.get("name")))
    if desired is None:
        return  # ours by label but not built (e.g. a revoked policy): reconcile prunes those
    repair = type == "DELETED" or drifted(desired, dict(body))
    gpus_used: int | None = None
    if kind == "ResourceQuota" and type != "DELETED":
        used = ((body.get("status") or {}).get("used") or {}).get(f"requests.{GPU_RESOURCE}")
        gpus_used = int(used) if used is not None else 0
        if gpus_used == tenant.gpus_used:
            gpus_used = None
    if not repair and gpus_used is None:
        return
    if repair:
        logger.warning(
            "repairing %s %s of tenant %s (%s)",
            kind,
            desired["metadata"]["name"],
            slug,
            type or "listed",
        )
    try:
        await asyncio.to_thread(
            _repair,
            _storage(memo),
            tenant,
            slug=slug,
            desired=desired,
            repair=repair,
            gpus_used=gpus_used,
        )
    except KubernetesError as exc:
        if exc.transient:
            # Namespace being torn down or re-created: the Tenant's own handlers take over.
            logger.warning("could not repair %s of %s: %s", kind, slug, exc)
            return
        raise kopf.PermanentError(str(exc)) from exc


def _repair(
    storage: KubernetesStorage,
    tenant: IndexedTenant,
    *,
    slug: str,
    desired: dict[str, Any],
    repair: bool,
    gpus_used: int | None,
) -> None:
    assert tenant.spec is not None  # checked by the caller
    if repair:
        if desired["kind"] == "Namespace":
            # A deleted namespace took every child with it; their own DELETED events came
            # while it was terminating and could not be repaired then.
            _apply_all(storage, tenant.spec, _owner(slug, tenant.uid))
        else:
            kopf.append_owner_reference(desired, owner=_owner(slug, tenant.uid))
            storage.apply(desired)
    if gpus_used is not None:
        storage.patch_tenant_status(slug, {"gpusUsed": gpus_used})


for _api_version, _plural in _CHILD_RESOURCES:
    # kopf passes indexes as extra keyword arguments its WatchingFn protocol does not list.
    kopf.on.event(_api_version, _plural, labels=_OURS, id=f"repair-{_plural}")(
        _child_event  # type: ignore[arg-type]
    )
