"""Change counters: a version per group of tables, bumped by database triggers on every write.

Readers that keep rendered results (the tenant list cache, controlplane/tenancy/listcache.py)
compare the counter they rendered at with the current one. The triggers live in the migration
(revision 0005), so every writer — this process, another replica, the CLI, a manual SQL fix —
moves the counter; no code path can forget to.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from controlplane.models.base import Base

TENANTS = "tenants"
"""Bumped by any insert, update or delete on ``tenants`` or ``agencies``."""


class ChangeCounter(Base):
    __tablename__ = "change_counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
