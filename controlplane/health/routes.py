"""``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from controlplane.database import DatabaseDep
from controlplane.errors import ServiceUnavailableError, error_responses
from controlplane.health.metrics import Metrics
from controlplane.messages import message

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses=error_responses(ServiceUnavailableError),
    summary="The database is reachable",
)
def readyz(database: DatabaseDep) -> Health:
    try:
        database.ping()
    except SQLAlchemyError as exc:
        raise ServiceUnavailableError(
            message("database_unreachable", error=type(exc).__name__)
        ) from exc
    return Health(status="ok")


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus metrics"}},
    summary="Prometheus metrics",
)
def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
