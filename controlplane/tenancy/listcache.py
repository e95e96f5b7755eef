"""Rendered pages of ``GET /api/v1/tenants``, served while the tenant data has not changed.

The tenant list is read far more often than tenants change (the portal, scripts and dashboards
poll it), and rendering a page is most of the cost of the request. Each rendered page is kept
with the value of the ``tenants`` change counter it was rendered at; database triggers move
that counter on every write to ``tenants`` or ``agencies`` (migration 0005), from any process.
A request reads the counter (on the event loop, controlplane/changes.py) and gets the kept page
only if the counter still has that value; otherwise the page is rendered again in the
threadpool. So a page is never older than the last committed write the request could see.

Consistency: a page is rendered in one transaction that reads the counter *before* the rows.
On SQLite both come from the same snapshot; on PostgreSQL (read committed) the rows may include
a later commit than the counter says, which only makes the page look stale to the next request
(it is rendered again), never the other way round.

Pages are keyed by what decides their content: the caller's visibility (platform admin, agency,
tenant groups) and the page bounds. The number of kept pages is bounded (least recently used
goes first). Each page has an ETag (counter value and key), so clients can revalidate with
``If-None-Match`` and get a 304.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from fastapi.concurrency import run_in_threadpool

from controlplane.auth.principal import User
from controlplane.changes import ChangeCounterReader, reader_for
from controlplane.database import Database
from controlplane.models.changes import TENANTS
from controlplane.tenancy import service
from controlplane.tenancy.repository import TenantRepository

# (platform admin, agency, tenant groups, limit, offset)
_Key = tuple[bool, str | None, frozenset[str], int, int]


@dataclass(frozen=True)
class Page:
    content: bytes
    version: int | None  # the counter value it was rendered at; None: not cacheable
    etag: str | None


def _key(user: User, limit: int, offset: int) -> _Key:
    if user.is_platform_admin:
        return (True, None, frozenset(), limit, offset)
    return (False, user.organisation_number, frozenset(user.tenant_slugs()), limit, offset)


def _etag(version: int, key: _Key) -> str:
    digest = hashlib.blake2b(repr(sorted(key[2])).encode(), digest_size=6)
    digest.update(repr((key[0], key[1], key[3], key[4])).encode())
    return f'"t{version}-{digest.hexdigest()}"'


class TenantListCache:
    """Pages of the tenant list by caller visibility and bounds, valid for one counter value."""

    def __init__(
        self, database: Database, reader: ChangeCounterReader | None, entries: int
    ) -> None:
        self._database = database
        # No reader (in-memory SQLite, tests bound to one transaction) or no room: every
        # request renders its page.
        self._reader = reader if entries > 0 else None
        self._entries = entries
        self._pages: OrderedDict[_Key, Page] = OrderedDict()
        self._rendering: dict[_Key, asyncio.Future[Page]] = {}

    @classmethod
    def for_database(cls, database: Database, entries: int) -> TenantListCache:
        # A database bound to one outside transaction (tests) has writes no other connection
        # can see, so the counter could not tell when its pages go stale.
        reader = None if database.bound_to_connection else reader_for(database.engine)
        return cls(database, reader, entries)

    async def page(self, user: User, limit: int, offset: int) -> Page:
        key = _key(user, limit, offset)
        current = await self._reader.read(TENANTS) if self._reader is not None else None
        if current is None:
            return await run_in_threadpool(self._render, user, key)
        page = self._pages.get(key)
        if page is not None and page.version == current:
            self._pages.move_to_end(key)
            return page
        # One render per key at a time: requests that arrive while it runs take its result if
        # it is at least as new as the counter they read.
        pending = self._rendering.get(key)
        if pending is not None:
            page = await asyncio.shield(pending)
            if page.version is not None and page.version >= current:
                return page
        return await self._render_and_keep(user, key)

    async def _render_and_keep(self, user: User, key: _Key) -> Page:
        future: asyncio.Future[Page] = asyncio.get_running_loop().create_future()
        self._rendering[key] = future
        try:
            page = await run_in_threadpool(self._render, user, key)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: waiters re-raise it, nobody else must log it
            raise
        finally:
            if self._rendering.get(key) is future:
                del self._rendering[key]
        future.set_result(page)
        if page.version is not None:
            kept = self._pages.get(key)
            if kept is None or kept.version is None or kept.version <= page.version:
                self._pages[key] = page
                self._pages.move_to_end(key)
                while len(self._pages) > self._entries:
                    self._pages.popitem(last=False)
        return page

    def _render(self, user: User, key: _Key) -> Page:
        with self._database.session() as session:
            # The counter first, then the rows (see the module docstring).
            version = TenantRepository(session).list_version()
            content = service.list_tenants_json(session, user, limit=key[3], offset=key[4])
        return Page(content, version, _etag(version, key) if version is not None else None)

    async def aclose(self) -> None:
        if self._reader is not None:
            await self._reader.aclose()
