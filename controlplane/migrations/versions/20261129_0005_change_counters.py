"""change counters: a version bumped by triggers on every write to tenants or agencies

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 08:30:00

The tenant list cache (controlplane/tenancy/listcache.py) serves a rendered page only while
the ``tenants`` counter still has the value it was rendered at. Triggers, not application code,
move the counter, so writes from any process or tool invalidate the cache.

PostgreSQL: a deferred constraint trigger, so the counter row is updated at COMMIT — the last
lock a writing transaction takes (no lock-order cycle with the capacity row locks of
approvals) — and once per transaction however many rows it wrote (a transaction-local flag).
SQLite: plain row triggers; SQLite has one writer at a time anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("tenants", "agencies")
_EVENTS = ("insert", "update", "delete")

_PG_FUNCTION = """
CREATE FUNCTION sandlada_bump_tenants_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('sandlada.tenants_bumped', true), '') <> 'yes' THEN
        PERFORM set_config('sandlada.tenants_bumped', 'yes', true);
        UPDATE change_counters SET version = version + 1 WHERE name = 'tenants';
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "change_counters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_change_counters")),
    )
    op.execute("INSERT INTO change_counters (name, version) VALUES ('tenants', 1)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for table in _TABLES:
            op.execute(
                f"CREATE CONSTRAINT TRIGGER {table}_bump_tenants_version "
                f"AFTER INSERT OR UPDATE OR DELETE ON {table} "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                "EXECUTE FUNCTION sandlada_bump_tenants_version()"
            )
        return
    for table in _TABLES:
        for event in _EVENTS:
            op.execute(
                f"CREATE TRIGGER {table}_{event}_bump_tenants_version "
                f"AFTER {event.upper()} ON {table} BEGIN "
                "UPDATE change_counters SET version = version + 1 WHERE name = 'tenants'; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _TABLES:
            op.execute(f"DROP TRIGGER {table}_bump_tenants_version ON {table}")
        op.execute("DROP FUNCTION sandlada_bump_tenants_version()")
    else:
        for table in _TABLES:
            for event in _EVENTS:
                op.execute(f"DROP TRIGGER {table}_{event}_bump_tenants_version")
    op.drop_table("change_counters")
