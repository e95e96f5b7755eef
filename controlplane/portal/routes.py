"""The portal's pages. Thin: parse the form, call the domain service, render the result.

Every page that changes something is a POST form with a CSRF token, answered with a redirect
(303) on success or the same form with the errors beside their fields on failure. A failed
POST rolls the request's session back before rendering, so nothing half-done is committed.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from controlplane.audit import service as audit
from controlplane.audit.service import Actor
from controlplane.auth.dependencies import TenantCaller
from controlplane.capacity import service as capacity
from controlplane.cluster.storage import TenantCluster
from controlplane.costs import budgets
from controlplane.costs import service as costs
from controlplane.costs.pricing import Month
from controlplane.costs.schemas import BudgetIn, BudgetOut
from controlplane.database import SessionDep
from controlplane.errors import (
    CapacityExceededError,
    InvalidInputError,
    InvalidTransitionError,
    NotAuthenticatedError,
    NotFoundError,
    PermissionDeniedError,
    SandladaError,
    ServiceUnavailableError,
    UnacceptableRiskError,
)
from controlplane.members import service as members
from controlplane.members.schemas import MemberIn
from controlplane.models import (
    AgencyKind,
    AiActRisk,
    DataClassification,
    RequestStatus,
    SandboxRequest,
    Tenant,
)
from controlplane.notebooks import service as notebooks
from controlplane.notebooks.schemas import NotebookIn, NotebookOut
from controlplane.portal import labels, usage
from controlplane.portal.forms import (
    APPROVE_FIELDS,
    REQUEST_FIELDS,
    FormErrors,
    approve_payload,
    request_payload,
    translate_validation,
)
from controlplane.portal.i18n import LANGUAGES, N_, Language
from controlplane.portal.oidc import pkce_pair
from controlplane.portal.session import LANGUAGE_COOKIE, LoginState, PortalSession, safe_next
from controlplane.portal.web import (
    PREFIX,
    AdminViewer,
    LanguageDep,
    MaybeViewer,
    SignedIn,
    Viewer,
    checked_form,
    error_text,
    finish,
    language_of,
    portal_state,
    redirect,
    refresh_viewer,
    render,
)
from controlplane.requests import service as requests
from controlplane.requests.schemas import ApproveIn, RejectIn, SandboxRequestIn
from controlplane.schemas import MAX_ID
from controlplane.settings import Settings
from controlplane.tenancy import lifecycle
from controlplane.tenancy import service as tenancy
from tenants.catalog import Catalog, load_catalog
from tenants.names import namespace_for
from tenants.notebook import NAME_MAX_LENGTH

router = APIRouter(prefix=PREFIX, include_in_schema=False)
root_router = APIRouter(include_in_schema=False)

RequestId = Annotated[int, Path(ge=1, le=MAX_ID)]
Slug = Annotated[str, Path(min_length=1, max_length=63)]

ENUMS: dict[str, Any] = {
    "agency_kinds": [(k.value, labels.AGENCY_KINDS[k]) for k in AgencyKind],
    "classifications": [(c.value, labels.CLASSIFICATIONS[c]) for c in DataClassification],
    "risks": [(r.value, labels.RISKS[r]) for r in AiActRisk],
    "request_statuses": {s.value: labels.REQUEST_STATUSES[s] for s in RequestStatus},
    "tenant_statuses": {s.value: v for s, v in labels.TENANT_STATUSES.items()},
    "roles": labels.ROLES,
    "notebook_phases": labels.NOTEBOOK_PHASES,
    "stop_reasons": labels.STOP_REASONS,
    "alert_states": labels.ALERT_DELIVERY,
}


@root_router.get("/")
def root() -> Response:
    return RedirectResponse(PREFIX + "/", status_code=307)


# --- sign-in, sign-out, language ------------------------------------------------------------


@router.get("/auth/login", name="portal_login")
def login(request: Request, language: LanguageDep, next: str | None = None) -> Response:
    state = portal_state(request)
    verifier, challenge = pkce_pair()
    login_state = LoginState(
        state=secrets.token_urlsafe(24),
        nonce=secrets.token_urlsafe(24),
        verifier=verifier,
        next=safe_next(next, PREFIX + "/"),
    )
    url = state.oidc.authorization_url(
        str(request.url_for("portal_callback")),
        login_state.state,
        login_state.nonce,
        challenge,
        language.code,
    )
    response = RedirectResponse(url, status_code=303)
    state.codec.write_login(response, login_state)
    return response


@router.get("/auth/callback", name="portal_callback")
def callback(
    request: Request,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    portal = portal_state(request)
    login_state = portal.codec.read_login(request)
    if error is not None or code is None:
        raise NotAuthenticatedError(f"sign-in was not completed ({error or 'no code'})")
    if login_state is None or not secrets.compare_digest(login_state.state, state or ""):
        # A stale or foreign callback (e.g. the back button): start a fresh sign-in.
        return RedirectResponse(PREFIX + "/auth/login", status_code=303)
    tokens = portal.oidc.exchange_code(
        code, str(request.url_for("portal_callback")), login_state.verifier, login_state.nonce
    )
    session = PortalSession.from_token_claims(tokens.claims, tokens.refresh_token)
    response = RedirectResponse(login_state.next, status_code=303)
    portal.codec.write_session(response, session)
    portal.codec.clear_login(response)
    return response


@router.post("/auth/logout", name="portal_logout")
async def logout(request: Request, viewer: SignedIn) -> Response:
    await checked_form(request, viewer)
    portal = portal_state(request)
    await run_in_threadpool(portal.oidc.logout, viewer.session.refresh_token)
    response = RedirectResponse(PREFIX + "/?signed_out=1", status_code=303)
    portal.codec.clear_session(response)
    return response


@router.get("/language/{code}", name="portal_language")
def switch_language(
    request: Request,
    code: Annotated[str, Path(max_length=5)],
    next: str | None = None,
) -> Response:
    response = RedirectResponse(safe_next(next, PREFIX + "/"), status_code=303)
    if code in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            code,
            max_age=365 * 24 * 3600,
            path="/",
            samesite="lax",
            secure=portal_state(request).codec.secure,
        )
    return response


# --- start page: my requests and tenants ----------------------------------------------------


@router.get("/", name="portal_home")
def home(
    request: Request, session: SessionDep, viewer: MaybeViewer, signed_out: bool = False
) -> Response:
    if viewer is None:
        return render(request, "welcome.html", None, signed_out=signed_out)
    mine = requests.list_requests(session, viewer.user, status=None, limit=100, offset=0)
    if viewer.user.is_platform_admin:
        # An admin sees every agency's requests in the queue; here, only their own.
        mine = [r for r in mine if r.requester_subject == viewer.user.subject]
    tenants = tenancy.list_tenants(session, viewer.user, limit=100, offset=0)
    return render(request, "home.html", viewer, requests=mine, tenants=tenants, **ENUMS)


# --- request a sandbox ----------------------------------------------------------------------


def _request_form_context(session: Session, viewer: Viewer) -> dict[str, Any]:
    models = capacity.known_models(session)
    return {"gpu_models": models, **ENUMS}


def _request_defaults(viewer: Viewer) -> dict[str, Any]:
    return {
        "organisation_number": (
            f"{viewer.user.organisation_number[:6]}-{viewer.user.organisation_number[6:]}"
            if viewer.user.organisation_number
            else ""
        ),
        "agency_kind": AgencyKind.MUNICIPALITY.value,
        "data_classification": DataClassification.INTERNAL.value,
        "ai_act_risk": AiActRisk.MINIMAL.value,
        "gpus": "0",
        "cpu": "4",
        "memory_gib": "16",
        "storage_gib": "50",
        "end_date": (requests.today() + timedelta(days=180)).isoformat(),
    }


@router.get("/requests/new", name="portal_new_request")
def new_request(request: Request, session: SessionDep, viewer: SignedIn) -> Response:
    return render(
        request,
        "request_form.html",
        viewer,
        values=_request_defaults(viewer),
        errors=FormErrors(),
        **_request_form_context(session, viewer),
    )


def _service_error_for_request(
    exc: SandladaError, language: Language, viewer: Viewer
) -> FormErrors:
    errors = FormErrors()
    if isinstance(exc, UnacceptableRiskError):
        errors.add(
            "ai_act_risk",
            language.gettext(
                N_(
                    "AI systems with unacceptable risk are prohibited by the EU AI Act "
                    "(article 5) and cannot be hosted on Sandlåda. Contact the platform team "
                    "if you are unsure of the assessment."
                )
            ),
        )
    elif isinstance(exc, InvalidInputError) and exc.field == "end_date":
        message = (
            N_("The end date must be after today.")
            if "after today" in exc.detail
            else N_("The end date can be at most five years ahead.")
        )
        errors.add("end_date", language.gettext(message))
    elif isinstance(exc, InvalidInputError) and exc.field == "quota.gpu_model":
        errors.add("gpu_model", language.gettext(N_("Choose a GPU model the platform offers.")))
    elif isinstance(exc, PermissionDeniedError) and viewer.user.organisation_number:
        errors.add(
            "organisation_number",
            language.gettext(
                N_("You can only ask for sandboxes for your own organisation ({number}).")
            ).format(
                number=f"{viewer.user.organisation_number[:6]}-{viewer.user.organisation_number[6:]}"
            ),
        )
    elif isinstance(exc, PermissionDeniedError):
        errors.general.append(
            language.gettext(
                N_(
                    "Your account is not linked to an organisation, so you cannot ask for a "
                    "sandbox. Ask your identity administrator to set your organisation number."
                )
            )
        )
    else:
        errors.general.append(error_text(exc, language))
    return errors


@router.post("/requests/new", name="portal_submit_request")
async def submit_request(
    request: Request, session: SessionDep, viewer: SignedIn, language: LanguageDep
) -> Response:
    form = await checked_form(request, viewer)
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    errors = FormErrors()
    created: SandboxRequest | None = None
    try:
        body = SandboxRequestIn.model_validate(request_payload(form))
        created = await run_in_threadpool(requests.submit, session, viewer.user, body)
    except ValidationError as exc:
        errors = translate_validation(exc, REQUEST_FIELDS, language)
    except (InvalidInputError, PermissionDeniedError) as exc:
        errors = _service_error_for_request(exc, language, viewer)
    if created is not None:
        return redirect(request, f"{PREFIX}/requests/{created.id}?submitted=1")
    await run_in_threadpool(session.rollback)
    context = await run_in_threadpool(_request_form_context, session, viewer)
    return render(
        request,
        "request_form.html",
        viewer,
        status_code=422,
        values=values,
        errors=errors,
        **context,
    )


@router.get("/requests/{request_id}", name="portal_request")
def show_request(
    request: Request,
    request_id: RequestId,
    session: SessionDep,
    viewer: SignedIn,
    submitted: bool = False,
) -> Response:
    item = requests.get(session, viewer.user, request_id)
    return render(
        request,
        "request_detail.html",
        viewer,
        item=item,
        out=requests.request_out(item),
        submitted=submitted,
        **ENUMS,
    )


@router.post("/requests/{request_id}/withdraw", name="portal_withdraw")
async def withdraw_request(
    request: Request, request_id: RequestId, session: SessionDep, viewer: SignedIn
) -> Response:
    await checked_form(request, viewer)
    await run_in_threadpool(requests.withdraw, session, viewer.user, request_id)
    return redirect(request, f"{PREFIX}/requests/{request_id}")


# --- admin queue ----------------------------------------------------------------------------


@router.get("/admin/requests", name="portal_queue")
def queue(request: Request, session: SessionDep, viewer: AdminViewer) -> Response:
    settings = portal_state(request).settings
    pending = requests.list_requests(
        session, viewer.user, status=RequestStatus.PENDING, limit=200, offset=0
    )
    return render(
        request,
        "queue.html",
        viewer,
        pending=pending,
        capacity=capacity.list_capacity(session, settings.gpu_overcommit),
        **ENUMS,
    )


def _review_context(session: Session, request: Request, viewer: Viewer, request_id: int) -> Any:
    settings = portal_state(request).settings
    item = requests.get(session, viewer.user, request_id)
    return {
        "item": item,
        "out": requests.request_out(item),
        "capacity": capacity.list_capacity(session, settings.gpu_overcommit),
        "gpu_models": capacity.known_models(session),
        **ENUMS,
    }


def _quota_values(quota: dict[str, Any]) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in quota.items()}


@router.get("/admin/requests/{request_id}", name="portal_review")
def review(
    request: Request, request_id: RequestId, session: SessionDep, viewer: AdminViewer
) -> Response:
    context = _review_context(session, request, viewer, request_id)
    return render(
        request,
        "review.html",
        viewer,
        values=_quota_values(context["item"].requested_quota),
        errors=FormErrors(),
        reject_errors=FormErrors(),
        **context,
    )


@router.post("/admin/requests/{request_id}/approve", name="portal_approve")
async def approve(
    request: Request,
    request_id: RequestId,
    session: SessionDep,
    viewer: AdminViewer,
    language: LanguageDep,
) -> Response:
    form = await checked_form(request, viewer)
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    settings = portal_state(request).settings
    errors = FormErrors()
    status_code = 422
    try:
        body = ApproveIn.model_validate(approve_payload(form))
        await run_in_threadpool(
            requests.approve,
            session,
            viewer.user,
            request_id,
            body,
            settings.gpu_overcommit,
            cluster=request.app.state.cluster,
            identity=request.app.state.identity,
        )
        return redirect(request, f"{PREFIX}/admin/requests?approved={request_id}")
    except ValidationError as exc:
        errors = translate_validation(exc, APPROVE_FIELDS, language)
    except CapacityExceededError:
        status_code = 409
        errors.add(
            "gpus",
            language.gettext(
                N_("Not enough free GPUs of this model; see the free capacity in the table.")
            ),
        )
    except InvalidInputError as exc:
        errors.add(
            "gpu_model" if (exc.field or "").startswith("quota") else "comment",
            language.gettext(N_("Choose a GPU model the platform offers."))
            if exc.field == "quota.gpu_model"
            else error_text(exc, language),
        )
    except InvalidTransitionError as exc:
        status_code = 409
        errors.general.append(error_text(exc, language))
    except ServiceUnavailableError as exc:
        status_code = 503
        errors.general.append(
            language.gettext(
                N_("The approval could not be completed because a service is unavailable: ")
            )
            + error_text(exc, language)
        )
    await run_in_threadpool(session.rollback)
    context = await run_in_threadpool(_review_context, session, request, viewer, request_id)
    return render(
        request,
        "review.html",
        viewer,
        status_code=status_code,
        values=values,
        errors=errors,
        reject_errors=FormErrors(),
        **context,
    )


@router.post("/admin/requests/{request_id}/reject", name="portal_reject")
async def reject(
    request: Request,
    request_id: RequestId,
    session: SessionDep,
    viewer: AdminViewer,
    language: LanguageDep,
) -> Response:
    form = await checked_form(request, viewer)
    reject_errors = FormErrors()
    status_code = 422
    try:
        body = RejectIn.model_validate({"reason": str(form.get("reason", "")).strip()})
        await run_in_threadpool(requests.reject, session, viewer.user, request_id, body)
        return redirect(request, f"{PREFIX}/admin/requests?rejected={request_id}")
    except ValidationError as exc:
        reject_errors = translate_validation(exc, {("reason",): "reason"}, language)
    except InvalidTransitionError as exc:
        status_code = 409
        reject_errors.general.append(error_text(exc, language))
    await run_in_threadpool(session.rollback)
    context = await run_in_threadpool(_review_context, session, request, viewer, request_id)
    return render(
        request,
        "review.html",
        viewer,
        status_code=status_code,
        values=_quota_values(context["item"].requested_quota),
        errors=FormErrors(),
        reject_errors=reject_errors,
        reason=str(form.get("reason", "")),
        **context,
    )


# --- tenant page ----------------------------------------------------------------------------


def _tenant_context(session: Session, request: Request, viewer: Viewer, slug: str) -> Any:
    tenant = tenancy.get_tenant(session, viewer.user, slug)
    is_member = viewer.user.is_platform_admin or tenant.slug in viewer.user.tenant_slugs()
    caller = TenantCaller(viewer.user, tenant)
    people = None
    members_error = None
    if is_member:
        try:
            people = members.list_members(request.app.state.identity, caller)
        except ServiceUnavailableError as exc:
            members_error = exc.detail
    settings = portal_state(request).settings
    notebook_context: dict[str, Any] = {}
    profiles = []
    if is_member:
        notebook_context = _notebook_context(request, caller)
        profiles = notebooks.list_profiles(_catalog(request), caller)
    return {
        **notebook_context,
        **_budget_context(session, request, viewer, tenant),
        "retention_days": _retention_days(settings),
        "profiles": profiles,
        "tenant": tenancy.tenant_out(tenant),
        "cluster": lifecycle.cluster_status(request.app.state.cluster, tenant),
        "is_member": is_member,
        "is_tenant_admin": caller.is_admin,
        "members": people,
        "members_error": members_error,
        "mlflow_url": settings.portal_mlflow_url,
        "workspace": namespace_for(tenant.slug),
        **ENUMS,
    }


def _budget_context(
    session: Session, request: Request, viewer: Viewer, tenant: Tenant
) -> dict[str, Any]:
    """The tenant's budget this month (None: no budget) and the form's current values.

    Shown to everyone who may see the tenant page: its members, platform admins and the
    agency's own people (who see the same costs in the agency's cost report).
    """
    settings = portal_state(request).settings
    try:
        budget: BudgetOut | None = budgets.get_budget(session, tenant, settings.report_timezone)
    except NotFoundError:
        budget = None
    values = (
        {
            "budget_monthly_sek": language_of(request).number(budget.monthly_sek, 2),
            "budget_enforce": "on" if budget.enforce else "",
        }
        if budget is not None
        else {"budget_monthly_sek": "", "budget_enforce": ""}
    )
    return {
        "budget": budget,
        "budget_month": Month.parse(budget.month).first_day if budget is not None else None,
        "budget_defaults": values,
    }


def _retention_days(settings: Settings) -> int:
    return math.ceil(settings.tenant_retention_days)


@router.get("/tenants/{slug}", name="portal_tenant")
async def tenant_page(
    request: Request, slug: Slug, session: SessionDep, viewer: SignedIn
) -> Response:
    tenant = await run_in_threadpool(tenancy.get_tenant, session, viewer.user, slug)
    if not viewer.user.is_platform_admin and tenant.slug not in viewer.user.tenant_slugs():
        # Membership comes from the token's groups; a person added since their last token
        # (the requester right after approval) gets it with fresh claims.
        viewer = await refresh_viewer(request, viewer)
    context = await run_in_threadpool(_tenant_context, session, request, viewer, slug)
    return render(request, "tenant.html", viewer, **context)


async def _tenant_with_errors(
    request: Request,
    session: Session,
    viewer: Viewer,
    slug: str,
    errors: FormErrors,
    *,
    status_code: int | None = None,
    **form: Any,
) -> Response:
    """The tenant page again after a failed form: nothing kept, the errors beside the form.

    ``form`` names the failed form's values and errors for the template (``launch_values``,
    ``member_errors``, …). The status is 422 when a field is to blame, else 409, unless given.
    """
    await run_in_threadpool(session.rollback)
    context = await run_in_threadpool(_tenant_context, session, request, viewer, slug)
    if status_code is None:
        status_code = 422 if errors.fields else 409
    return render(request, "tenant.html", viewer, status_code=status_code, **form, **context)


# --- audit log ------------------------------------------------------------------------------


@router.get("/admin/audit", name="portal_audit")
def audit_log(
    request: Request,
    session: SessionDep,
    viewer: AdminViewer,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> Response:
    page_size = 50
    events = audit.list_events(
        session, subject_type=None, subject_id=None, after_id=after, limit=page_size + 1
    )
    more = len(events) > page_size
    events = events[:page_size]
    return render(
        request,
        "audit.html",
        viewer,
        events=events,
        after=after,
        next_after=events[-1].id if more and events else None,
    )


def login_url(next_path: str) -> str:
    return f"{PREFIX}/auth/login?next={quote(next_path)}"


# --- notebooks ------------------------------------------------------------------------------


def _catalog(request: Request) -> Catalog:
    catalog: Catalog | None = getattr(request.app.state, "notebook_catalog", None)
    return catalog if catalog is not None else load_catalog()


async def _member(request: Request, session: Session, viewer: Viewer, slug: str) -> TenantCaller:
    """The viewer as a member of the tenant (fresh claims once, if the token predates it)."""
    tenant = await run_in_threadpool(tenancy.get_tenant, session, viewer.user, slug)
    if not viewer.user.is_platform_admin and tenant.slug not in viewer.user.tenant_slugs():
        viewer = await refresh_viewer(request, viewer)
    if not viewer.user.is_platform_admin and tenant.slug not in viewer.user.tenant_slugs():
        raise PermissionDeniedError(f"you are not a member of tenant {slug!r}")
    return TenantCaller(viewer.user, tenant)


def _notebook_context(request: Request, caller: TenantCaller) -> dict[str, Any]:
    cluster = request.app.state.cluster
    notebooks_error = None
    items: list[NotebookOut] = []
    try:
        items = notebooks.list_notebooks(cluster, caller)
    except SandladaError as exc:
        notebooks_error = error_text(exc, language_of(request))
    return {
        "notebooks": sorted(items, key=lambda n: n.name),
        "notebooks_error": notebooks_error,
        "slug": caller.tenant.slug,
        "viewer_subject": caller.user.subject,
        "viewer_is_admin": caller.is_admin,
    }


@router.get("/tenants/{slug}/notebooks/status", name="portal_notebook_status")
async def notebook_status(
    request: Request, slug: Slug, session: SessionDep, viewer: SignedIn
) -> Response:
    """The notebooks table alone: the tenant page polls it for live status."""
    caller = await _member(request, session, viewer, slug)
    context = await run_in_threadpool(_notebook_context, request, caller)
    return render(request, "notebooks_table.html", viewer, **context, **ENUMS)


@router.post("/tenants/{slug}/notebooks", name="portal_launch")
async def launch_notebook(
    request: Request, slug: Slug, session: SessionDep, viewer: SignedIn, language: LanguageDep
) -> Response:
    form = await checked_form(request, viewer)
    caller = await _member(request, session, viewer, slug)
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    errors = FormErrors()
    try:
        body = NotebookIn.model_validate(
            {
                "name": values.get("notebook_name", "").strip(),
                "profile": values.get("profile", ""),
            }
        )
        await run_in_threadpool(
            notebooks.launch,
            session,
            request.app.state.cluster,
            _catalog(request),
            caller,
            body,
        )
        return redirect(request, f"{PREFIX}/tenants/{slug}?launched={quote(body.name)}#notebooks")
    except ValidationError as exc:
        errors = translate_validation(
            exc, {("name",): "notebook_name", ("profile",): "profile"}, language
        )
        if "notebook_name" in errors.fields and values.get("notebook_name"):
            errors.fields["notebook_name"] = language.gettext(
                N_(
                    "Use lower-case letters a–z, digits and hyphens, starting with a letter "
                    "(at most {max} characters)."
                )
            ).format(max=NAME_MAX_LENGTH)
    except InvalidInputError as exc:
        field = "profile" if exc.field == "profile" else "notebook_name"
        errors.add(field, error_text(exc, language))
    except SandladaError as exc:
        errors.general.append(error_text(exc, language))
    return await _tenant_with_errors(
        request, session, viewer, slug, errors, launch_values=values, launch_errors=errors
    )


@router.post("/tenants/{slug}/notebooks/{name}/stop", name="portal_stop")
async def stop_notebook(
    request: Request,
    slug: Slug,
    name: Annotated[str, Path(min_length=1, max_length=NAME_MAX_LENGTH)],
    session: SessionDep,
    viewer: SignedIn,
) -> Response:
    await checked_form(request, viewer)
    caller = await _member(request, session, viewer, slug)
    await run_in_threadpool(notebooks.stop, session, request.app.state.cluster, caller, name)
    return redirect(request, f"{PREFIX}/tenants/{slug}?stopped={quote(name)}#notebooks")


# --- usage and costs ------------------------------------------------------------------------


def _month(value: str | None, timezone: str) -> Month:
    if not value:
        return costs.current_month(timezone)
    return Month.parse(value)


MonthQuery = Annotated[str | None, Query(max_length=7, pattern=r"^\d{4}-\d{2}$")]


@router.get("/tenants/{slug}/usage", name="portal_usage")
def usage_page(
    request: Request,
    slug: Slug,
    session: SessionDep,
    viewer: SignedIn,
    month: MonthQuery = None,
) -> Response:
    settings = portal_state(request).settings
    tenant = tenancy.get_tenant(session, viewer.user, slug)
    parsed = _month(month, settings.report_timezone)
    days = usage.tenant_days(
        session, tenant.id, parsed, settings.report_timezone, datetime.now(UTC)
    )
    return render(
        request,
        "usage.html",
        viewer,
        tenant=tenancy.tenant_out(tenant),
        month=parsed,
        previous=_previous(parsed),
        next_month=parsed.next()
        if parsed < costs.current_month(settings.report_timezone)
        else None,
        days=days,
        chart=usage.bar_chart(days),
        total=sum((d.cost_sek for d in days), Decimal(0)),
    )


def _next(month: Month, timezone: str) -> Month | None:
    return month.next() if month < costs.current_month(timezone) else None


def _previous(month: Month) -> Month:
    return Month.of(month.first_day - timedelta(days=1))


@router.get("/tenants/{slug}/usage.csv", name="portal_usage_csv")
def usage_csv(
    request: Request,
    slug: Slug,
    session: SessionDep,
    viewer: SignedIn,
    month: MonthQuery = None,
) -> Response:
    settings = portal_state(request).settings
    tenant = tenancy.get_tenant(session, viewer.user, slug)
    parsed = _month(month, settings.report_timezone)
    days = usage.tenant_days(
        session, tenant.id, parsed, settings.report_timezone, datetime.now(UTC)
    )
    return finish(
        request,
        Response(
            usage.days_csv(tenant.slug, days),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="usage-{tenant.slug}-{parsed}.csv"'
            },
        ),
    )


@router.get("/costs", name="portal_costs")
def costs_page(
    request: Request, session: SessionDep, viewer: SignedIn, month: MonthQuery = None
) -> Response:
    settings = portal_state(request).settings
    parsed = _month(month, settings.report_timezone)
    scope = costs.report_scope(viewer.user, None)
    report = costs.cost_report(session, parsed, settings.report_timezone, organisation_number=scope)
    return render(
        request,
        "costs.html",
        viewer,
        report=report,
        month=parsed,
        previous=_previous(parsed),
        next_month=parsed.next()
        if parsed < costs.current_month(settings.report_timezone)
        else None,
    )


@router.get("/costs.csv", name="portal_costs_csv")
def costs_csv(
    request: Request, session: SessionDep, viewer: SignedIn, month: MonthQuery = None
) -> Response:
    settings = portal_state(request).settings
    parsed = _month(month, settings.report_timezone)
    scope = costs.report_scope(viewer.user, None)
    report = costs.cost_report(session, parsed, settings.report_timezone, organisation_number=scope)
    return finish(
        request,
        Response(
            costs.report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="costs-{parsed}.csv"'},
        ),
    )


# --- members --------------------------------------------------------------------------------


async def _tenant_admin(
    request: Request, session: Session, viewer: Viewer, slug: str
) -> TenantCaller:
    caller = await _member(request, session, viewer, slug)
    if not caller.is_admin:
        raise PermissionDeniedError(f"this needs the admin role in tenant {slug!r}")
    return caller


@router.post("/tenants/{slug}/members", name="portal_add_member")
async def add_member(
    request: Request, slug: Slug, session: SessionDep, viewer: SignedIn, language: LanguageDep
) -> Response:
    form = await checked_form(request, viewer)
    caller = await _tenant_admin(request, session, viewer, slug)
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    errors = FormErrors()
    who = values.get("member_username", "").strip()
    try:
        body = MemberIn.model_validate(
            {"username": who or None, "role": values.get("member_role", "member")}
        )
        await run_in_threadpool(
            members.add_member, session, request.app.state.identity, caller, body
        )
        return redirect(request, f"{PREFIX}/tenants/{slug}?member_added={quote(who)}#members")
    except ValidationError:
        errors.add("member_username", language.gettext(N_("Fill in this field.")))
    except NotFoundError:
        errors.add(
            "member_username",
            language.gettext(
                N_(
                    "There is no account {username}; the person must sign in to Sandlåda once "
                    "before they can be added."
                )
            ).format(username=who),
        )
    except SandladaError as exc:
        errors.general.append(error_text(exc, language))
    return await _tenant_with_errors(
        request, session, viewer, slug, errors, member_values=values, member_errors=errors
    )


@router.post("/tenants/{slug}/members/{username}/remove", name="portal_remove_member")
async def remove_member(
    request: Request,
    slug: Slug,
    username: Annotated[str, Path(min_length=1, max_length=255)],
    session: SessionDep,
    viewer: SignedIn,
) -> Response:
    await checked_form(request, viewer)
    caller = await _tenant_admin(request, session, viewer, slug)
    await run_in_threadpool(
        members.remove_member, session, request.app.state.identity, caller, username
    )
    return redirect(request, f"{PREFIX}/tenants/{slug}?member_removed={quote(username)}#members")


# --- budget (platform admins set it; the tenant page shows it) -----------------------------

_BUDGET_MESSAGES = {
    "decimal_parsing": N_("Enter an amount in kronor, for example 25000 or 25 000,50."),
    "decimal_type": N_("Enter an amount in kronor, for example 25000 or 25 000,50."),
    "greater_than": N_("Enter an amount greater than 0 kronor."),
    "less_than_equal": N_("Enter an amount of at most 1 000 000 000 kronor."),
    "decimal_max_digits": N_("Enter an amount of at most 1 000 000 000 kronor."),
    "decimal_whole_digits": N_("Enter an amount of at most 1 000 000 000 kronor."),
    "decimal_max_places": N_("Use at most two decimals (öre)."),
}


def budget_amount(value: str, language: str) -> str:
    """A typed amount as pydantic reads it, written as people write it in ``language``.

    Spaces (Swedish thousands separators, also no-break ones) are dropped; in Swedish the
    decimal comma becomes a point, in English commas are thousands separators.
    """
    compact = "".join(value.split()).replace("\u2212", "-")
    return compact.replace(",", ".") if language == "sv" else compact.replace(",", "")


def budget_errors(exc: ValidationError, language: Language) -> FormErrors:
    errors = FormErrors()
    for error in exc.errors():
        template = _BUDGET_MESSAGES.get(
            str(error.get("type", "")), N_("Enter an amount in kronor, for example 25000.")
        )
        errors.add("budget_monthly_sek", language.gettext(template))
    return errors


@router.post("/tenants/{slug}/budget", name="portal_set_budget")
async def set_budget(
    request: Request, slug: Slug, session: SessionDep, viewer: AdminViewer, language: LanguageDep
) -> Response:
    form = await checked_form(request, viewer)
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    tenant = await run_in_threadpool(tenancy.get_tenant, session, viewer.user, slug)
    amount = values.get("budget_monthly_sek", "").strip()
    errors = FormErrors()
    try:
        if not amount:
            errors.add("budget_monthly_sek", language.gettext(N_("Fill in this field.")))
        else:
            body = BudgetIn.model_validate(
                {
                    "monthly_sek": budget_amount(amount, language.code),
                    "enforce": "budget_enforce" in values,
                }
            )
            await run_in_threadpool(
                budgets.set_budget,
                session,
                Actor.of(viewer.user),
                tenant,
                body,
                portal_state(request).settings.report_timezone,
            )
            return redirect(request, f"{PREFIX}/tenants/{slug}?budget_saved=1#budget")
    except ValidationError as exc:
        errors = budget_errors(exc, language)
    except SandladaError as exc:
        errors.general.append(error_text(exc, language))
    return await _tenant_with_errors(
        request, session, viewer, slug, errors, budget_values=values, budget_errors=errors
    )


@router.post("/tenants/{slug}/budget/remove", name="portal_remove_budget")
async def remove_budget(
    request: Request, slug: Slug, session: SessionDep, viewer: AdminViewer
) -> Response:
    await checked_form(request, viewer)
    tenant = await run_in_threadpool(tenancy.get_tenant, session, viewer.user, slug)
    await run_in_threadpool(budgets.delete_budget, session, Actor.of(viewer.user), tenant)
    return redirect(request, f"{PREFIX}/tenants/{slug}?budget_removed=1#budget")


# --- tenant lifecycle (platform admins): suspend, resume, offboard --------------------------


async def _lifecycle_change(
    request: Request,
    session: Session,
    viewer: Viewer,
    language: Language,
    slug: str,
    *,
    change: Callable[[Session, Actor, TenantCluster | None, Tenant], Tenant],
    done: str,
) -> Response:
    """Apply one lifecycle change as the API does (audited; cluster first, or nothing)."""
    tenant = await run_in_threadpool(tenancy.get_tenant, session, viewer.user, slug)
    errors = FormErrors()
    status_code = 409
    try:
        await run_in_threadpool(
            change, session, Actor.of(viewer.user), request.app.state.cluster, tenant
        )
        return redirect(request, f"{PREFIX}/tenants/{slug}?{done}=1#lifecycle")
    except SandladaError as exc:
        status_code = exc.status_code
        errors.general.append(error_text(exc, language))
    return await _tenant_with_errors(
        request, session, viewer, slug, errors, status_code=status_code, lifecycle_errors=errors
    )


@router.post("/tenants/{slug}/suspend", name="portal_suspend")
async def suspend_tenant(
    request: Request, slug: Slug, session: SessionDep, viewer: AdminViewer, language: LanguageDep
) -> Response:
    await checked_form(request, viewer)
    return await _lifecycle_change(
        request, session, viewer, language, slug, change=lifecycle.suspend, done="suspended"
    )


@router.post("/tenants/{slug}/resume", name="portal_resume")
async def resume_tenant(
    request: Request, slug: Slug, session: SessionDep, viewer: AdminViewer, language: LanguageDep
) -> Response:
    await checked_form(request, viewer)
    return await _lifecycle_change(
        request, session, viewer, language, slug, change=lifecycle.resume, done="resumed"
    )


@router.get("/tenants/{slug}/offboard", name="portal_offboard_confirm")
def offboard_confirm(
    request: Request, slug: Slug, session: SessionDep, viewer: AdminViewer
) -> Response:
    """The confirmation step: what offboarding does and when the data is deleted."""
    settings = portal_state(request).settings
    tenant = tenancy.get_tenant(session, viewer.user, slug)
    days = _retention_days(settings)
    return render(
        request,
        "offboard.html",
        viewer,
        tenant=tenancy.tenant_out(tenant),
        retention_days=days,
        delete_on=datetime.now(UTC) + timedelta(days=settings.tenant_retention_days),
        **ENUMS,
    )


@router.post("/tenants/{slug}/offboard", name="portal_offboard")
async def offboard_tenant(
    request: Request, slug: Slug, session: SessionDep, viewer: AdminViewer, language: LanguageDep
) -> Response:
    form = await checked_form(request, viewer)
    if form.get("confirm") != slug:
        # Only the confirmation page's button (which names the tenant) offboards.
        return redirect(request, f"{PREFIX}/tenants/{slug}/offboard")
    retention = timedelta(days=portal_state(request).settings.tenant_retention_days)

    def offboard(
        session: Session, actor: Actor, cluster: TenantCluster | None, tenant: Tenant
    ) -> Tenant:
        return lifecycle.offboard(session, actor, cluster, tenant, retention)

    return await _lifecycle_change(
        request, session, viewer, language, slug, change=offboard, done="offboarded"
    )
