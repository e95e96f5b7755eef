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

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import structlog
from sqlalchemy.orm import Session

from controlplane.audit.repository import AuditRepository
from controlplane.audit.service import Actor, record
from controlplane.cluster.storage import (
    NOT_CONFIGURED_MESSAGE,
    ClusterNotConfiguredError,
    TenantCluster,
)
from controlplane.database import Database
from controlplane.errors import InvalidTransitionError, NotFoundError, SandladaError
from controlplane.identity.storage import IdentityStore
from controlplane.members import service as members
from controlplane.messages import DEFAULT_LANGUAGE, Language, Message, action, message, state
from controlplane.models import DataClassification, Tenant, TenantStatus
from controlplane.settings import get_settings
from controlplane.tenancy.repository import TenantRepository
from controlplane.tenancy.schemas import ClusterStatusOut
from controlplane.tenancy.service import audit_view
from tenants.resource import (
    Agency,
    Condition,
    Phase,
    SharedService,
    TenantQuota,
    TenantSpec,
    tenant_body,
)
from tenants.resource import DataClassification as ResourceClassification
from tenants.resource import Tenant as TenantResource
from tenants.status import READY

log = structlog.get_logger(__name__)

GROUPS_CREATED = "tenant.groups_created"
SYNC_ACTOR = Actor(subject="controlplane-sync", name="tenant status sync")

_CLASSIFICATION = {
    DataClassification.OPEN: ResourceClassification.PUBLIC,
    DataClassification.INTERNAL: ResourceClassification.INTERNAL,
    DataClassification.CONFIDENTIAL: ResourceClassification.CONFIDENTIAL,
}


def tenant_spec(tenant: Tenant) -> TenantSpec:
    """The Tenant resource's spec for a SQL tenant: what was granted, and whether it is paused.

    The platform's shared services are granted here, by the control plane: when the platform
    runs MLflow (``SANDLADA_MLFLOW_ENABLED``) every tenant gets ``sharedServices: [mlflow]``,
    and the operator renders the NetworkPolicy that lets its pods reach the server (and prunes
    it when the grant goes). The setting is read from the process's settings because every
    caller hands over only the SQL row; the served app uses the same settings object.
    """
    shared = [SharedService.MLFLOW] if get_settings().mlflow_enabled else []
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
        shared_services=shared,
    )


def provision(cluster: TenantCluster | None, tenant: Tenant) -> None:
    """Apply the tenant's resource; without a cluster, leave it for the sync to create."""
    if cluster is not None:
        cluster.apply_tenant(tenant_body(tenant_spec(tenant)))


def is_ready(resource: TenantResource) -> bool:
    return resource.status.phase == Phase.READY and any(
        c.type == READY and c.status == "True" for c in resource.status.conditions
    )


def cluster_status(
    cluster: TenantCluster | None, tenant: Tenant, language: Language = DEFAULT_LANGUAGE
) -> ClusterStatusOut:
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
            reachable=False,
            conditions=[_unknown("ClusterUnreachable", exc.render(language), now)],
        )
    if resource is None:
        missing = message(
            "tenant.resource_missing"
            if tenant.status is not TenantStatus.DELETED
            else "tenant.deleted"
        )
        return ClusterStatusOut(
            reachable=True,
            conditions=[_unknown("ResourceMissing", missing.render(language), now)],
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


def _require(tenant: Tenant, verb: str, *allowed: TenantStatus) -> None:
    if tenant.status not in allowed:
        raise InvalidTransitionError(
            message(
                "tenant.invalid_transition",
                slug=tenant.slug,
                state=state(tenant.status.value),
                action=action(verb),
            )
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
    apply: bool = True,
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
    if not apply:
        return tenant  # the caller applies after its transaction (the sync)
    # Last: apiserver down → 503 and the transaction (with its audit) rolls back. An admin's
    # action is rare and one call bounded by the client timeout, so it may hold the row lock.
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
    groups: list[str] = field(default_factory=list)
    reapplied: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Snapshot:
    """What a pass needs to know about one tenant, read without holding any lock."""

    slug: str
    status: TenantStatus
    expired: bool
    delete_due: bool
    body: dict[str, Any]
    requester_subject: str
    groups_done: bool


@contextmanager
def locked_tenant(database: Database, slug: str) -> Iterator[tuple[Session, Tenant | None]]:
    """A short write transaction on one tenant's row; commits when the block ends."""
    with database.session(write=True) as session, session.begin():
        yield session, TenantRepository(session).get_for_update(slug)


def _snapshots(database: Database, now: datetime, *, identity: bool) -> list[_Snapshot]:
    with database.session() as session:
        groups_done = (
            AuditRepository(session).subjects_with(GROUPS_CREATED, "tenant") if identity else set()
        )
        return [
            _Snapshot(
                slug=tenant.slug,
                status=tenant.status,
                expired=_expired(tenant, now),
                delete_due=tenant.delete_after is not None and tenant.delete_after <= now,
                body=tenant_body(tenant_spec(tenant)),
                requester_subject=tenant.request.requester_subject,
                groups_done=tenant.slug in groups_done,
            )
            for tenant in TenantRepository(session).list_live()
        ]


def sync_tenants(
    database: Database,
    cluster: TenantCluster,
    *,
    retention: timedelta,
    identity: IdentityStore | None = None,
    now: datetime | None = None,
) -> SyncReport:
    """One pass: make SQL and the cluster agree, expire, carry out due deletions, retry set-up.

    A tenant past its last day (``expires_on``) is offboarded as an admin would: suspended at
    once, deleted ``retention`` later. The pass also finishes what an approval could not (the
    Tenant resource or the identity groups, when the apiserver or Keycloak failed) and re-applies
    a resource whose ``spec.suspended`` disagrees with SQL or whose ``sharedServices`` differ
    from what the platform grants now.

    No lock is held while the pass talks to the apiserver or Keycloak: it reads a snapshot, makes
    the outside calls, and writes each change in its own short transaction that re-checks the
    row. Status changes normally arrive first through the watch (controlplane/tenancy/watch.py);
    the pass is the safety net. Raises a ``ClusterUnavailableError`` when the apiserver cannot
    be reached (the caller retries).
    """
    now = now or datetime.now(UTC)
    # Snapshot first, list second: every tenant in the snapshot whose approval applied its
    # resource before the list is seen with it (no needless second apply).
    snapshots = _snapshots(database, now, identity=identity is not None)
    resources = cluster.list_tenants()
    report = SyncReport()
    for tenant in snapshots:
        resource = resources.get(tenant.slug)
        if _step(database, cluster, tenant, resource, report, retention=retention, now=now):
            continue
        if resource is not None and _drifted(resource.spec, tenant.body["spec"]):
            # An apply after a committed change failed (apiserver down), or the platform's
            # grants changed (MLflow switched on or off); converge now.
            cluster.apply_tenant(tenant.body)
            report.reapplied.append(tenant.slug)
        if (
            identity is not None
            and not tenant.groups_done
            and _retry_groups(database, identity, tenant.slug, tenant.requester_subject)
        ):
            report.groups.append(tenant.slug)
    return report


def _drifted(live: TenantSpec, wanted: dict[str, Any]) -> bool:
    """Whether the resource's spec lacks what SQL and the platform's settings say it should have."""
    return live.suspended != wanted["suspended"] or sorted(live.shared_services) != sorted(
        SharedService(service) for service in wanted.get("sharedServices", [])
    )


def retry_groups(database: Database, identity: IdentityStore) -> list[str]:
    """Set up the identity groups of every live tenant whose approval could not (Keycloak down).

    Part of each sync pass; callable alone where no cluster is configured.
    """
    with database.session() as session:
        done = AuditRepository(session).subjects_with(GROUPS_CREATED, "tenant")
        todo = [
            (tenant.slug, tenant.request.requester_subject)
            for tenant in TenantRepository(session).list_live()
            if tenant.slug not in done
            and tenant.status not in (TenantStatus.DELETING, TenantStatus.DELETED)
        ]
    return [slug for slug, subject in todo if _retry_groups(database, identity, slug, subject)]


def _step(
    database: Database,
    cluster: TenantCluster,
    tenant: _Snapshot,
    resource: TenantResource | None,
    report: SyncReport,
    *,
    retention: timedelta,
    now: datetime,
) -> bool:
    """The lifecycle step due for one tenant; True when it is being removed (nothing else to do)."""
    if tenant.expired:
        with locked_tenant(database, tenant.slug) as (session, row):
            if row is None or not _expired(row, now):
                return True
            _change(
                session, SYNC_ACTOR, None, row, action="tenant.expired",
                status=TenantStatus.SUSPENDED, delete_after=now + retention, apply=False,
            )  # fmt: skip
            body = tenant_body(tenant_spec(row))
        cluster.apply_tenant(body)
        report.expired.append(tenant.slug)
        return True
    if tenant.status is TenantStatus.PROVISIONING:
        if resource is None:
            cluster.apply_tenant(tenant.body)
            report.created.append(tenant.slug)
        elif is_ready(resource) and follow(database, tenant.slug, resource, now=now):
            report.ready.append(tenant.slug)
        return False
    if tenant.status is TenantStatus.SUSPENDED and tenant.delete_due:
        cluster.delete_tenant(tenant.slug)
        with locked_tenant(database, tenant.slug) as (session, row):
            if row is not None and row.status is TenantStatus.SUSPENDED:
                _transition(session, row, TenantStatus.DELETING, "tenant.deleting")
                report.deleting.append(tenant.slug)
        return True
    if tenant.status is TenantStatus.DELETING:
        if resource is None:
            if follow(database, tenant.slug, None, now=now):
                report.deleted.append(tenant.slug)
        elif resource.metadata.get("deletionTimestamp") is None:
            cluster.delete_tenant(tenant.slug)
        return True
    return False


def _retry_groups(
    database: Database, identity: IdentityStore, slug: str, requester_subject: str
) -> bool:
    try:
        admin = members.ensure_tenant_groups(identity, slug, requester_subject, exact=False)
    except SandladaError as exc:
        log.warning("tenant groups retry failed", slug=slug, error=exc.detail)
        return False
    with database.session(write=True) as session, session.begin():
        members.record_tenant_groups(session, SYNC_ACTOR, slug, admin)
    return True


def follow(
    database: Database, slug: str, resource: TenantResource | None, *, now: datetime | None = None
) -> bool:
    """Make SQL follow one Tenant resource (``None``: it is gone); True if a row changed.

    Used by the watch for every event and by the sync pass. Reads first and takes the write
    lock only when there is something to change, so a stream of status events costs reads.
    """
    with database.session() as session:
        tenant = TenantRepository(session).get_by_slug(slug)
        if tenant is None or not _follows(tenant, resource):
            return False
    with locked_tenant(database, slug) as (session, row):
        if row is None or not _follows(row, resource):
            return False  # someone else moved it on meanwhile
        if resource is None:
            _transition(session, row, TenantStatus.DELETED, "tenant.deleted")
        else:
            _mark_ready(session, row, resource, now or datetime.now(UTC))
        return True


def _follows(tenant: Tenant, resource: TenantResource | None) -> bool:
    """Whether the resource's state moves the SQL row on."""
    if resource is None:
        return tenant.status is TenantStatus.DELETING
    return tenant.status is TenantStatus.PROVISIONING and is_ready(resource)


def _transition(session: Session, tenant: Tenant, status: TenantStatus, action: str) -> None:
    before = audit_view(tenant)
    tenant.status = status
    session.flush()
    record(session, SYNC_ACTOR, action, "tenant", tenant.slug, before=before,
           after=audit_view(tenant))  # fmt: skip


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


SETUP_DEFERRED = "tenant.setup_deferred"


def complete_setup(
    database: Database,
    cluster: TenantCluster | None,
    identity: IdentityStore | None,
    slug: str,
    actor: Actor,
) -> list[Message]:
    """After an approval has committed: the Tenant resource, then the identity groups.

    Runs outside any transaction, so a slow or unreachable apiserver or Keycloak holds no lock
    and blocks no other approval. A step that fails is recorded (audit ``tenant.setup_deferred``)
    and returned as a message; the tenant stays ``provisioning`` and the sync pass retries the
    step (:func:`sync_tenants`), so nothing is lost and nothing needs the approval again.
    """
    with database.session() as session:
        tenant = TenantRepository(session).get_by_slug(slug)
        if tenant is None:
            raise NotFoundError(message("tenant.not_found", slug=slug))
        body = tenant_body(tenant_spec(tenant))
        requester = tenant.request.requester_subject
    problems: list[tuple[str, SandladaError]] = []
    if cluster is not None:
        try:
            cluster.apply_tenant(body)
        except SandladaError as exc:
            problems.append(("Kubernetes", exc))
    if identity is not None:
        try:
            admin = members.ensure_tenant_groups(identity, slug, requester)
        except SandladaError as exc:
            problems.append(("Keycloak", exc))
        else:
            with database.session(write=True) as session, session.begin():
                members.record_tenant_groups(session, actor, slug, admin)
    if problems:
        log.warning("tenant set-up deferred", slug=slug, problems=[e.detail for _, e in problems])
        with database.session(write=True) as session, session.begin():
            record(
                session, actor, SETUP_DEFERRED, "tenant", slug,
                after={"problems": [{"system": what, "error": exc.code, "detail": exc.detail}
                                    for what, exc in problems]},
            )  # fmt: skip
    return [
        message("tenant.setup_pending", what=what, error=exc.message or exc.detail)
        for what, exc in problems
    ]


def setup_pending(session: Session, tenant: Tenant) -> list[Message]:
    """The set-up steps of a deferred approval that are still not done, with their last error."""
    repository = AuditRepository(session)
    deferred = repository.last_event(SETUP_DEFERRED, "tenant", tenant.slug)
    if deferred is None or not deferred.after:
        return []
    pending = []
    for problem in deferred.after.get("problems", []):
        system = str(problem.get("system"))
        if system == "Keycloak":
            done = repository.last_event(GROUPS_CREATED, "tenant", tenant.slug) is not None
        else:
            done = tenant.status is not TenantStatus.PROVISIONING
        if not done:
            pending.append(
                message("tenant.setup_pending", what=system, error=str(problem.get("detail")))
            )
    return pending
