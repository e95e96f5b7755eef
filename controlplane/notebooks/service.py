"""Notebook rules: which profiles a member may use, launching within quota, listing, stopping.

The Notebook resources on the cluster are the record of notebooks (their status is the
operator's and the culler's); SQL holds the tenant, its grant and the audit trail. Launch:
tenant ready → profile allowed → (tenant row locked) → name free → quota check → audit →
create the Notebook. The audit event is written first, in the request's transaction, so a
failed create rolls it back; the apiserver's ResourceQuota stays the final guard.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy.orm import Session

from controlplane.audit.service import Actor, record
from controlplane.auth.dependencies import TenantCaller
from controlplane.auth.principal import User
from controlplane.cluster.storage import (
    NOT_CONFIGURED_MESSAGE,
    ClusterNotConfiguredError,
    TenantCluster,
)
from controlplane.costs.budgets import ensure_launch_allowed
from controlplane.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from controlplane.messages import Message, message, state
from controlplane.models import DataClassification, Tenant, TenantStatus
from controlplane.notebooks import quota
from controlplane.notebooks.repository import lock_tenant
from controlplane.notebooks.schemas import NotebookIn, NotebookOut, ProfileOut
from controlplane.notebooks.storage import NotebookExistsError, NotebookStore, notebook_uses
from tenants.builders import QUOTA_NAME
from tenants.catalog import Catalog, Profile
from tenants.names import namespace_for
from tenants.notebook import (
    Notebook,
    NotebookPhase,
    StopReason,
    home_claim_name,
    notebook_body,
)
from tenants.resource import DataClassification as Tier

log = structlog.get_logger(__name__)

# The control plane's word for the lowest classification is "open"; the cluster's is "public".
_TIER = {
    DataClassification.OPEN: Tier.PUBLIC.value,
    DataClassification.INTERNAL: Tier.INTERNAL.value,
    DataClassification.CONFIDENTIAL: Tier.CONFIDENTIAL.value,
}


class TenantNotReadyError(ConflictError):
    code = "tenant_not_ready"


def _store(cluster: TenantCluster | None) -> NotebookStore:
    if cluster is None:
        raise ClusterNotConfiguredError(NOT_CONFIGURED_MESSAGE)
    return NotebookStore(cluster)


def tier_of(tenant: Tenant) -> str:
    return _TIER[tenant.request.data_classification]


def profile_out(profile: Profile) -> ProfileOut:
    return ProfileOut.model_validate(profile.model_dump())


def refusal(profile: Profile, tenant: Tenant, user: User) -> Message | None:
    """Why ``user`` may not launch ``profile`` in ``tenant``, or None."""
    tier = tier_of(tenant)
    if tier not in profile.allowed_tiers:
        return message(
            "notebooks.profile_tier",
            profile=profile.slug,
            tier=tier,
            allowed=", ".join(profile.allowed_tiers),
        )
    if not user.is_platform_admin and not profile.allows(tier, user.groups):
        return message(
            "notebooks.profile_groups",
            profile=profile.slug,
            groups=", ".join(profile.allowed_groups),
        )
    if profile.gpus > 0:
        if not tenant.gpus or not tenant.gpu_model:
            return message(
                "notebooks.profile_no_gpus",
                profile=profile.slug,
                wanted=profile.gpu_model,
                slug=tenant.slug,
            )
        if profile.gpu_model != tenant.gpu_model:
            return message(
                "notebooks.profile_gpu_model",
                profile=profile.slug,
                wanted=profile.gpu_model,
                slug=tenant.slug,
                granted=tenant.gpu_model,
            )
    return None


def list_profiles(catalog: Catalog, caller: TenantCaller | None) -> list[ProfileOut]:
    """The catalogue; for a tenant, only the profiles its caller may launch there."""
    profiles = catalog.profiles
    if caller is not None:
        profiles = [p for p in profiles if refusal(p, caller.tenant, caller.user) is None]
    return [profile_out(p) for p in profiles]


def notebook_out(raw: dict[str, Any], slug: str) -> NotebookOut:
    notebook = Notebook.model_validate(raw)
    spec, status = notebook.spec, notebook.status
    phase = status.phase or (NotebookPhase.STOPPED if spec.stopped else NotebookPhase.PENDING)
    stop_reason = status.stop_reason
    if notebook.metadata.get("deletionTimestamp"):
        # Stopped through the API and on its way out (an operator's finalizer may hold it).
        phase, stop_reason = NotebookPhase.STOPPED, stop_reason or StopReason.USER
    return NotebookOut(
        name=str(notebook.metadata.get("name")),
        tenant=slug,
        namespace=str(notebook.metadata.get("namespace")),
        profile=spec.profile,
        phase=phase,
        url=status.url,
        owner=spec.owner,
        owner_name=spec.owner_name,
        started_at=status.started_at,
        last_activity=status.last_activity,
        stop_reason=stop_reason,
        stopped_at=status.stopped_at,
        message=status.message,
        created_at=notebook.metadata.get("creationTimestamp"),
        gpus=spec.gpus,
        gpu_model=spec.gpu_model,
        gpu_resource=spec.gpu_resource,
        cpu=spec.cpu,
        memory_gib=spec.memory_gib,
        storage_gib=spec.storage_gib,
        idle_timeout_seconds=spec.idle_timeout_seconds,
        max_age_seconds=spec.max_age_seconds,
    )


def _require_launchable(tenant: Tenant) -> None:
    if tenant.status is TenantStatus.READY:
        return
    if tenant.status is TenantStatus.SUSPENDED:
        raise TenantNotReadyError(message("notebooks.tenant_suspended", slug=tenant.slug))
    raise TenantNotReadyError(
        message("notebooks.tenant_not_ready", slug=tenant.slug, status=state(tenant.status.value))
    )


def _grant(store: NotebookStore, tenant: Tenant, profile: Profile) -> quota.Grant:
    gpus = {quota.GPU_RESOURCE: Decimal(tenant.gpus)}
    if profile.gpus and profile.gpu_resource != quota.GPU_RESOURCE:
        # MIG slices and shared GPUs are granted on the cluster only (Tenant spec → quota).
        hard = store.quota_hard(namespace_for(tenant.slug), QUOTA_NAME)
        gpus[profile.gpu_resource] = hard.get(f"requests.{profile.gpu_resource}", Decimal(0))
    return quota.Grant(
        cpu=Decimal(tenant.cpu),
        memory_gib=Decimal(tenant.memory_gib),
        storage_gib=Decimal(tenant.storage_gib),
        gpus=gpus,
        gpu_model=tenant.gpu_model,
    )


def _exists(raw: dict[str, Any], name: str, slug: str) -> NotebookExistsError:
    phase = (raw.get("status") or {}).get("phase") or "Pending"
    return NotebookExistsError(message("notebooks.exists", name=name, slug=slug, phase=phase))


def _relaunchable(existing: dict[str, Any], user: User) -> bool:
    """A stopped notebook (e.g. by the idle culler) is started again by its owner's launch."""
    spec = existing.get("spec") or {}
    deleting = (existing.get("metadata") or {}).get("deletionTimestamp") is not None
    return bool(spec.get("stopped")) and spec.get("owner") == user.subject and not deleting


def launch(
    session: Session,
    cluster: TenantCluster | None,
    catalog: Catalog,
    caller: TenantCaller,
    body: NotebookIn,
) -> NotebookOut:
    tenant, user = caller.tenant, caller.user
    _require_launchable(tenant)
    profile = catalog.get(body.profile)
    if profile is None:
        known = ", ".join(p.slug for p in catalog.profiles)
        raise InvalidInputError(
            "profile", message("notebooks.unknown_profile", profile=body.profile, known=known)
        )
    why_not = refusal(profile, tenant, user)
    if why_not is not None:
        raise InvalidInputError("profile", why_not)
    # 409 budget_exceeded when the tenant enforces a monthly budget it has spent (issue 7).
    ensure_launch_allowed(session, tenant)
    store = _store(cluster)
    namespace = namespace_for(tenant.slug)
    lock_tenant(session, tenant.id)
    existing = store.get(namespace, body.name)
    if existing is not None and not _relaunchable(existing, user):
        raise _exists(existing, body.name, tenant.slug)
    claims = store.claims_gib(namespace)
    used = quota.in_use(store.pods(namespace), notebook_uses(store.notebooks(namespace)), claims)
    need = quota.Requests(
        cpu=Decimal(str(profile.cpu)),
        memory_gib=Decimal(str(profile.memory_gib)),
        # A relaunch under an earlier name gets its old home volume back: no new storage.
        storage_gib=Decimal(0)
        if home_claim_name(body.name) in claims
        else Decimal(profile.storage_gib),
        extended={profile.gpu_resource: Decimal(profile.gpus)} if profile.gpus else {},
    )
    quota.check(_grant(store, tenant, profile), used, need, profile=profile.slug)
    manifest = notebook_body(
        namespace, body.name, profile, user.subject, user.name, catalog.defaults
    )
    record(
        session,
        Actor.of(user),
        "notebook.launched",
        "notebook",
        f"{tenant.slug}/{body.name}",
        after={
            "tenant": tenant.slug,
            "name": body.name,
            "profile": profile.slug,
            "gpus": profile.gpus,
            "gpu_model": profile.gpu_model,
            "cpu": profile.cpu,
            "memory_gib": profile.memory_gib,
            "storage_gib": profile.storage_gib,
            "restarted": existing is not None,
        },
    )
    session.flush()
    if existing is not None:
        created = store.replace_spec(existing, manifest["spec"])
    else:
        created = store.create(manifest, slug=tenant.slug)
    return notebook_out(created, tenant.slug)


def list_notebooks(cluster: TenantCluster | None, caller: TenantCaller) -> list[NotebookOut]:
    slug = caller.tenant.slug
    notebooks = []
    for raw in _store(cluster).notebooks(namespace_for(slug)):
        try:
            notebooks.append(notebook_out(raw, slug))
        except ValidationError as exc:  # made by hand with a spec we cannot read
            log.warning(
                "skipping unreadable notebook", name=raw.get("metadata", {}), error=str(exc)
            )
    return sorted(notebooks, key=lambda n: n.name)


def _get_raw(store: NotebookStore, slug: str, name: str) -> dict[str, Any]:
    raw = store.get(namespace_for(slug), name)
    if raw is None:
        raise NotFoundError(message("notebooks.not_found", name=name, slug=slug))
    return raw


def get_notebook(cluster: TenantCluster | None, caller: TenantCaller, name: str) -> NotebookOut:
    return notebook_out(_get_raw(_store(cluster), caller.tenant.slug, name), caller.tenant.slug)


def stop(session: Session, cluster: TenantCluster | None, caller: TenantCaller, name: str) -> None:
    """Stop = delete the Notebook resource: pod, service and token go, the home volume stays."""
    store = _store(cluster)
    slug = caller.tenant.slug
    raw = _get_raw(store, slug, name)
    spec = raw.get("spec") or {}
    owner = spec.get("owner")
    if owner != caller.user.subject and not caller.is_admin:
        raise PermissionDeniedError(
            message(
                "notebooks.stop_needs_admin",
                name=name,
                owner=spec.get("ownerName") or owner or "?",
            )
        )
    if (raw.get("metadata") or {}).get("deletionTimestamp"):
        return  # already being stopped: nothing more to do, nothing more to audit
    record(
        session,
        Actor.of(caller.user),
        "notebook.stopped",
        "notebook",
        f"{slug}/{name}",
        before={
            "tenant": slug,
            "name": name,
            "profile": spec.get("profile"),
            "owner": owner,
            "phase": (raw.get("status") or {}).get("phase"),
        },
        after={"stop_reason": "user"},
    )
    session.flush()
    store.delete(namespace_for(slug), name)
