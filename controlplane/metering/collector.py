"""The metering collector: list+watch pods and volume claims, record their intervals.

One watcher thread per kind lists every object once (a re-list after a restart or a 410 Gone),
then watches from the list's resourceVersion. Each event is one database transaction: record the
interval (insert-or-ignore on the UID), close it when the object says it ended, fold what is due
into ``usage_daily``. Because every write is conditional and every time comes from the object,
a collector that is killed at any point and started again neither loses nor double-counts.

After a (re-)list, open intervals whose objects are gone vanished while nobody watched: they end
at the time the collector last saw them alive (``last_seen_at``, refreshed every tick), which is
the one approximate case. A periodic tick also folds completed days of open intervals.

Exactly one collector should run (``sandlada meter run``, started by ``sandlada dev up``); a second
one would not double-count, but its ``last_seen_at`` refreshes would make the vanished case
less accurate.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from controlplane.database import Database
from controlplane.metering import service
from controlplane.metering.days import report_zone
from controlplane.metering.intervals import (
    GPU_PRODUCT_LABEL,
    Json,
    gpu_model,
    pod_interval,
    tenant_slug,
    volume_interval,
)
from controlplane.metering.repository import UsageRepository

log = structlog.get_logger(__name__)

GONE = 410
RETRY_SECONDS = 2.0


@dataclass
class WatchState:
    """What one watcher knows: live UIDs of open intervals and when it last heard the apiserver."""

    kind: str
    open_uids: set[str] = field(default_factory=set)
    contact: float | None = None  # monotonic time of the last successful list or event
    relists: int = 0


class Collector:
    def __init__(
        self,
        database: Database,
        kubeconfig: Path,
        zone: ZoneInfo,
        *,
        tick_seconds: float = 30.0,
        watch_seconds: int = 60,
        clock: Callable[[], datetime] = service.utcnow,
    ) -> None:
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), client_configuration=configuration
        )
        self.api_client = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.api_client)
        self.database = database
        self.zone = zone
        self.tick_seconds = tick_seconds
        self.watch_seconds = watch_seconds
        self.clock = clock
        self.pods = WatchState("pods")
        self.volumes = WatchState("persistentvolumeclaims")
        self._nodes: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self.events = 0

    # ---- Kubernetes reads -------------------------------------------------------------------

    def _node_product(self, name: str) -> str | None:
        if name not in self._nodes:
            try:
                node = self.core.read_node(name, _request_timeout=10)
                labels = (node.metadata.labels if node.metadata else None) or {}
                self._nodes[name] = labels.get(GPU_PRODUCT_LABEL)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                self._nodes[name] = None  # node gone: GPU model unknown
        return self._nodes[name]

    def _list(self, kind: str) -> tuple[list[Json], str]:
        lister = (
            self.core.list_pod_for_all_namespaces
            if kind == "pods"
            else self.core.list_persistent_volume_claim_for_all_namespaces
        )
        response: Any = lister(_preload_content=False, _request_timeout=60)
        body = json.loads(response.data)
        return body.get("items") or [], body["metadata"]["resourceVersion"]

    # ---- event handling (one transaction each) ----------------------------------------------

    def _tenant_id(self, session: Session, metadata: Json) -> int | None:
        slug = tenant_slug(metadata.get("namespace", ""), metadata.get("labels"))
        if slug is None:
            return None
        return UsageRepository(session).tenant_ids([slug]).get(slug)

    def handle_pod(self, session: Session, pod: Json, *, deleted: bool) -> None:
        interval = pod_interval(pod, deleted=deleted)
        uid = (pod.get("metadata") or {}).get("uid", "")
        if interval is None:
            return
        tenant_id = self._tenant_id(session, pod["metadata"])
        if tenant_id is None:
            return
        model = gpu_model(interval.requests, self._node_product(interval.node_name))
        service.record_pod(
            session,
            tenant_id=tenant_id,
            interval=interval,
            gpu_model=model,
            now=self.clock(),
            zone=self.zone,
        )
        if interval.ended_at is None:
            self.pods.open_uids.add(uid)
        else:
            self.pods.open_uids.discard(uid)

    def handle_volume(self, session: Session, pvc: Json, *, deleted: bool) -> None:
        metadata = pvc.get("metadata") or {}
        tenant_id = self._tenant_id(session, metadata)
        if tenant_id is None:
            return
        interval = volume_interval(pvc, deleted=deleted)
        service.record_volume(
            session, tenant_id=tenant_id, interval=interval, now=self.clock(), zone=self.zone
        )
        if interval.ended_at is None:
            self.volumes.open_uids.add(interval.uid)
        else:
            self.volumes.open_uids.discard(interval.uid)

    def _handle(self, state: WatchState, obj: Json, *, deleted: bool) -> None:
        metadata = obj.get("metadata") or {}
        if tenant_slug(metadata.get("namespace", ""), metadata.get("labels")) is None:
            return  # not a tenant's: no write transaction (SQLite has one write lock)
        handler = self.handle_pod if state.kind == "pods" else self.handle_volume
        with self.database.session(write=True) as session, session.begin():
            handler(session, obj, deleted=deleted)
        self.events += 1

    def relist(self, state: WatchState) -> str:
        """List every object, record each, close the open intervals of the ones gone."""
        items, resource_version = self._list(state.kind)
        present = {item["metadata"]["uid"] for item in items}
        for item in items:
            self._handle(state, item, deleted=False)
        now = self.clock()
        with self.database.session(write=True) as session, session.begin():
            if state.kind == "pods":
                closed = service.close_vanished(session, present, now, self.zone)
            else:
                closed = service.close_vanished_volumes(session, present, now, self.zone)
        state.open_uids &= present
        state.relists += 1
        log.info("metering list", kind=state.kind, objects=len(items), vanished=closed)
        return resource_version

    # ---- loops ------------------------------------------------------------------------------

    def watch_kind(self, state: WatchState, stop: threading.Event) -> None:
        """List, then watch from the list's resourceVersion; re-list after 410 or an error."""
        lister = (
            self.core.list_pod_for_all_namespaces
            if state.kind == "pods"
            else self.core.list_persistent_volume_claim_for_all_namespaces
        )
        resource_version: str | None = None
        while not stop.is_set():
            try:
                if resource_version is None:
                    resource_version = self.relist(state)
                    state.contact = _monotonic()
                watcher = watch.Watch()  # type: ignore[no-untyped-call]
                for event in watcher.stream(  # type: ignore[no-untyped-call]
                    lister,
                    resource_version=resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=self.watch_seconds,
                    _request_timeout=self.watch_seconds + 10,
                ):
                    obj: Json = event["raw_object"]
                    resource_version = obj["metadata"]["resourceVersion"]
                    state.contact = _monotonic()
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self._handle(state, obj, deleted=event["type"] == "DELETED")
                    if stop.is_set():
                        watcher.stop()  # type: ignore[no-untyped-call]
                        break
                else:
                    state.contact = _monotonic()  # the server ended the watch: still in touch
            except ApiException as exc:
                if exc.status != GONE:
                    log.warning("metering watch failed", kind=state.kind, error=str(exc.reason))
                    stop.wait(RETRY_SECONDS)
                resource_version = None
            except (urllib3.exceptions.HTTPError, OSError, SQLAlchemyError) as exc:
                log.warning("metering watch failed", kind=state.kind, error=repr(exc)[:200])
                resource_version = None
                stop.wait(RETRY_SECONDS)

    def tick(self) -> None:
        """Refresh last-seen times of live open intervals and fold completed days."""
        now = self.clock()
        fresh = 2 * self.watch_seconds + self.tick_seconds
        pods = self.pods.open_uids if _recent(self.pods.contact, fresh) else set()
        volumes = self.volumes.open_uids if _recent(self.volumes.contact, fresh) else set()
        with self.database.session(write=True) as session, session.begin():
            service.touch(session, set(pods), set(volumes), now)
            service.fold_due(session, now, self.zone)

    def run(self, stop: threading.Event) -> None:
        """Meter until ``stop`` is set."""
        # Once per start: closed intervals written without folding (a bulk import) get folded.
        try:
            with self.database.session(write=True) as session, session.begin():
                service.fold_due(session, self.clock(), self.zone, closed_backlog=True)
        except SQLAlchemyError as exc:
            log.warning("metering backlog sweep failed", error=repr(exc)[:200])
        threads = [
            threading.Thread(
                target=self.watch_kind, args=(state, stop), name=f"meter-{state.kind}", daemon=True
            )
            for state in (self.pods, self.volumes)
        ]
        for thread in threads:
            thread.start()
        while not stop.wait(self.tick_seconds):
            try:
                self.tick()
            except SQLAlchemyError as exc:
                log.warning("metering tick failed", error=repr(exc)[:200])
        for thread in threads:
            thread.join(1.0)

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]


def _monotonic() -> float:
    return time.monotonic()


def _recent(contact: float | None, seconds: float) -> bool:
    return contact is not None and _monotonic() - contact <= seconds


def run_collector(
    database_url: str,
    kubeconfig: Path,
    timezone: str,
    *,
    stop: threading.Event,
    tick_seconds: float = 30.0,
    on_ready: Callable[[Collector], Any] | None = None,
) -> None:
    """Run a collector on its own database engine until ``stop`` is set."""
    database = Database.from_url(database_url)
    collector = Collector(database, kubeconfig, report_zone(timezone), tick_seconds=tick_seconds)
    try:
        if on_ready is not None:
            on_ready(collector)
        collector.run(stop)
    finally:
        collector.close()
        database.dispose()
