"""Tenant records: created by an approval, read by their agency, their members and admins."""

from __future__ import annotations

from pydantic import TypeAdapter
from pydantic_core import to_json
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.agencies.service import agency_out
from controlplane.audit.service import Actor, record
from controlplane.auth.principal import User
from controlplane.errors import NotFoundError
from controlplane.messages import message
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
    """One page of the tenants the user may see, as API models."""
    return _TENANT_LIST.validate_json(list_tenants_json(session, user, limit=limit, offset=offset))


def list_tenants_json(session: Session, user: User, *, limit: int, offset: int) -> bytes:
    """The same page as the JSON document of ``list[TenantOut]``, for the hot API route.

    The rows come from our own database through typed columns, so they are serialised
    straight to JSON (pydantic-core, the same encoder FastAPI uses, so dates, times and enums
    read exactly as through the model) instead of being validated into ``TenantOut`` objects
    and then serialised; that validation was most of the cost of a page. The shape is kept
    honest by a test comparing this with ``TypeAdapter(list[TenantOut])``.
    """
    rows = TenantRepository(session).list_rows(
        everything=user.is_platform_admin,
        organisation_number=user.organisation_number,
        slugs=user.tenant_slugs(),
        limit=limit,
        offset=offset,
    )
    # Rows unpack as tuples (in LIST_COLUMNS order): attribute access by name on a Row costs
    # more than building the dict.
    return to_json(
        [
            {
                "slug": slug,
                "namespace": namespace_for(slug),
                "agency": {
                    "name": agency_name,
                    "organisation_number": format_organisation_number(organisation_number),
                    "kind": agency_kind,
                },
                "status": status,
                "quota": {
                    "gpus": gpus,
                    "gpu_model": gpu_model,
                    "cpu": cpu,
                    "memory_gib": memory_gib,
                    "storage_gib": storage_gib,
                },
                "expires_on": expires_on,
                "request_id": request_id,
                "created_at": created_at,
                "updated_at": updated_at,
                "ready_at": ready_at,
                "provisioning_seconds": provisioning_seconds,
                "delete_after": delete_after,
            }
            for (
                slug, status, gpus, gpu_model, cpu, memory_gib, storage_gib, expires_on,
                request_id, created_at, updated_at, ready_at, provisioning_seconds, delete_after,
                agency_name, organisation_number, agency_kind,
            ) in rows
        ]
    )  # fmt: skip


def get_tenant(session: Session, user: User, slug: str) -> Tenant:
    """The tenant if the user may see it; 404 otherwise, so other agencies learn nothing."""
    tenant = TenantRepository(session).get_by_slug(slug) if is_valid_slug(slug) else None
    if tenant is None or not can_see(user, tenant):
        raise NotFoundError(message("tenant.not_found", slug=slug))
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
