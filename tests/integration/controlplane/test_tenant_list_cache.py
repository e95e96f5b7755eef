"""The tenant list cache: pages stay correct when anything writes tenants or agencies.

These tests run the app on its own committed database (not the rolled-back test connection, on
which the cache is off), with writes made both through the API and by another connection
behind the app's back, as another replica or a manual SQL fix would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text, update

from controlplane.app import create_app
from controlplane.changes import reader_for
from controlplane.database import Database, make_engine
from controlplane.models import Agency, Tenant
from controlplane.settings import Settings
from controlplane.tenancy.routes import _matches
from infra.process import free_port
from tests.fixtures.database import PostgresCluster
from tests.fixtures.tokens import ADMIN, KIRUNA_COLLEAGUE, LULEA, LULEA_REQUESTER, TestIssuer
from tests.integration.controlplane.conftest import Api

BASE = "/api/v1/tenants"
NO_GPU = {"gpus": 0, "cpu": 2, "memory_gib": 8, "storage_gib": 10}


@pytest.fixture
def outside(served_settings: Settings) -> Iterator[Database]:
    """A second connection pool on the app's database: writes the app did not make."""
    database = Database.from_url(served_settings.database_url)
    yield database
    database.dispose()


def _api(settings: Settings, issuer: TestIssuer) -> Iterator[Api]:
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, issuer)
    app.state.database.dispose()


@pytest.fixture
def cached(served_settings: Settings, oidc_issuer: TestIssuer) -> Iterator[Api]:
    yield from _api(served_settings, oidc_issuer)


def _tenant(api: Api, **overrides: Any) -> str:
    created = api.submit(**{"quota": NO_GPU, **overrides})
    response = api.approve(created["id"])
    assert response.status_code == 200, response.text
    slug: str = response.json()["tenant"]["slug"]
    return slug


def _counter(database: Database) -> int:
    with database.session() as session:
        value = session.scalar(text("SELECT version FROM change_counters WHERE name = 'tenants'"))
    assert isinstance(value, int)
    return value


def test_triggers_move_the_counter_on_every_write(cached: Api, outside: Database) -> None:
    before = _counter(outside)
    slug = _tenant(cached, name="counted")
    after_create = _counter(outside)
    assert after_create > before
    with outside.session(write=True) as session:
        session.execute(update(Tenant).where(Tenant.slug == slug).values(cpu=3))
        session.commit()
    after_update = _counter(outside)
    assert after_update > after_create
    with outside.session(write=True) as session:
        session.execute(update(Agency).values(name="Kiruna kommun (ny)"))
        session.commit()
    after_rename = _counter(outside)
    assert after_rename > after_update
    # A transaction that only reads moves nothing.
    with outside.session() as session:
        session.execute(text("SELECT count(*) FROM tenants")).scalar()
        session.commit()
    assert _counter(outside) == after_rename


def test_one_bump_per_transaction_on_postgresql(cached: Api, outside: Database) -> None:
    if outside.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's row triggers bump once per row; only PostgreSQL coalesces")
    for n in range(3):
        _tenant(cached, name=f"bulk-{n}")
    before = _counter(outside)
    with outside.session(write=True) as session:
        changed = session.execute(update(Tenant).values(cpu=5).returning(Tenant.id)).all()
        session.commit()
    assert len(changed) == 3
    assert _counter(outside) == before + 1


def test_page_is_cached_until_something_writes(cached: Api, outside: Database) -> None:
    slug = _tenant(cached, name="cached-one")
    first = cached.request("GET", BASE, ADMIN)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    second = cached.request("GET", BASE, ADMIN)
    assert second.headers["etag"] == etag
    assert second.content == first.content
    assert cached.request("GET", BASE, ADMIN, headers={"If-None-Match": etag}).status_code == 304

    # Written behind the app's back: the next page shows it and has a new ETag.
    with outside.session(write=True) as session:
        session.execute(update(Tenant).where(Tenant.slug == slug).values(cpu=7))
        session.commit()
    third = cached.request("GET", BASE, ADMIN, headers={"If-None-Match": etag})
    assert third.status_code == 200
    assert third.headers["etag"] != etag
    assert [t["quota"]["cpu"] for t in third.json()] == [7]

    # An agency rename is in every page of its tenants.
    with outside.session(write=True) as session:
        session.execute(update(Agency).values(name="Kiruna kommun (ny)"))
        session.commit()
    assert [t["agency"]["name"] for t in cached.request("GET", BASE, ADMIN).json()] == [
        "Kiruna kommun (ny)"
    ]


def test_pages_are_per_caller_and_per_bounds(cached: Api) -> None:
    kiruna = _tenant(cached, name="kiruna-one")
    agency = {"name": "Luleå kommun", "organisation_number": LULEA, "kind": "municipality"}
    created = cached.submit(LULEA_REQUESTER, name="lulea-one", agency=agency, quota=NO_GPU)
    assert cached.approve(created["id"]).status_code == 200
    everything = cached.request("GET", BASE, ADMIN)
    assert [t["slug"] for t in everything.json()] == [kiruna, "lulea-one"]
    # Same URL, another caller: their own page, never the admin's kept one.
    mine = cached.request("GET", BASE, KIRUNA_COLLEAGUE)
    assert [t["slug"] for t in mine.json()] == [kiruna]
    assert mine.headers["etag"] != everything.headers["etag"]
    assert (
        cached.request(
            "GET", BASE, KIRUNA_COLLEAGUE, headers={"If-None-Match": everything.headers["etag"]}
        ).json()
        == mine.json()
    )
    second_page = cached.request("GET", BASE, ADMIN, params={"limit": 1, "offset": 1})
    assert [t["slug"] for t in second_page.json()] == ["lulea-one"]


def test_new_tenant_is_listed_right_after_its_approval(cached: Api) -> None:
    assert cached.request("GET", BASE, ADMIN).json() == []
    slug = _tenant(cached, name="fresh")
    assert [t["slug"] for t in cached.request("GET", BASE, ADMIN).json()] == [slug]


def test_without_cache_pages_are_rendered_every_time(
    served_settings: Settings, oidc_issuer: TestIssuer, outside: Database
) -> None:
    settings = served_settings.model_copy(update={"tenant_list_cache_entries": 0})
    for api in _api(settings, oidc_issuer):
        slug = _tenant(api, name="uncached")
        assert [t["quota"]["cpu"] for t in api.request("GET", BASE, ADMIN).json()] == [2]
        with outside.session(write=True) as session:
            session.execute(update(Tenant).where(Tenant.slug == slug).values(cpu=9))
            session.commit()
        assert [t["quota"]["cpu"] for t in api.request("GET", BASE, ADMIN).json()] == [9]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("", False),
        ('"t1-ab"', True),
        ('W/"t1-ab"', True),
        ('"t0-ab", "t1-ab"', True),
        ("*", True),
        ('"t2-ab"', False),
    ],
)
def test_if_none_match(header: str | None, expected: bool) -> None:
    assert _matches(header, '"t1-ab"') is expected


@pytest.mark.postgres
def test_counter_reader_says_none_when_it_cannot_read(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    async def read(url: str) -> int | None:
        reader = reader_for(make_engine(url))
        assert reader is not None
        try:
            return await reader.read("tenants")
        finally:
            await reader.aclose()

    # An in-memory database has no second connection to read it through.
    assert reader_for(make_engine("sqlite://")) is None
    # Not migrated (no table): None, and the cache renders every request instead.
    assert asyncio.run(read(f"sqlite:///{tmp_path / 'empty.db'}")) is None
    # A PostgreSQL server that is not there (a port nobody listens on).
    url = postgres_cluster.url("postgres")
    assert asyncio.run(read(url.replace(f":{postgres_cluster.port}/", f":{free_port()}/"))) is None
    # Reachable but not migrated: None.
    assert asyncio.run(read(url)) is None


def test_concurrent_counter_reads_share_round_trips_and_see_later_commits(
    fresh_database_url: str,
) -> None:
    engine = make_engine(fresh_database_url)

    async def scenario() -> tuple[list[int | None], int | None]:
        reader = reader_for(engine)
        assert reader is not None
        try:
            together = await asyncio.gather(*(reader.read("tenants") for _ in range(20)))
            with engine.begin() as connection:
                connection.execute(
                    text("UPDATE change_counters SET version = version + 1 WHERE name = 'tenants'")
                )
            return list(together), await reader.read("tenants")
        finally:
            await reader.aclose()

    try:
        together, after = asyncio.run(scenario())
    finally:
        engine.dispose()
    assert len(set(together)) == 1
    first = together[0]
    assert isinstance(first, int)
    assert after == first + 1
