"""Migrations: up and down on both backends, and the models agree with them."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from controlplane import migrate
from controlplane.database import make_engine
from controlplane.models import Base
from tests.fixtures.database import MigratedDatabase


def test_upgrade_downgrade_upgrade(migrated_database: MigratedDatabase) -> None:
    url = migrated_database.clone("migrations")
    engine = make_engine(url)
    try:
        migrate.downgrade(url, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(url)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_autogenerate_finds_no_difference(migrated_database: MigratedDatabase) -> None:
    url = migrated_database.clone("autogen")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
