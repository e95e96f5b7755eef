"""Engines, sessions and the request-scoped session dependency.

Services take a :class:`~sqlalchemy.orm.Session` and never commit: :func:`get_session` commits
when the route returns and rolls back when it raises, so a request either writes everything or
nothing.

SQLite is the embedded development database. pysqlite's own transaction handling is switched
off (it would break savepoints and start transactions late), and write requests begin with
``BEGIN IMMEDIATE`` so that concurrent writers queue on SQLite's single write lock instead of
failing half-way; PostgreSQL uses row locks (see the repositories' ``*_for_update`` methods).

Write transactions are short by design: no transaction is open while the control plane calls
Keycloak or the apiserver (see docs/architecture.md, "Transactions and locks"). A writer waits
for the lock up to :data:`LOCK_WAIT_SECONDS` (SQLite's busy timeout, which applies to ``BEGIN
IMMEDIATE``; PostgreSQL's ``lock_timeout``); past that the database error becomes a 503
``database_busy`` with ``Retry-After`` (controlplane/errors.py), never a 500.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from controlplane.errors import DatabaseBusyError

_IMMEDIATE = "sandlada_sqlite_begin_immediate"
LOCK_WAIT_SECONDS = 15


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the per-dialect set-up the control plane relies on."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": LOCK_WAIT_SECONDS},
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if url.startswith("postgresql"):
        kwargs.setdefault(
            "connect_args", {"options": f"-c lock_timeout={LOCK_WAIT_SECONDS * 1000}"}
        )
    return create_engine(url, **kwargs)


class _FairLock:
    """A first-come, first-served lock (``threading.Lock`` promises no order)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Event] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held and not self._waiters:
                self._held = True
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True  # handed over by release()
        with self._mutex:
            if turn.is_set():
                return True  # handed over just as we gave up
            self._waiters.remove(turn)
            return False

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()  # stays held, by the next in line
            else:
                self._held = False


_WRITER = "sandlada_sqlite_writer"


def _configure_sqlite(engine: Engine) -> None:
    # SQLite's busy handler retries with sleeps and is not fair: under a steady stream of writers
    # one waiter can lose every race until its busy timeout runs out (seen at 500 approvals at
    # once). Writers of this process therefore queue first come, first served on this lock
    # before BEGIN IMMEDIATE; the busy timeout still covers other processes (CLI, a second server).
    writers = _FairLock()

    def _release(info: dict[Any, Any]) -> None:
        if info.pop(_WRITER, False):
            writers.release()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # None = autocommit at the driver level; SQLAlchemy's "begin" hook below emits BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_SECONDS * 1000}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if not connection.get_execution_options().get(_IMMEDIATE, False):
            connection.exec_driver_sql("BEGIN")
            return
        if not writers.acquire(LOCK_WAIT_SECONDS):
            raise DatabaseBusyError
        connection.info[_WRITER] = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(connection.info)
            raise

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(connection: Connection) -> None:
        _release(connection.info)

    # A connection handed back or thrown away without commit or rollback events (the pool's own
    # reset) must not keep the lock.
    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        _release(record.info)

    @event.listens_for(engine.pool, "invalidate")
    def _on_invalidate(_dbapi_connection: Any, record: Any, _exception: Any) -> None:
        _release(record.info)


class Database:
    """The engine and the session factories for reads and for writes."""

    def __init__(self, engine: Engine, connection: Connection | None = None) -> None:
        self.engine = engine
        # Bound to one outside transaction (tests): other connections cannot see its writes.
        self.bound_to_connection = connection is not None
        if connection is not None:
            # Sessions join the caller's open transaction and commit only savepoints, so a
            # test can roll everything back at its end.
            self.sessionmaker = sessionmaker(
                connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
            )
            self.write_sessionmaker = self.sessionmaker
            return
        self.sessionmaker = sessionmaker(engine, expire_on_commit=False)
        write_bind = engine.execution_options(**{_IMMEDIATE: True})
        self.write_sessionmaker = sessionmaker(write_bind, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        return cls(make_engine(url, **kwargs))

    def session(self, *, write: bool = False) -> Session:
        """A new session; ``write=True`` takes SQLite's write lock at its first statement."""
        return (self.write_sessionmaker if write else self.sessionmaker)()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_AFTER_COMMIT = "sandlada_after_commit"

log = structlog.get_logger(__name__)


def after_commit(session: Session, task: Callable[[Database], object]) -> None:
    """Run ``task`` once the request's session has committed, with no transaction open.

    For outside calls that must not hold database locks (Keycloak, the apiserver) and must only
    happen if the change was written. Only :func:`get_session` runs these; a task's failure is
    logged (the task records its own outcome), never turned into an error response.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(task)


def _run_after_commit(database: Database, tasks: list[Callable[[Database], object]]) -> None:
    for task in tasks:
        try:
            task(database)
        except Exception:  # the change is committed; the task's own retry path finishes it
            log.exception("after-commit task failed")


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def _finish(session: Session, *, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request: commit when the route returns, roll back when it raises.

    Creating a session does no I/O, so it happens on the event loop. Finishing a write request
    commits and goes to the threadpool. A read request has nothing to commit: it only hands its
    connection back (a local ROLLBACK), which is done on the event loop because a thread hop
    costs more than that under load.
    """
    database: Database = request.app.state.database
    write = request.method not in _SAFE_METHODS
    session = database.session(write=write)
    try:
        yield session
    except BaseException:
        if write:
            await run_in_threadpool(_finish, session, commit=False)
        else:
            _finish(session, commit=False)
        raise
    if write:
        tasks = session.info.pop(_AFTER_COMMIT, [])
        await run_in_threadpool(_finish, session, commit=True)
        if tasks:
            await run_in_threadpool(_run_after_commit, database, tasks)
    else:
        _finish(session, commit=False)


# scope="function": commit before the response is sent, so a failed commit is an error response
# and never a 2xx for something that was not written.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
DatabaseDep = Annotated[Database, Depends(get_database)]


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
