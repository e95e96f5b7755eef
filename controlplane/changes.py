"""Reading a change counter (controlplane.models.changes) from the event loop, without a thread.

A cache that serves rendered results must ask the database "has anything changed?" on every
request; if that question costs a thread hop (≈ 0.3 ms on the 2-core VM, more than rendering a
small page) the cache saves little. So the counter is read without one:

- SQLite: a dedicated read-only-by-pragma connection to the same file, used only from the event
  loop. Reading one row by primary key from a local WAL database is a function call of a few
  microseconds, and WAL readers never wait for writers.
- PostgreSQL: a psycopg ``AsyncConnection`` (autocommit), so the round trip awaits the socket
  instead of blocking the loop.

When the counter cannot be read (the reader is disabled, the database is down, the table is
missing) :meth:`ChangeCounterReader.read` returns ``None`` and callers take their uncached path,
which reports the failure the usual way.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Protocol

import psycopg
import structlog
from sqlalchemy import Engine

log = structlog.get_logger(__name__)

_QUERY = "SELECT version FROM change_counters WHERE name = %s"
_RETRY_SECONDS = 1.0


class ChangeCounterReader(Protocol):
    async def read(self, name: str) -> int | None:
        """The counter's current value, or None when it cannot be read now."""

    async def aclose(self) -> None: ...


class _Backoff:
    """After a failure, no new connection for a second: not one attempt and warning per request."""

    def __init__(self) -> None:
        self._failed_at = -_RETRY_SECONDS

    def _may_connect(self) -> bool:
        return time.monotonic() - self._failed_at >= _RETRY_SECONDS

    def _failed(self, error: Exception) -> None:
        log.warning("change counter unreadable", error=str(error))
        self._failed_at = time.monotonic()


class _SqliteReader(_Backoff):
    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False only because the loop's thread is not the creating thread in
        # every server; all reads still happen on the one event loop, never concurrently.
        connection = sqlite3.connect(
            self._path, timeout=0.05, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA query_only = 1")
        return connection

    async def read(self, name: str) -> int | None:
        try:
            if self._connection is None:
                if not self._may_connect():
                    return None
                self._connection = self._connect()
            row = self._connection.execute(_QUERY.replace("%s", "?"), (name,)).fetchone()
        except sqlite3.Error as error:
            self._failed(error)
            await self.aclose()
            return None
        return int(row[0]) if row is not None else None

    async def aclose(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class _PostgresReader(_Backoff):
    """One connection, one query at a time; requests that arrive while a query is out share
    the next one.

    Sharing is only with a query *sent after* the request arrived, so every request still sees a
    value at least as new as the last commit before it: arrivals join the read that is waiting
    for the connection, never the one already on the wire. Under concurrent load this is one
    round trip per batch of requests instead of one each.
    """

    def __init__(self, conninfo: str) -> None:
        super().__init__()
        self._conninfo = conninfo
        self._connection: psycopg.AsyncConnection[tuple[int]] | None = None
        self._lock = asyncio.Lock()
        self._next: dict[str, asyncio.Future[int | None]] = {}

    async def read(self, name: str) -> int | None:
        waiting = self._next.get(name)
        if waiting is not None:
            await asyncio.wait([waiting])  # waiting here never cancels the shared read
            return None if waiting.cancelled() else waiting.result()
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._next[name] = future
        try:
            async with self._lock:
                del self._next[name]  # later arrivals start the next read
                value = await self._query(name)
        except BaseException:
            # Cancelled (shutdown): the requests that joined take their uncached path.
            if self._next.get(name) is future:
                del self._next[name]
            future.cancel()
            raise
        future.set_result(value)
        return value

    async def _query(self, name: str) -> int | None:
        try:
            if self._connection is None or self._connection.closed:
                if not self._may_connect():
                    return None
                self._connection = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=2
                )
            cursor = await self._connection.execute(_QUERY, (name,))
            row = await cursor.fetchone()
        except psycopg.Error as error:
            self._failed(error)
            await self.aclose()
            return None
        return int(row[0]) if row is not None else None

    async def aclose(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


def reader_for(engine: Engine) -> ChangeCounterReader | None:
    """A reader for the engine's database, or None where none can see the same data."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:") or (url.query.get("mode") == "memory"):
            return None  # a second connection would open a different, empty database
        return _SqliteReader(url.database)
    if url.get_backend_name() == "postgresql":
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return _PostgresReader(conninfo)
    return None
