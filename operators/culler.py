"""Idle culler: stops Notebook servers nobody uses and those past their maximum age.

For every running ``Notebook`` a kopf timer asks the server's own Jupyter API
(``GET <status.internalUrl>api/status`` with the token from Secret ``nb-<name>-token``) when it
was last used, writes that to ``status.lastActivity``, and stops the notebook when
``spec.idleTimeoutSeconds`` have passed since, or ``spec.maxAgeSeconds`` since it started.
Stopping = ``status.stopReason``/``stoppedAt``/``message`` (Swedish and English), then
``spec.stopped: true`` (the Notebook operator removes the pod and keeps the home volume), and a
Kubernetes Event on the Notebook as the audit record.

The decision (`decide`) is a pure function. Where a notebook is reached is injectable
(`Culler(resolve=…)`): in a cluster it is ``status.internalUrl``; tests point it at local
``jupyter server`` processes. A server that cannot be reached is never stopped for being idle
(we cannot tell that it is, and a network fault must not stop everyone's work); the maximum age
applies regardless.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import kopf
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic_settings import BaseSettings, SettingsConfigDict

from operators.config import OperatorConfig
from operators.storage import api_client_from_environment
from tenants.notebook import PLURAL, StopReason, token_secret_name
from tenants.notebook_builders import build_notebook_event, kubernetes_time
from tenants.resource import GROUP, VERSION

TOKEN_KEY = "token"  # noqa: S105  (the key name in the Secret, not a secret)
COMPONENT = "sandlada-culler"
_MERGE = "application/merge-patch+json"

_log = logging.getLogger("sandlada.operators.culler")


class CullerConfig(BaseSettings):
    """``SANDLADA_CULLER_*``: how often the culler looks at each running notebook."""

    model_config = SettingsConfigDict(env_prefix="SANDLADA_CULLER_")

    enabled: bool = True
    interval_seconds: float = 60.0
    """Seconds between two checks of one notebook (the idle timeout's resolution)."""
    http_timeout_seconds: float = 5.0


@dataclass(frozen=True)
class CullDecision:
    """Why a notebook is stopped, for status, the Event and the person who owns it."""

    reason: StopReason
    message: str  # English / Swedish

    @property
    def event_reason(self) -> str:
        return "IdleTimeout" if self.reason is StopReason.IDLE else "MaxAgeReached"


def format_duration(seconds: float) -> str:
    """``3 s``, ``5 min``, ``2 h 5 min``, ``3 d 4 h``: short and the same in both languages."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def decide(
    *,
    now: datetime,
    started_at: datetime | None,
    last_activity: datetime | None,
    idle_timeout_seconds: int | None,
    max_age_seconds: int | None,
) -> CullDecision | None:
    """Whether to stop a notebook, and why; None keeps it running.

    The maximum age wins over idleness (it is the harder limit). A timeout of 0 or None is
    off. ``last_activity`` None (server not reachable) never stops a notebook for idleness.
    """
    if max_age_seconds and started_at is not None:
        age = (now - started_at).total_seconds()
        if age >= max_age_seconds:
            limit = format_duration(max_age_seconds)
            return CullDecision(
                StopReason.MAX_AGE,
                f"Stopped: reached its maximum age of {limit}; files in the home volume are "
                f"kept / Stoppad: har nått sin längsta tillåtna livslängd {limit}; filerna i "
                "hemkatalogen finns kvar",
            )
    if idle_timeout_seconds and last_activity is not None:
        idle = (now - last_activity).total_seconds()
        if idle >= idle_timeout_seconds:
            limit = format_duration(idle_timeout_seconds)
            spent = format_duration(idle)
            return CullDecision(
                StopReason.IDLE,
                f"Stopped after {spent} without activity (idle timeout {limit}); files in the "
                f"home volume are kept / Stoppad efter {spent} utan aktivitet (gränsen är "
                f"{limit}); filerna i hemkatalogen finns kvar",
            )
    return None


def parse_timestamp(value: object) -> datetime | None:
    """An RFC 3339 timestamp (Kubernetes or Jupyter) as an aware UTC datetime; None if absent."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    return kubernetes_time(moment)


def jupyter_last_activity(payload: object) -> datetime | None:
    """``last_activity`` of a Jupyter ``/api/status`` answer (falls back to ``started``)."""
    if not isinstance(payload, dict):
        return None
    return parse_timestamp(payload.get("last_activity")) or parse_timestamp(payload.get("started"))


def status_url(base_url: str) -> str:
    """``<base>/api/status`` for a Jupyter base URL with or without its trailing slash."""
    return base_url.rstrip("/") + "/api/status"


@dataclass(frozen=True)
class NotebookView:
    """What the culler reads from a Notebook resource."""

    namespace: str
    name: str
    uid: str
    stopped: bool
    phase: str | None
    started_at: datetime | None
    last_activity: datetime | None
    stop_reason: str | None
    idle_timeout_seconds: int | None
    max_age_seconds: int | None
    internal_url: str | None

    @classmethod
    def from_body(cls, body: dict[str, Any] | kopf.Body) -> NotebookView:
        meta = body.get("metadata") or {}
        spec = body.get("spec") or {}
        status = body.get("status") or {}

        def _int(value: object) -> int | None:
            return int(value) if isinstance(value, int | float) else None

        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid", "")),
            stopped=bool(spec.get("stopped", False)),
            phase=status.get("phase"),
            started_at=parse_timestamp(status.get("startedAt"))
            or parse_timestamp(meta.get("creationTimestamp")),
            last_activity=parse_timestamp(status.get("lastActivity")),
            stop_reason=status.get("stopReason"),
            idle_timeout_seconds=_int(spec.get("idleTimeoutSeconds")),
            max_age_seconds=_int(spec.get("maxAgeSeconds")),
            internal_url=status.get("internalUrl") or None,
        )


EndpointResolver = Callable[[NotebookView], str | None]


def internal_url(notebook: NotebookView) -> str | None:
    """In a cluster: the in-cluster Jupyter base URL the Notebook operator put in status."""
    return notebook.internal_url


@dataclass(frozen=True)
class CheckResult:
    """What one check of one notebook found and did."""

    name: str
    last_activity: datetime | None  # from Jupyter; None when it could not be asked
    decision: CullDecision | None
    probe_error: str | None = None
    recorded: dict[str, Any] | None = None  # the status as the apiserver stored our patch

    @property
    def stopped(self) -> bool:
        return self.decision is not None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Culler:
    """Checks notebooks against their Jupyter servers and stops the idle and the too old."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        resolve: EndpointResolver = internal_url,
        http_timeout: float = 5.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.resolve = resolve
        self.clock = clock
        self.http = httpx.Client(timeout=http_timeout)

    def close(self) -> None:
        self.http.close()

    def _token(self, notebook: NotebookView) -> str | None:
        try:
            secret = self.core.read_namespaced_secret(
                token_secret_name(notebook.name), notebook.namespace
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        encoded = (secret.data or {}).get(TOKEN_KEY)
        return base64.b64decode(encoded).decode() if encoded else None

    def probe(self, notebook: NotebookView) -> tuple[datetime | None, str | None]:
        """(last activity, None) from the server, or (None, why it could not be asked)."""
        base = self.resolve(notebook)
        if not base:
            return None, "no Jupyter URL yet"
        token = self._token(notebook)
        if token is None:
            return None, f"no token in Secret {token_secret_name(notebook.name)}"
        try:
            response = self.http.get(status_url(base), headers={"Authorization": f"token {token}"})
        except httpx.HTTPError as exc:
            return None, f"{status_url(base)}: {type(exc).__name__}"
        if response.status_code != 200:
            return None, f"{status_url(base)}: HTTP {response.status_code}"
        try:
            payload = response.json()
        except ValueError:
            return None, f"{status_url(base)}: not JSON"
        activity = jupyter_last_activity(payload)
        return activity, None if activity else f"{status_url(base)}: no last_activity"

    def check(self, body: dict[str, Any] | kopf.Body) -> CheckResult:
        """Probe one notebook, record its last activity, stop it if it is due."""
        notebook = NotebookView.from_body(body)
        if notebook.stopped:
            return CheckResult(notebook.name, None, None)
        activity, error = self.probe(notebook)
        now = self.clock()
        decision = decide(
            now=now,
            started_at=notebook.started_at,
            last_activity=activity,
            idle_timeout_seconds=notebook.idle_timeout_seconds,
            max_age_seconds=notebook.max_age_seconds,
        )
        recorded = None
        if decision is not None:
            recorded = self.stop(notebook, decision, now, activity)
        elif activity is not None and activity != notebook.last_activity:
            recorded = self._patch_status(notebook, {"lastActivity": format_timestamp(activity)})
        return CheckResult(notebook.name, activity, decision, error, recorded)

    def run_once(self, namespace: str) -> list[CheckResult]:
        """Check every notebook in ``namespace`` once (the timer does one notebook at a time)."""
        listing: Any = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        return [self.check(item) for item in listing.get("items", [])]

    def stop(
        self,
        notebook: NotebookView,
        decision: CullDecision,
        now: datetime,
        activity: datetime | None,
    ) -> dict[str, Any]:
        """Record why in status, then set ``spec.stopped`` and post an Event; returns the status
        as stored by our patch."""
        # Status first: whoever sees the stopped spec also sees the reason.
        status: dict[str, Any] = {
            "stopReason": decision.reason.value,
            "stoppedAt": format_timestamp(now),
            "message": decision.message,
        }
        if activity is not None:
            status["lastActivity"] = format_timestamp(activity)
        recorded = self._patch_status(notebook, status)
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            notebook.namespace,
            PLURAL,
            notebook.name,
            {"spec": {"stopped": True}},
            _content_type=_MERGE,
        )
        self._event(notebook, decision, now)
        _log.info("stopped notebook %s/%s: %s", notebook.namespace, notebook.name, decision.reason)
        return recorded

    def _patch_status(self, notebook: NotebookView, status: dict[str, Any]) -> dict[str, Any]:
        stored: Any = self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            notebook.namespace,
            PLURAL,
            notebook.name,
            {"status": status},
            _content_type=_MERGE,
        )
        return dict(stored.get("status") or {})

    def _event(self, notebook: NotebookView, decision: CullDecision, now: datetime) -> None:
        # The client accepts a plain dict here although its stubs name CoreV1Event.
        event: Any = build_notebook_event(
            notebook.namespace,
            notebook.name,
            notebook.uid,
            reason=decision.event_reason,
            action="Stop",
            message=decision.message,
            component=COMPONENT,
            at=now,
        )
        self.core.create_namespaced_event(notebook.namespace, event)


# --- kopf wiring --------------------------------------------------------------------------

_CONFIG = CullerConfig()


def _running(spec: kopf.Spec, **_: Any) -> bool:
    return _CONFIG.enabled and not spec.get("stopped", False)


@kopf.on.startup()
def start_culler(*, memo: kopf.Memo, **_: Any) -> None:
    """The culler's own API client and HTTP client in ``memo``."""
    # One connection per kopf worker thread, as the other handlers size theirs.
    pool = OperatorConfig().workers + 4
    memo["culler"] = Culler(
        api_client_from_environment(pool_size=pool), http_timeout=_CONFIG.http_timeout_seconds
    )


@kopf.on.cleanup()
def stop_culler(*, memo: kopf.Memo, **_: Any) -> None:
    culler: Culler | None = memo.get("culler")
    if culler is not None:
        culler.close()


@kopf.timer(
    GROUP,
    VERSION,
    PLURAL,
    interval=_CONFIG.interval_seconds,
    initial_delay=_CONFIG.interval_seconds,
    when=_running,
)
def cull(
    *,
    body: kopf.Body,
    memo: kopf.Memo,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **_: Any,
) -> None:
    """One check of one running notebook (kopf runs it in its thread pool)."""
    culler: Culler = memo["culler"]
    try:
        result = culler.check(body)
    except ApiException as exc:
        # Transient by nature (apiserver busy, object just deleted): the next tick retries.
        logger.warning("culler check failed: %s %s", exc.status, exc.reason)
        return
    if result.probe_error:
        logger.debug("culler could not ask Jupyter: %s", result.probe_error)
    if result.decision is not None:
        logger.info("stopped (%s): %s", result.decision.reason.value, result.decision.message)
