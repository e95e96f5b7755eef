"""The sandbox request workflow: submit, list, approve, reject, withdraw.

pending → approved | rejected | withdrawn; the three outcomes are final. Approval grants a quota
(reserving GPUs from the capacity ledger) and creates exactly one tenant in the same
transaction. Services never commit: the caller's session dependency does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from controlplane.agencies.service import agency_out, ensure_agency
from controlplane.audit.service import Actor, record
from controlplane.auth.principal import User
from controlplane.capacity import service as capacity
from controlplane.cluster.storage import TenantCluster
from controlplane.database import after_commit
from controlplane.errors import (
    InvalidInputError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
    UnacceptableRiskError,
)
from controlplane.identity.storage import IdentityStore
from controlplane.messages import action, message, state
from controlplane.models import AiActRisk, RequestStatus, SandboxRequest
from controlplane.requests.repository import SandboxRequestRepository
from controlplane.requests.schemas import (
    MAX_YEARS_AHEAD,
    ApproveIn,
    DecisionOut,
    RejectIn,
    RequesterOut,
    SandboxRequestIn,
    SandboxRequestOut,
)
from controlplane.schemas import format_organisation_number
from controlplane.tenancy import lifecycle
from controlplane.tenancy import service as tenancy
from tenants.quota import Quota


def today() -> date:
    return datetime.now(UTC).date()


def request_out(request: SandboxRequest) -> SandboxRequestOut:
    decision = None
    if request.decided_by is not None and request.decided_at is not None:
        decision = DecisionOut(
            by=request.decided_by,
            at=request.decided_at,
            comment=request.decision_comment,
            quota=Quota.model_validate(request.granted_quota) if request.granted_quota else None,
        )
    return SandboxRequestOut(
        id=request.id,
        name=request.name,
        status=request.status,
        agency=agency_out(request.agency),
        requester=RequesterOut(
            subject=request.requester_subject,
            name=request.requester_name,
            email=request.requester_email,
        ),
        purpose=request.purpose,
        legal_basis=request.legal_basis,
        data_classification=request.data_classification,
        ai_act_risk=request.ai_act_risk,
        quota=Quota.model_validate(request.requested_quota),
        end_date=request.end_date,
        created_at=request.created_at,
        decision=decision,
        tenant=tenancy.tenant_out(request.tenant) if request.tenant else None,
    )


def _audit_view(request: SandboxRequest) -> dict[str, Any]:
    return {
        "status": request.status.value,
        "decided_by": request.decided_by,
        "comment": request.decision_comment,
        "granted_quota": request.granted_quota,
    }


def submit(session: Session, user: User, body: SandboxRequestIn) -> SandboxRequest:
    """Record a new pending request after checking every rule a form cannot express."""
    if body.ai_act_risk is AiActRisk.UNACCEPTABLE:
        raise UnacceptableRiskError("ai_act_risk", message("request.unacceptable_risk"))
    if not user.is_platform_admin:
        own = user.require_organisation()
        if body.agency.organisation_number != own:
            own_agency = message(
                "request.own_agency_only", organisation_number=format_organisation_number(own)
            )
            raise PermissionDeniedError(
                message("invalid_field", field="agency.organisation_number", message=own_agency)
            )
    now = today()
    if body.end_date <= now:
        raise InvalidInputError("end_date", message("request.end_date_past", today=now.isoformat()))
    if body.end_date > now.replace(year=now.year + MAX_YEARS_AHEAD, day=min(now.day, 28)):
        raise InvalidInputError("end_date", message("request.end_date_far", years=MAX_YEARS_AHEAD))
    if body.quota.gpus > 0 and body.quota.gpu_model is not None:
        capacity.require_known_model(session, "quota.gpu_model", body.quota.gpu_model)
    agency = ensure_agency(session, body.agency)
    request = SandboxRequestRepository(session).add(
        SandboxRequest(
            name=body.name,
            agency_id=agency.id,
            requester_subject=user.subject,
            requester_name=user.name,
            requester_email=user.email,
            purpose=body.purpose,
            legal_basis=body.legal_basis,
            data_classification=body.data_classification,
            ai_act_risk=body.ai_act_risk,
            requested_quota=body.quota.model_dump(mode="json"),
            end_date=body.end_date,
            status=RequestStatus.PENDING,
        )
    )
    session.refresh(request)
    record(
        session,
        Actor.of(user),
        "sandbox_request.submitted",
        "sandbox_request",
        request.id,
        after={
            "name": request.name,
            "agency": format_organisation_number(agency.organisation_number),
            "status": request.status.value,
            "quota": request.requested_quota,
            "end_date": request.end_date.isoformat(),
        },
    )
    return request


def _visible(user: User, request: SandboxRequest) -> bool:
    return user.is_platform_admin or (
        user.organisation_number is not None
        and request.agency.organisation_number == user.organisation_number
    )


def get(
    session: Session, user: User, request_id: int, *, for_update: bool = False
) -> SandboxRequest:
    """The request if the user may see it; 404 otherwise, so other agencies learn nothing."""
    repository = SandboxRequestRepository(session)
    request = repository.get_for_update(request_id) if for_update else repository.get(request_id)
    if request is None or not _visible(user, request):
        raise NotFoundError(message("request.not_found", id=request_id))
    return request


def list_requests(
    session: Session, user: User, *, status: RequestStatus | None, limit: int, offset: int
) -> list[SandboxRequest]:
    if user.is_platform_admin:
        organisation_number = None
    elif user.organisation_number is None:
        return []
    else:
        organisation_number = user.organisation_number
    return SandboxRequestRepository(session).list(
        organisation_number=organisation_number, status=status, limit=limit, offset=offset
    )


def _require_pending(request: SandboxRequest, verb: str) -> None:
    if request.status is not RequestStatus.PENDING:
        raise InvalidTransitionError(
            message(
                "request.not_pending",
                id=request.id,
                state=state(request.status.value),
                action=action(verb),
            )
        )


def _decide(
    request: SandboxRequest, user: User, status: RequestStatus, comment: str | None
) -> None:
    request.status = status
    request.decided_by = user.subject
    request.decided_at = datetime.now(UTC)
    request.decision_comment = comment


def approve(
    session: Session,
    admin: User,
    request_id: int,
    body: ApproveIn,
    overcommit: float,
    *,
    cluster: TenantCluster | None = None,
    identity: IdentityStore | None = None,
) -> SandboxRequest:
    """Decide, reserve the GPUs, create the tenant and audit it: atomically and at most once.

    Only database work. The outside set-up (the Tenant resource and the identity groups,
    :func:`controlplane.tenancy.lifecycle.complete_setup`) follows the commit with no lock
    held: the API route runs it itself (to report what is pending); given ``cluster`` or
    ``identity``, it is scheduled to run after the request session commits instead.

    Lock order is request row, then GPU model row, then the audit chain; every writer takes
    them in this order, so concurrent approvals queue instead of deadlocking.
    """
    request = get(session, admin, request_id, for_update=True)
    _require_pending(request, "approved")
    quota = body.quota or Quota.model_validate(request.requested_quota)
    if quota.gpus > 0 and quota.gpu_model is not None:
        capacity.reserve(session, "quota.gpu_model", quota.gpu_model, quota.gpus, overcommit)
    before = _audit_view(request)
    _decide(request, admin, RequestStatus.APPROVED, body.comment)
    request.granted_quota = quota.model_dump(mode="json")
    session.flush()
    tenant = tenancy.create_for_request(session, Actor.of(admin), request, quota)
    record(
        session,
        Actor.of(admin),
        "sandbox_request.approved",
        "sandbox_request",
        request.id,
        before=before,
        after={**_audit_view(request), "tenant": tenant.slug},
    )
    if cluster is not None or identity is not None:
        slug, actor = tenant.slug, Actor.of(admin)
        after_commit(
            session,
            lambda database: lifecycle.complete_setup(database, cluster, identity, slug, actor),
        )
    session.refresh(request)
    return request


def reject(session: Session, admin: User, request_id: int, body: RejectIn) -> SandboxRequest:
    request = get(session, admin, request_id, for_update=True)
    _require_pending(request, "rejected")
    before = _audit_view(request)
    _decide(request, admin, RequestStatus.REJECTED, body.reason)
    session.flush()
    record(
        session,
        Actor.of(admin),
        "sandbox_request.rejected",
        "sandbox_request",
        request.id,
        before=before,
        after=_audit_view(request),
    )
    return request


def withdraw(session: Session, user: User, request_id: int) -> SandboxRequest:
    request = get(session, user, request_id, for_update=True)
    if request.requester_subject != user.subject:
        raise PermissionDeniedError(message("request.only_requester_withdraws"))
    _require_pending(request, "withdrawn")
    before = _audit_view(request)
    _decide(request, user, RequestStatus.WITHDRAWN, None)
    session.flush()
    record(
        session,
        Actor.of(user),
        "sandbox_request.withdrawn",
        "sandbox_request",
        request.id,
        before=before,
        after=_audit_view(request),
    )
    return request
