"""Follow Tenant resources with list + watch, so SQL moves on within milliseconds.

One daemon thread per app: list the Tenant resources (making SQL follow each), then watch from
the list's ``resourceVersion``, handling every event with :func:`lifecycle.follow` (a read, and
a short write transaction only when the row changes: provisioning → ready, deleting → deleted).
The watch resumes from the last ``resourceVersion`` it saw (bookmarks included) when the
apiserver ends it, re-lists on ``410 Gone`` (the version is too old) and after any error, with a
short back-off. What the watch misses while disconnected is caught by the re-list and by the
periodic sync pass (controlplane/tenancy/sync.py), which stays the safety net.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog

from controlplane.cluster.storage import TenantCluster, TenantWatch
from controlplane.database import Database
from controlplane.tenancy.lifecycle import follow
from tenants.resource import Tenant as TenantResource

log = structlog.get_logger(__name__)

WATCH_SECONDS = 300
BACKOFF_SECONDS = 1.0


class TenantWatcher:
    """The watch thread; :meth:`start` and :meth:`stop` from the app's lifespan."""

    def __init__(self, database: Database, cluster: TenantCluster) -> None:
        self.database = database
        self.cluster = cluster
        self.handled = 0  # events that changed a row, for logs and tests
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stream: TenantWatch | None = None
        self._thread = threading.Thread(target=self._run, name="tenant-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            try:
                stream.close()  # wakes the thread blocked reading the stream
            except Exception:  # closing a broken connection may fail; it is gone anyway
                log.debug("closing the tenant watch failed", exc_info=True)
        self._thread.join(timeout)

    def _follow(self, slug: str, resource: TenantResource | None) -> None:
        try:
            if follow(self.database, slug, resource):
                self.handled += 1
        except Exception:  # one row failing (database busy) must not end the watch; sync retries
            log.warning("tenant watch could not follow a resource", slug=slug, exc_info=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._list_and_watch()
            except Exception as exc:  # any failure: back off, then re-list
                if self._stop.is_set():
                    return  # closing the stream to stop makes the read fail; not news
                log.warning("tenant watch restarts", error=str(exc))
                self._stop.wait(BACKOFF_SECONDS)

    def _list_and_watch(self) -> None:
        resources, version = self.cluster.list_tenants_versioned()
        for slug, resource in resources.items():
            self._follow(slug, resource)
        while not self._stop.is_set():
            stream = self.cluster.watch_tenants(version, timeout_seconds=WATCH_SECONDS)
            with self._lock:
                self._stream = stream
            try:
                for kind, raw in stream:
                    if self._stop.is_set():
                        return
                    if kind == "ERROR":
                        # 410 Gone: our version is older than etcd keeps; anything else is
                        # unexpected. Either way, start over from a fresh list.
                        log.info("tenant watch error event", code=raw.get("code"))
                        return
                    version = _version(raw) or version
                    if kind == "BOOKMARK":
                        continue
                    resource = TenantResource.model_validate(raw)
                    self._follow(resource.spec.slug, None if kind == "DELETED" else resource)
            finally:
                with self._lock:
                    self._stream = None
                stream.close()


def _version(raw: dict[str, Any]) -> str | None:
    metadata = raw.get("metadata") or {}
    version = metadata.get("resourceVersion")
    return str(version) if version else None
