"""Prometheus metrics for HTTP requests, in a registry per app so tests can build many apps."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sandlada_http_requests",
            "HTTP requests handled, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sandlada_http_request_duration_seconds",
            "Time to handle a request, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )


class MetricsMiddleware:
    """Pure ASGI middleware (BaseHTTPMiddleware would cost a task per request)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._labelled: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            # The route template, not the raw path, keeps label cardinality bounded.
            route = getattr(scope.get("route"), "path", "unmatched")
            counter, histogram = self._children(scope["method"], route, status)
            counter.inc()
            histogram.observe(time.perf_counter() - start)

    def _children(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        # labels() looks the child up under a lock with a tuple of strings each time; the set
        # of (method, route template, status) is small and fixed, so keep the children.
        key = (method, route, status)
        children = self._labelled.get(key)
        if children is None:
            children = (
                self.metrics.requests.labels(method, route, str(status)),
                self.metrics.latency.labels(method, route),
            )
            self._labelled[key] = children
        return children
