"""Queries on tenants."""

from __future__ import annotations

import functools
from collections.abc import Collection
from typing import Any

from sqlalchemy import Row, Select, bindparam, or_, select
from sqlalchemy.orm import Session

from controlplane.models import Agency, ChangeCounter, Tenant, TenantStatus
from controlplane.models.changes import TENANTS

LIST_COLUMNS = (
    Tenant.slug,
    Tenant.status,
    Tenant.gpus,
    Tenant.gpu_model,
    Tenant.cpu,
    Tenant.memory_gib,
    Tenant.storage_gib,
    Tenant.expires_on,
    Tenant.request_id,
    Tenant.created_at,
    Tenant.updated_at,
    Tenant.ready_at,
    Tenant.provisioning_seconds,
    Tenant.delete_after,
    Agency.name.label("agency_name"),
    Agency.organisation_number.label("agency_organisation_number"),
    Agency.kind.label("agency_kind"),
)


@functools.cache
def _list_statement(everything: bool, has_org: bool, has_slugs: bool) -> Select[*tuple[Any, ...]]:
    """The page query for one visibility shape, built once per process."""
    query = select(*LIST_COLUMNS).join(Agency, Tenant.agency_id == Agency.id)
    if not everything:
        conditions = []
        if has_org:
            conditions.append(
                Tenant.agency_id.in_(
                    select(Agency.id).where(
                        Agency.organisation_number == bindparam("organisation_number")
                    )
                )
            )
        if has_slugs:
            conditions.append(Tenant.slug.in_(bindparam("slugs", expanding=True)))
        query = query.where(or_(*conditions))
    return query.order_by(Tenant.slug).limit(bindparam("limit")).offset(bindparam("offset"))


class TenantRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def list_rows(
        self,
        *,
        everything: bool,
        organisation_number: str | None,
        slugs: Collection[str],
        limit: int,
        offset: int,
    ) -> list[Row[*tuple[Any, ...]]]:
        """One page of tenants with their agency, as plain rows ordered by slug.

        Listing is the hot read path (portal, CLI, scripts polling), so it selects columns
        instead of ORM entities (no identity map, no relationship loading), and its statements
        are built once with bound parameters: building and cache-keying a Select costs more than
        running it on a 1-row page.
        """
        has_org = not everything and organisation_number is not None
        has_slugs = not everything and bool(slugs)
        if not everything and not has_org and not has_slugs:
            return []
        parameters: dict[str, Any] = {"limit": limit, "offset": offset}
        if has_org:
            parameters["organisation_number"] = organisation_number
        if has_slugs:
            parameters["slugs"] = sorted(slugs)
        # Core execution on the session's connection: same transaction, no ORM result machinery.
        connection = self.session.connection()
        statement = _list_statement(everything, has_org, has_slugs)
        return list(connection.execute(statement, parameters).all())

    def list_version(self) -> int | None:
        """The ``tenants`` change counter (moved by triggers on tenants and agencies)."""
        return self.session.scalar(
            select(ChangeCounter.version).where(ChangeCounter.name == TENANTS)
        )

    def get_by_slug(self, slug: str) -> Tenant | None:
        return self.session.scalars(select(Tenant).where(Tenant.slug == slug)).first()

    def get_for_update(self, slug: str) -> Tenant | None:
        """The tenant, locked until the transaction ends (FOR UPDATE on PostgreSQL)."""
        return self.session.scalars(
            select(Tenant)
            .where(Tenant.slug == slug)
            .with_for_update(of=Tenant)
            .execution_options(populate_existing=True)
        ).first()

    def slug_taken(self, slug: str) -> bool:
        return self.session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None

    def add(self, tenant: Tenant) -> Tenant:
        self.session.add(tenant)
        self.session.flush()
        return tenant

    def list_live(self) -> list[Tenant]:
        """Every tenant not yet deleted, for the status sync (oldest first)."""
        query = select(Tenant).where(Tenant.status != TenantStatus.DELETED).order_by(Tenant.id)
        return list(self.session.scalars(query))
