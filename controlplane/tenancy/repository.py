"""Queries on tenants."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, TypeVar

from sqlalchemy import Row, Select, false, or_, select
from sqlalchemy.orm import Session

from controlplane.models import Agency, Tenant, TenantStatus

_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])

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


class TenantRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    @staticmethod
    def _visible(query: _Query, organisation_number: str | None, slugs: Collection[str]) -> _Query:
        conditions = []
        if organisation_number is not None:
            conditions.append(
                Tenant.agency_id.in_(
                    select(Agency.id).where(Agency.organisation_number == organisation_number)
                )
            )
        if slugs:
            conditions.append(Tenant.slug.in_(sorted(slugs)))
        return query.where(or_(*conditions) if conditions else false())

    def list_rows(
        self,
        *,
        everything: bool,
        organisation_number: str | None,
        slugs: Collection[str],
        limit: int,
        offset: int,
    ) -> list[Row[Any]]:
        """One page of tenants with their agency, as plain rows ordered by slug.

        Listing is the hot read path (portal, CLI, scripts polling), so it selects columns
        instead of ORM entities: no identity map, no relationship loading.
        """
        query = select(*LIST_COLUMNS).join(Agency, Tenant.agency_id == Agency.id)
        if not everything:
            query = self._visible(query, organisation_number, slugs)
        # Core execution on the session's connection: same transaction, no ORM result machinery.
        connection = self.session.connection()
        return list(connection.execute(query.order_by(Tenant.slug).limit(limit).offset(offset)))

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
