"""``/api/v1/price-lists``, ``/api/v1/reports/costs`` and ``/api/v1/tenants/{slug}/budget``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status

from controlplane.audit.service import Actor
from controlplane.auth.dependencies import (
    CurrentUser,
    PlatformAdmin,
    SettingsDep,
    TenantAdmin,
    TenantMember,
)
from controlplane.costs import budgets, service
from controlplane.costs.pricing import Month
from controlplane.costs.schemas import BudgetIn, BudgetOut, CostReport, PriceListIn, PriceListOut
from controlplane.database import SessionDep
from controlplane.errors import (
    ConflictError,
    NotAuthenticatedError,
    NotFoundError,
    PermissionDeniedError,
    error_responses,
)
from controlplane.schemas import MAX_ID

router = APIRouter(tags=["costs"])

PriceListId = Annotated[int, Path(ge=1, le=MAX_ID, description="Price list version id.")]


@router.get(
    "/api/v1/price-lists",
    response_model=list[PriceListOut],
    responses=error_responses(NotAuthenticatedError),
    summary="Every price list version, oldest first (superseded, in force, scheduled)",
)
def list_price_lists(
    session: SessionDep, _user: CurrentUser, settings: SettingsDep
) -> list[PriceListOut]:
    return service.list_price_lists(session, service.today(settings.report_timezone))


@router.post(
    "/api/v1/price-lists",
    response_model=PriceListOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(NotAuthenticatedError, PermissionDeniedError, ConflictError),
    summary="Publish a new price list version from a future day (platform admins)",
)
def create_price_list(
    body: PriceListIn, session: SessionDep, admin: PlatformAdmin, settings: SettingsDep
) -> PriceListOut:
    return service.create_price_list(
        session, Actor.of(admin), body, service.today(settings.report_timezone)
    )


@router.delete(
    "/api/v1/price-lists/{price_list_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(
        NotAuthenticatedError, PermissionDeniedError, NotFoundError, ConflictError
    ),
    summary="Withdraw a scheduled price list version (one that has applied stays)",
)
def delete_price_list(
    price_list_id: PriceListId, session: SessionDep, admin: PlatformAdmin, settings: SettingsDep
) -> Response:
    service.delete_price_list(
        session, Actor.of(admin), price_list_id, service.today(settings.report_timezone)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/api/v1/reports/costs",
    response_model=CostReport,
    responses={
        **error_responses(NotAuthenticatedError, PermissionDeniedError),
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    },
    summary="Monthly costs per tenant and agency in SEK (JSON or CSV)",
)
def cost_report(
    *,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    month: Annotated[str, Query(max_length=20, description="YYYY-MM", examples=["2026-11"])],
    agency: Annotated[
        str | None,
        Query(
            max_length=20,
            description="Organisation number; platform admins only, others see their own.",
        ),
    ] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json (default) or csv.")] = "json",
) -> Response:
    parsed = Month.parse(month)
    scope = service.report_scope(user, agency)
    report = service.cost_report(
        session, parsed, settings.report_timezone, organisation_number=scope
    )
    if format == "csv":
        return Response(
            service.report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="costs-{parsed}.csv"'},
        )
    # Serialised here, once: returning the model would make FastAPI validate the whole report
    # against response_model a second time (a month for every agency is thousands of lines).
    return Response(report.model_dump_json(), media_type="application/json")


_BUDGET_ERRORS = (NotAuthenticatedError, PermissionDeniedError, NotFoundError)


@router.get(
    "/api/v1/tenants/{slug}/budget",
    response_model=BudgetOut,
    responses=error_responses(*_BUDGET_ERRORS),
    summary="The tenant's monthly budget, this month's costs and alerts (members)",
)
def get_budget(caller: TenantMember, session: SessionDep, settings: SettingsDep) -> BudgetOut:
    return budgets.get_budget(session, caller.tenant, settings.report_timezone)


@router.put(
    "/api/v1/tenants/{slug}/budget",
    response_model=BudgetOut,
    responses=error_responses(*_BUDGET_ERRORS),
    summary="Set the tenant's monthly budget in SEK and whether it is enforced (tenant admins)",
)
def set_budget(
    body: BudgetIn, caller: TenantAdmin, session: SessionDep, settings: SettingsDep
) -> BudgetOut:
    return budgets.set_budget(
        session, Actor.of(caller.user), caller.tenant, body, settings.report_timezone
    )


@router.delete(
    "/api/v1/tenants/{slug}/budget",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(*_BUDGET_ERRORS),
    summary="Remove the tenant's budget (tenant admins)",
)
def delete_budget(caller: TenantAdmin, session: SessionDep) -> Response:
    budgets.delete_budget(session, Actor.of(caller.user), caller.tenant)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
