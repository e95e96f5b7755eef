"""A tenant's life on the cluster: provision, follow its status, suspend, resume, offboard.

The SQL row is the record of what was decided; the cluster-scoped Tenant resource is what the
operator acts on. The control plane writes only the resource's ``spec`` (server-side apply) and
only reads its ``status``.

Approval applies the resource *inside* the approving transaction, as its last step: if the
apiserver is down the approval fails with 503 and nothing is written, so an admin never sees an
"approved" tenant that silently does not exist. The one gap left (the apply succeeds, then the
commit fails) leaves a resource without a row; it is harmless (no one can log in to it) and an
admin removes it with kubectl. A tenant approved while no cluster is configured stays
``provisioning`` and :func:`sync_tenants` creates its resource once a cluster is there.

Offboarding suspends at once (no pods, data kept) and sets ``delete_after`` = now + the
retention period; the sync deletes the resource after that (status ``deleting``) and marks the
tenant ``deleted`` when the operator's finalizer has removed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy.orm import Session

from controlplane.audit.service import Actor, record
from controlplane.cluster.storage import (
    NOT_CONFIGURED_MESSAGE,
    ClusterNotConfiguredError,
    TenantCluster,
)
from controlplane.errors import InvalidTransitionError, SandladaError
from controlplane.models import DataClassification, Tenant, TenantStatus
from controlplane.tenancy.repository import TenantRepository
from controlplane.tenancy.schemas import ClusterStatusOut
from controlplane.tenancy.service import audit_view
from tenants.resource import Agency, Condition, Phase, TenantQuota, TenantSpec, tenant_body
from tenants.resource import DataClassification as ResourceClassification
from tenants.resource import Tenant as TenantResource
from tenants.status import READY

SYNC_ACTOR = Actor(subject="controlplane-sync", name="tenant status sync")

_CLASSIFICATION = {
    DataClassification.OPEN: ResourceClassification.PUBLIC,
    DataClassification.INTERNAL: ResourceClassification.INTERNAL,
    DataClassification.CONFIDENTIAL: ResourceClassification.CONFIDENTIAL,
}

_STATUS_SV = {
    TenantStatus.PROVISIONING: "skapas",
    TenantStatus.READY: "klar",
    TenantStatus.SUSPENDED: "pausad",
    TenantStatus.DELETING: "tas bort",
    TenantStatus.DELETED: "borttagen",
}


def tenant_spec(tenant: Tenant) -> TenantSpec:
    """The Tenant resource's spec for a SQL tenant: what was granted, and whether it is paused."""
    return TenantSpec(
        slug=tenant.slug,
        agency=Agency(
            name=tenant.agency.name, organisation_number=tenant.agency.organisation_number
        ),
        quota=TenantQuota(
            gpus=tenant.gpus,
            gpu_model=tenant.gpu_model,
            cpu=tenant.cpu,
            memory_gib=tenant.memory_gib,
            storage_gib=tenant.storage_gib,
        ),
        data_classification=_CLASSIFICATION[tenant.request.data_classification],
        # The sandbox ends at the end of its last day (UTC).
        expires_at=datetime.combine(tenant.expires_on, time.max, tzinfo=UTC),
        suspended=tenant.status in (TenantStatus.SUSPENDED, TenantStatus.DELETING),
    )


def provision(cluster: TenantCluster | None, tenant: Tenant) -> None:
    """Apply the tenant's resource; without a cluster, leave it for the sync to create."""
    if cluster is not None:
        cluster.apply_tenant(tenant_body(tenant_spec(tenant)))


def is_ready(resource: TenantResource) -> bool:
    return resource.status.phase == Phase.READY and any(
        c.type == READY and c.status == "True" for c in resource.status.conditions
    )


def cluster_status(cluster: TenantCluster | None, tenant: Tenant) -> ClusterStatusOut:
    """What the cluster says about the tenant, for people; never fails the read."""
    now = datetime.now(UTC)
    if cluster is None:
        return ClusterStatusOut(
            reachable=False,
            conditions=[_unknown("ClusterNotConfigured", NOT_CONFIGURED_MESSAGE, now)],
        )
    try:
        resource = cluster.read_tenant(tenant.slug)
    except SandladaError as exc:
        return ClusterStatusOut(
            reachable=False, conditions=[_unknown("ClusterUnreachable", exc.detail, now)]
        )
    if resource is None:
        message = (
            "the Tenant resource does not exist (yet) / Tenant-resursen finns inte (ännu)"
            if tenant.status is not TenantStatus.DELETED
            else "deleted / borttagen"
        )
        return ClusterStatusOut(
            reachable=True, conditions=[_unknown("ResourceMissing", message, now)]
        )
    return ClusterStatusOut(
        reachable=True,
        phase=resource.status.phase,
        conditions=resource.status.conditions,
        gpus_used=resource.status.gpus_used,
    )


def _unknown(reason: str, message: str, now: datetime) -> Condition:
    return Condition(
        type=READY, status="Unknown", reason=reason, message=message, last_transition_time=now
    )


def _require(tenant: Tenant, action: str, *allowed: TenantStatus) -> None:
    if tenant.status not in allowed:
        raise InvalidTransitionError(
            f"tenant {tenant.slug} is {tenant.status.value}, so it cannot be {action} / "
            f"miljön är {_STATUS_SV[tenant.status]}"
        )


def _change(
    session: Session,
    actor: Actor,
    cluster: TenantCluster | None,
    tenant: Tenant,
    *,
    action: str,
    status: TenantStatus,
    delete_after: datetime | None = None,
) -> Tenant:
    before = audit_view(tenant)
    tenant.status = status
    tenant.delete_after = delete_after
    session.flush()
    record(
        session,
        actor,
        action,
        "tenant",
        tenant.slug,
        before=before,
        after={
            **audit_view(tenant),
            "delete_after": delete_after.isoformat() if delete_after else None,
        },
    )
    # Last, as in approval: apiserver down → 503 and the transaction (with its audit) rolls back.
    if cluster is None:
        raise ClusterNotConfiguredError(NOT_CONFIGURED_MESSAGE)
    cluster.apply_tenant(tenant_body(tenant_spec(tenant)))
    return tenant


def suspend(
    session: Session, actor: Actor, cluster: TenantCluster | None, tenant: Tenant
) -> Tenant:
    _require(tenant, "suspended", TenantStatus.READY, TenantStatus.PROVISIONING)
    return _change(
        session, actor, cluster, tenant, action="tenant.suspended", status=TenantStatus.SUSPENDED
    )


def resume(session: Session, actor: Actor, cluster: TenantCluster | None, tenant: Tenant) -> Tenant:
    _require(tenant, "resumed", TenantStatus.SUSPENDED)
    # Ready again only when the operator says so; the sync moves it on.
    status = TenantStatus.READY if tenant.ready_at is not None else TenantStatus.PROVISIONING
    return _change(session, actor, cluster, tenant, action="tenant.resumed", status=status)


def offboard(
    session: Session,
    actor: Actor,
    cluster: TenantCluster | None,
    tenant: Tenant,
    retention: timedelta,
) -> Tenant:
    """Suspend now and schedule deletion after ``retention`` (the sync carries it out)."""
    _require(
        tenant, "offboarded", TenantStatus.READY, TenantStatus.PROVISIONING, TenantStatus.SUSPENDED
    )
    return _change(
        session,
        actor,
        cluster,
        tenant,
        action="tenant.offboarded",
        status=TenantStatus.SUSPENDED,
        delete_after=datetime.now(UTC) + retention,
    )


@dataclass
class SyncReport:
    """What one pass of the sync did, by tenant slug."""

    created: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    ready: list[str] = field(default_factory=list)
    deleting: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def sync_tenants(
    session: Session,
    cluster: TenantCluster,
    *,
    retention: timedelta,
    now: datetime | None = None,
) -> SyncReport:
    """One pass: make SQL follow the Tenant resources, expire, and carry out due deletions.

    A tenant past its last day (``expires_on``) is offboarded as an admin would: suspended at
    once, deleted ``retention`` later.

    One list call for all resources; writes only rows whose state changed. Raises a
    ``ClusterUnavailableError`` when the apiserver cannot be reached (the caller retries).
    """
    now = now or datetime.now(UTC)
    resources = cluster.list_tenants()
    report = SyncReport()
    for tenant in TenantRepository(session).list_live():
        resource = resources.get(tenant.slug)
        if _expired(tenant, now):
            _change(
                session,
                SYNC_ACTOR,
                cluster,
                tenant,
                action="tenant.expired",
                status=TenantStatus.SUSPENDED,
                delete_after=now + retention,
            )
            report.expired.append(tenant.slug)
        elif tenant.status is TenantStatus.PROVISIONING:
            if resource is None:
                provision(cluster, tenant)
                report.created.append(tenant.slug)
            elif is_ready(resource):
                _mark_ready(session, tenant, resource, now)
                report.ready.append(tenant.slug)
        elif tenant.status is TenantStatus.SUSPENDED:
            if tenant.delete_after is not None and tenant.delete_after <= now:
                before = audit_view(tenant)
                cluster.delete_tenant(tenant.slug)
                tenant.status = TenantStatus.DELETING
                session.flush()
                record(
                    session, SYNC_ACTOR, "tenant.deleting", "tenant", tenant.slug,
                    before=before, after=audit_view(tenant),
                )  # fmt: skip
                report.deleting.append(tenant.slug)
        elif tenant.status is TenantStatus.DELETING:
            if resource is None:
                before = audit_view(tenant)
                tenant.status = TenantStatus.DELETED
                session.flush()
                record(
                    session, SYNC_ACTOR, "tenant.deleted", "tenant", tenant.slug,
                    before=before, after=audit_view(tenant),
                )  # fmt: skip
                report.deleted.append(tenant.slug)
            elif resource.metadata.get("deletionTimestamp") is None:
                cluster.delete_tenant(tenant.slug)
    return report


def _expired(tenant: Tenant, now: datetime) -> bool:
    return (
        tenant.expires_on < now.date()
        and tenant.delete_after is None
        and tenant.status in (TenantStatus.PROVISIONING, TenantStatus.READY, TenantStatus.SUSPENDED)
    )


def _mark_ready(session: Session, tenant: Tenant, resource: TenantResource, now: datetime) -> None:
    before = audit_view(tenant)
    ready_at = resource.status.provisioned_at or now
    tenant.status = TenantStatus.READY
    tenant.ready_at = ready_at
    tenant.provisioning_seconds = max(0.0, (ready_at - tenant.created_at).total_seconds())
    session.flush()
    record(
        session,
        SYNC_ACTOR,
        "tenant.ready",
        "tenant",
        tenant.slug,
        before=before,
        after={**audit_view(tenant), "provisioning_seconds": tenant.provisioning_seconds},
    )
