"""One error hierarchy for the control plane and the handlers that render it.

Every error a person can cause is a :class:`SandladaError` with a stable machine-readable
``code``, an HTTP status and a message a person can act on; the handlers render all of them,
FastAPI's own validation errors and Starlette's HTTP errors as ``{"error": code, "detail": msg}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str = Field(description="Stable machine-readable error code.", examples=["not_found"])
    detail: str = Field(description="What went wrong, for a person to act on.")


class SandladaError(Exception):
    """Base of every error the control plane raises on purpose."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInputError(SandladaError):
    """Input is well-formed JSON but breaks a rule; the detail names the field."""

    status_code = 422
    code = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class UnacceptableRiskError(InvalidInputError):
    """An AI system in the EU AI Act's prohibited category was asked for."""

    code = "unacceptable_risk"


class NotAuthenticatedError(SandladaError):
    status_code = 401
    code = "not_authenticated"
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012 - read-only class constant


class PermissionDeniedError(SandladaError):
    status_code = 403
    code = "forbidden"


class NotFoundError(SandladaError):
    status_code = 404
    code = "not_found"


class ConflictError(SandladaError):
    status_code = 409
    code = "conflict"


class InvalidTransitionError(ConflictError):
    """A state change that the current state does not allow."""

    code = "invalid_state"


class CapacityExceededError(ConflictError):
    code = "capacity_exceeded"


class ServiceUnavailableError(SandladaError):
    status_code = 503
    code = "unavailable"


def error_responses(*errors: type[SandladaError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the error body model under each status the route may return."""
    by_status: dict[int, list[str]] = {}
    every: tuple[type[SandladaError], ...] = (*errors, InvalidInputError)
    for error in every:
        by_status.setdefault(error.status_code, []).append(error.code)
    return {
        status: {"model": ErrorBody, "description": "Error codes: " + ", ".join(sorted(set(codes)))}
        for status, codes in sorted(by_status.items())
    }


def _render(
    status_code: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        ErrorBody(error=code, detail=detail).model_dump(), status_code=status_code, headers=headers
    )


def _field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    # "body" / "query" / "path" prefixes are noise to the person reading the message; the
    # remaining dotted path is the JSON field they have to fix.
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


async def _sandlada_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SandladaError)
    return _render(exc.status_code, exc.code, exc.detail, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    messages = []
    for err in exc.errors()[:5]:
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        messages.append(f"{_field_path(err.get('loc', ()))}: {message}")
    return _render(422, InvalidInputError.code, "; ".join(messages) or "invalid request")


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI answers 400 for bodies it cannot even decode (bad UTF-8); to the caller that is
        # the same mistake as malformed JSON, which is 422, so one status covers both.
        return _render(422, InvalidInputError.code, f"body: {exc.detail}")
    codes = {404: "not_found", 405: "method_not_allowed", 401: "not_authenticated"}
    code = codes.get(exc.status_code, "http_error")
    return _render(exc.status_code, code, str(exc.detail), dict(exc.headers or {}) or None)


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return _render(500, "internal_error", "An unexpected error occurred; it has been logged.")


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as ``{"error", "detail"}``."""
    app.add_exception_handler(SandladaError, _sandlada_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
