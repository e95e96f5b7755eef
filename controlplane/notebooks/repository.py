"""Queries of the notebooks domain (the notebooks themselves live on the cluster)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.models import Tenant


def lock_tenant(session: Session, tenant_id: int) -> None:
    """Hold the tenant's row until the transaction ends, so launches check quota one at a time.

    PostgreSQL: ``SELECT … FOR UPDATE``. SQLite ignores it, but there every write request
    already holds the database's one write lock (``BEGIN IMMEDIATE``).
    """
    session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update())
