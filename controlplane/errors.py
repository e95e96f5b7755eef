"""One error hierarchy for the control plane and the handlers that render it.

Every error a person can cause is a :class:`SandladaError` with a stable machine-readable
``code``, an HTTP status and a message a person can act on; the handlers render all of them,
FastAPI's own validation errors and Starlette's HTTP errors as ``{"error": code, "detail": msg}``
(plus ``"field"`` when one input field is to blame). ``detail`` is in the language the caller's
``Accept-Language`` asks for (English by default, Swedish for ``sv``), from the catalogue in
:mod:`controlplane.messages`.

A database that cannot give a lock in time (SQLite's single write lock past its busy timeout,
a PostgreSQL lock or statement timeout, a serialization failure or deadlock) is the service
being busy, not a bug: 503 ``database_busy`` with ``Retry-After``, never a 500.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from controlplane.messages import Language, Message, message, negotiate

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = 1


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str = Field(description="Stable machine-readable error code.", examples=["not_found"])
    detail: str = Field(
        description="What went wrong, for a person to act on, in the language asked for with "
        "Accept-Language (English by default; `sv` for Swedish)."
    )
    field: str | None = Field(
        None,
        description="The input field to fix (dotted JSON path), when one is to blame.",
        examples=["quota.gpu_model"],
    )


class SandladaError(Exception):
    """Base of every error the control plane raises on purpose.

    ``detail`` is a catalogue :class:`~controlplane.messages.Message` (rendered in the caller's
    language) or, for text that comes from elsewhere, a plain string shown as it is.
    """

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    headers: ClassVar[dict[str, str] | None] = None
    field: str | None = None

    def __init__(self, detail: str | Message) -> None:
        self.message = detail if isinstance(detail, Message) else None
        # English text for logs and for code that reads it; responses use render().
        self.detail = str(detail)
        super().__init__(self.detail)

    def render(self, language: Language) -> str:
        return self.message.render(language) if self.message is not None else self.detail


class InvalidInputError(SandladaError):
    """Input is well-formed JSON but breaks a rule; the detail names the field."""

    status_code = 422
    code = "invalid_input"

    def __init__(self, field: str, problem: str | Message) -> None:
        super().__init__(message("invalid_field", field=field, message=problem))
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


class DatabaseBusyError(ServiceUnavailableError):
    """No database lock could be had in time; the caller retries after ``Retry-After``."""

    code = "database_busy"
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}  # noqa: RUF012 - read-only class constant

    def __init__(self) -> None:
        super().__init__(message("database_busy", retry_after=RETRY_AFTER_SECONDS))


# SQLSTATEs of PostgreSQL for "could not get a lock / a conflicting transaction won": lock_not_
# available, query_canceled (statement_timeout), serialization_failure, deadlock_detected.
_BUSY_SQLSTATES = frozenset({"55P03", "57014", "40001", "40P01"})


def is_database_busy(exc: BaseException) -> bool:
    """True if ``exc`` is the database refusing for contention, not for a bad statement."""
    if not isinstance(exc, DBAPIError):
        return False
    original = exc.orig
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if sqlstate in _BUSY_SQLSTATES:
        return True
    # sqlite3 reports SQLITE_BUSY / SQLITE_LOCKED as OperationalError with these texts.
    text = str(original).lower()
    return type(original).__name__ == "OperationalError" and (
        "database is locked" in text or "database table is locked" in text or "busy" in text
    )


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


def language_of(request: Request) -> Language:
    """The caller's language, from ``Accept-Language``."""
    return negotiate(request.headers.get("accept-language"))


async def get_language(request: Request) -> Language:
    return language_of(request)


LanguageDep = Annotated[Language, Depends(get_language)]


def _render(
    status_code: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    field: str | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "detail": detail}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status_code, headers=headers)


def _field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    # "body" / "query" / "path" prefixes are noise to the person reading the message; the
    # remaining dotted path is the JSON field they have to fix.
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def render_error(exc: SandladaError, language: Language) -> JSONResponse:
    return _render(exc.status_code, exc.code, exc.render(language), exc.headers, exc.field)


async def _sandlada_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SandladaError)
    return render_error(exc, language_of(request))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    language = language_of(request)
    messages = []
    fields = []
    for err in exc.errors()[:5]:
        problem = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        field = _field_path(err.get("loc", ()))
        # A body that is not JSON at all has a character position, not a field, as location.
        fields.append(field if err.get("type") != "json_invalid" else "")
        messages.append(message("validation.value", field=field, message=problem).render(language))
    detail = "; ".join(messages) or message("invalid_request").render(language)
    only = fields[0] if len(set(fields)) == 1 and fields[0] else None
    return _render(422, InvalidInputError.code, detail, field=only)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    language = language_of(request)
    if exc.status_code == 400:
        # FastAPI answers 400 for bodies it cannot even decode (bad UTF-8); to the caller that is
        # the same mistake as malformed JSON, which is 422, so one status covers both.
        detail = message("invalid_body", detail=exc.detail).render(language)
        return _render(422, InvalidInputError.code, detail)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "not_authenticated"}
    code = codes.get(exc.status_code, "http_error")
    key = {404: "http.not_found", 405: "http.method_not_allowed"}.get(exc.status_code)
    detail = message(key).render(language) if key else str(exc.detail)
    return _render(exc.status_code, code, detail, dict(exc.headers or {}) or None)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if is_database_busy(exc):
        log.warning("database busy", error=str(exc).splitlines()[0])
        return render_error(DatabaseBusyError(), language_of(request))
    return await _unexpected_error(request, exc)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return _render(500, "internal_error", message("internal_error").render(language_of(request)))


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as ``{"error", "detail"}`` in the caller's language."""
    app.add_exception_handler(SandladaError, _sandlada_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
