"""Queries on tenants."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Select, false, or_, select
from sqlalchemy.orm import Session

from controlplane.models import Agency, Tenant


class TenantRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    @staticmethod
    def _visible(
        query: Select[Tenant], organisation_number: str | None, slugs: Collection[str]
    ) -> Select[Tenant]:
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

    def list(
        self,
        *,
        everything: bool,
        organisation_number: str | None,
        slugs: Collection[str],
        limit: int,
        offset: int,
    ) -> list[Tenant]:
        query = select(Tenant)
        if not everything:
            query = self._visible(query, organisation_number, slugs)
        return list(self.session.scalars(query.order_by(Tenant.slug).limit(limit).offset(offset)))

    def get_by_slug(self, slug: str) -> Tenant | None:
        return self.session.scalars(select(Tenant).where(Tenant.slug == slug)).first()

    def slug_taken(self, slug: str) -> bool:
        return self.session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None

    def add(self, tenant: Tenant) -> Tenant:
        self.session.add(tenant)
        self.session.flush()
        return tenant
