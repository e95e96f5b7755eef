"""Tenant records: created by an approval, read by their agency, their members and admins."""

from __future__ import annotations

from pydantic import TypeAdapter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.agencies.service import agency_out
from controlplane.audit.service import Actor, record
from controlplane.auth.principal import User
from controlplane.errors import NotFoundError
from controlplane.models import SandboxRequest, Tenant, TenantStatus
from controlplane.schemas import format_organisation_number
from controlplane.tenancy.repository import TenantRepository
from controlplane.tenancy.schemas import TenantOut
from tenants.names import is_valid_slug, namespace_for, slugify, with_hash_suffix
from tenants.quota import Quota

_SLUG_ATTEMPTS = 5
_TENANT_LIST = TypeAdapter(list[TenantOut])


def tenant_out(tenant: Tenant) -> TenantOut:
    return TenantOut(
        slug=tenant.slug,
        namespace=namespace_for(tenant.slug),
        agency=agency_out(tenant.agency),
        status=tenant.status,
        quota=tenant_quota(tenant),
        expires_on=tenant.expires_on,
        request_id=tenant.request_id,
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
        ready_at=tenant.ready_at,
        provisioning_seconds=tenant.provisioning_seconds,
        delete_after=tenant.delete_after,
    )


def tenant_quota(tenant: Tenant) -> Quota:
    return Quota(
        gpus=tenant.gpus,
        gpu_model=tenant.gpu_model,
        cpu=tenant.cpu,
        memory_gib=tenant.memory_gib,
        storage_gib=tenant.storage_gib,
    )


def audit_view(tenant: Tenant) -> dict[str, object]:
    """What the audit trail records about a tenant's state."""
    return {
        "slug": tenant.slug,
        "status": tenant.status.value,
        "quota": tenant_quota(tenant).model_dump(mode="json"),
        "expires_on": tenant.expires_on.isoformat(),
    }


def create_for_request(
    session: Session, actor: Actor, request: SandboxRequest, quota: Quota
) -> Tenant:
    """The one tenant of an approved request, with a unique slug derived from its name."""
    repository = TenantRepository(session)
    base = slugify(request.name)
    candidates = [base] + [
        with_hash_suffix(base, f"{request.id}:{attempt}") for attempt in range(_SLUG_ATTEMPTS)
    ]
    for slug in candidates:
        if repository.slug_taken(slug):
            continue
        tenant = Tenant(
            slug=slug,
            request_id=request.id,
            agency_id=request.agency_id,
            status=TenantStatus.PROVISIONING,
            gpus=quota.gpus,
            gpu_model=quota.gpu_model if quota.gpus > 0 else None,
            cpu=quota.cpu,
            memory_gib=quota.memory_gib,
            storage_gib=quota.storage_gib,
            expires_on=request.end_date,
        )
        try:
            # Another approval may take the same slug between our check and our insert; the
            # savepoint lets us try the next candidate instead of failing the approval.
            with session.begin_nested():
                repository.add(tenant)
        except IntegrityError:
            if not repository.slug_taken(slug):
                raise  # not a slug clash (e.g. the request already has a tenant)
            continue
        session.refresh(tenant)
        record(session, actor, "tenant.created", "tenant", tenant.slug, after=audit_view(tenant))
        return tenant
    raise RuntimeError(f"no free slug for {request.name!r} after {len(candidates)} attempts")


def list_tenants(session: Session, user: User, *, limit: int, offset: int) -> list[TenantOut]:
    rows = TenantRepository(session).list_rows(
        everything=user.is_platform_admin,
        organisation_number=user.organisation_number,
        slugs=user.tenant_slugs(),
        limit=limit,
        offset=offset,
    )
    # Plain dicts validated in one pass by pydantic-core: building nested models one by one in
    # Python costs more than the query on this, the hottest read.
    return _TENANT_LIST.validate_python(
        [
            {
                "slug": row.slug,
                "namespace": namespace_for(row.slug),
                "agency": {
                    "name": row.agency_name,
                    "organisation_number": format_organisation_number(
                        row.agency_organisation_number
                    ),
                    "kind": row.agency_kind,
                },
                "status": row.status,
                "quota": {
                    "gpus": row.gpus,
                    "gpu_model": row.gpu_model,
                    "cpu": row.cpu,
                    "memory_gib": row.memory_gib,
                    "storage_gib": row.storage_gib,
                },
                "expires_on": row.expires_on,
                "request_id": row.request_id,
                "created_at": row.created_at,
                "updated_at": row.updated_at,
                "ready_at": row.ready_at,
                "provisioning_seconds": row.provisioning_seconds,
                "delete_after": row.delete_after,
            }
            for row in rows
        ]
    )


def get_tenant(session: Session, user: User, slug: str) -> Tenant:
    """The tenant if the user may see it; 404 otherwise, so other agencies learn nothing."""
    tenant = TenantRepository(session).get_by_slug(slug) if is_valid_slug(slug) else None
    if tenant is None or not can_see(user, tenant):
        raise NotFoundError(f"no tenant {slug!r}")
    return tenant


def can_see(user: User, tenant: Tenant) -> bool:
    return (
        user.is_platform_admin
        or (
            user.organisation_number is not None
            and tenant.agency.organisation_number == user.organisation_number
        )
        or tenant.slug in user.tenant_slugs()
    )
