"""Monthly tenant budgets: alerts at 80 % and 100 %, webhook delivery, launch enforcement.

When budgets are evaluated: periodically, by the control plane's budget loop
(``SANDLADA_BUDGET_EVALUATION_SECONDS``, default 60 s, started with the app) and on demand with
``sandlada budgets evaluate``. Each pass prices every budgeted tenant's current month exactly as
the cost report does (so an alert never disagrees with the report) and records an alert for
each threshold reached. Recording is ``INSERT … ON CONFLICT DO NOTHING`` on the unique
(tenant, month, threshold), so each alert exists exactly once however often, and however many
replicas, evaluate.

Delivery is separate from recording and at least once: the alert row is committed first with
``delivery_state = pending``; the delivery step then POSTs it as JSON to
``SANDLADA_BUDGET_WEBHOOK_URL`` and marks it ``delivered`` on a 2xx, or schedules a retry with
exponential backoff, and after ``MAX_ATTEMPTS`` marks it ``failed`` (kept, with the last error).
A crash between the POST and the commit can send an alert twice; the payload's ``id`` (also the
``Idempotency-Key`` header) lets the receiver drop the duplicate.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import structlog
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from controlplane.audit.service import Actor, record
from controlplane.costs import service
from controlplane.costs.repository import CostRepository
from controlplane.costs.schemas import BudgetAlertOut, BudgetIn, BudgetOut
from controlplane.database import Database
from controlplane.errors import ConflictError, NotFoundError
from controlplane.messages import LANGUAGES, Message, message
from controlplane.models import Budget, BudgetAlert, Tenant
from controlplane.schemas import format_organisation_number
from controlplane.settings import get_settings

log = structlog.get_logger(__name__)

THRESHOLDS = (80, 100)
MAX_ATTEMPTS = 8
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
SYSTEM = Actor(subject="system:budgets", name="budget evaluation")


class BudgetExceededError(ConflictError):
    code = "budget_exceeded"


def _percent(spent: Decimal, budget: Decimal) -> Decimal:
    return (spent * 100 / budget).quantize(Decimal("0.1"))


def _alert_out(alert: BudgetAlert) -> BudgetAlertOut:
    return BudgetAlertOut.model_validate(alert, from_attributes=True)


def get_budget(session: Session, tenant: Tenant, timezone: str) -> BudgetOut:
    budget = CostRepository(session).budget(tenant.id)
    if budget is None:
        raise NotFoundError(message("costs.no_budget", tenant=tenant.slug))
    return _budget_out(session, budget, timezone)


def _budget_out(session: Session, budget: Budget, timezone: str) -> BudgetOut:
    month = service.current_month(timezone)
    spent = service.tenant_month_cost(session, budget.tenant_id, month, timezone)
    return BudgetOut(
        tenant=budget.tenant.slug,
        monthly_sek=budget.monthly_sek,
        enforce=budget.enforce,
        month=str(month),
        spent_sek=spent,
        percent_used=_percent(spent, budget.monthly_sek),
        launches_refused=budget.enforce and spent >= budget.monthly_sek,
        alerts=[
            _alert_out(a) for a in CostRepository(session).alerts(budget.tenant_id, str(month))
        ],
        updated_at=budget.updated_at,
        updated_by=budget.updated_by,
    )


def set_budget(
    session: Session, actor: Actor, tenant: Tenant, body: BudgetIn, timezone: str
) -> BudgetOut:
    """Create or change a tenant's monthly budget (audited).

    Alerts already recorded this month stay recorded: raising the budget does not fire the
    same threshold again in the same month, and lowering it fires at the next evaluation.
    """
    repository = CostRepository(session)
    budget = repository.budget(tenant.id)
    before = None
    if budget is None:
        budget = Budget(
            tenant_id=tenant.id,
            monthly_sek=body.monthly_sek,
            enforce=body.enforce,
            updated_by=actor.subject,
        )
        repository.add(budget)
    else:
        before = {"monthly_sek": str(budget.monthly_sek), "enforce": budget.enforce}
        budget.monthly_sek = body.monthly_sek
        budget.enforce = body.enforce
        budget.updated_by = actor.subject
        budget.updated_at = datetime.now(UTC)
        session.flush()
    record(
        session,
        actor,
        "budget.set",
        "tenant",
        tenant.slug,
        before=before,
        after={"monthly_sek": str(body.monthly_sek), "enforce": body.enforce},
    )
    session.refresh(budget)
    return _budget_out(session, budget, timezone)


def delete_budget(session: Session, actor: Actor, tenant: Tenant) -> None:
    repository = CostRepository(session)
    budget = repository.budget(tenant.id)
    if budget is None:
        raise NotFoundError(message("costs.no_budget", tenant=tenant.slug))
    before = {"monthly_sek": str(budget.monthly_sek), "enforce": budget.enforce}
    repository.delete(budget)
    record(session, actor, "budget.deleted", "tenant", tenant.slug, before=before)


def ensure_launch_allowed(session: Session, tenant: Tenant, timezone: str | None = None) -> None:
    """Raise :class:`BudgetExceededError` (409) if ``tenant`` enforces a budget it has spent.

    Called by the notebook launch path before anything is created. Costs are the month's so far
    as the cost report prices them (usage rolled up to usage_daily).
    """
    budget = CostRepository(session).budget(tenant.id)
    if budget is None or not budget.enforce:
        return
    if timezone is None:
        timezone = get_settings().report_timezone
    month = service.current_month(timezone)
    spent = service.tenant_month_cost(session, tenant.id, month, timezone)
    if spent >= budget.monthly_sek:
        raise BudgetExceededError(
            message(
                "costs.budget_exceeded",
                tenant=tenant.slug,
                spent=spent,
                budget=budget.monthly_sek,
                month=str(month),
            )
        )


def evaluate(
    session: Session, timezone: str, *, webhook_configured: bool, now: datetime | None = None
) -> list[BudgetAlert]:
    """Record the alerts every budgeted tenant has reached this month; returns the new ones."""
    now = now or datetime.now(UTC)
    month = service.current_month(timezone, now)
    repository = CostRepository(session)
    recorded: list[BudgetAlert] = []
    for budget in repository.budgets():
        spent = service.tenant_month_cost(session, budget.tenant_id, month, timezone, now)
        for threshold in THRESHOLDS:
            if spent * 100 < budget.monthly_sek * threshold:
                continue
            alert_id = repository.record_alert_once(
                {
                    "tenant_id": budget.tenant_id,
                    "month": str(month),
                    "threshold_percent": threshold,
                    "budget_sek": budget.monthly_sek,
                    "spent_sek": spent,
                    "recorded_at": now,
                    "delivery_state": "pending" if webhook_configured else "skipped",
                    "attempts": 0,
                    "next_attempt_at": now if webhook_configured else None,
                }
            )
            if alert_id is None:
                continue
            alert = session.get(BudgetAlert, alert_id)
            assert alert is not None
            recorded.append(alert)
            record(
                session,
                SYSTEM,
                "budget.threshold_reached",
                "tenant",
                budget.tenant.slug,
                after={
                    "month": str(month),
                    "threshold_percent": threshold,
                    "budget_sek": str(budget.monthly_sek),
                    "spent_sek": str(spent),
                },
            )
            log.info(
                "budget alert recorded",
                tenant=budget.tenant.slug,
                month=str(month),
                threshold=threshold,
            )
    return recorded


def alert_message(alert: BudgetAlert) -> Message:
    """What a person reads about an alert (webhook ``message``), in either language."""
    return message(
        "costs.budget_alert",
        tenant=alert.tenant.slug,
        threshold=alert.threshold_percent,
        month=alert.month,
        spent=alert.spent_sek,
        budget=alert.budget_sek,
    )


def alert_payload(alert: BudgetAlert) -> dict[str, Any]:
    """The JSON body POSTed to the webhook."""
    tenant = alert.tenant
    text = alert_message(alert)
    return {
        "type": "budget.threshold_reached",
        "id": f"budget-alert-{alert.id}",
        "tenant": tenant.slug,
        "agency": {
            "organisation_number": format_organisation_number(tenant.agency.organisation_number),
            "name": tenant.agency.name,
        },
        "month": alert.month,
        "threshold_percent": alert.threshold_percent,
        "budget_sek": str(alert.budget_sek),
        "spent_sek": str(alert.spent_sek),
        "currency": "SEK",
        "recorded_at": alert.recorded_at.isoformat(),
        "message": {language: text.render(language) for language in LANGUAGES},
    }


def _retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS))


def deliver_due(
    session: Session, client: httpx.Client, url: str, *, now: datetime | None = None
) -> int:
    """POST every due pending alert to ``url``; returns how many were delivered.

    The rows are locked while they are sent (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two
    replicas never send the same alert at once; the caller commits the new delivery states.
    """
    now = now or datetime.now(UTC)
    delivered = 0
    for alert in CostRepository(session).due_alerts(now):
        alert.attempts += 1
        alert.last_attempt_at = now
        try:
            response = client.post(
                url,
                json=alert_payload(alert),
                headers={"Idempotency-Key": f"budget-alert-{alert.id}"},
            )
            error = None if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            alert.delivery_state = "delivered"
            alert.delivered_at = now
            alert.next_attempt_at = None
            alert.last_error = None
            delivered += 1
        elif alert.attempts >= MAX_ATTEMPTS:
            alert.delivery_state = "failed"
            alert.next_attempt_at = None
            alert.last_error = error[:1000]
            log.warning("budget alert delivery failed for good", alert=alert.id, error=error)
        else:
            alert.next_attempt_at = now + _retry_delay(alert.attempts)
            alert.last_error = error[:1000]
            log.info("budget alert delivery failed; will retry", alert=alert.id, error=error)
    session.flush()
    return delivered


def run_once(
    database: Database,
    timezone: str,
    webhook_url: str | None,
    *,
    timeout: float = 5.0,
    now: datetime | None = None,
) -> tuple[int, int]:
    """One evaluation pass: record alerts (committed), then deliver due ones (committed).

    Returns (alerts recorded, alerts delivered).
    """
    with database.session(write=True) as session, session.begin():
        recorded = len(evaluate(session, timezone, webhook_configured=bool(webhook_url), now=now))
    delivered = 0
    if webhook_url:
        with (
            httpx.Client(timeout=timeout) as client,
            database.session(write=True) as session,
            session.begin(),
        ):
            delivered = deliver_due(session, client, webhook_url, now=now)
    return recorded, delivered


async def evaluate_forever(
    database: Database, timezone: str, webhook_url: str | None, period: float, http_timeout: float
) -> None:
    """The app's budget loop: one pass every ``period`` seconds; a failed pass is logged."""
    if isinstance(database.sessionmaker.kw.get("bind"), Connection):
        # A database bound to one test's connection (and its rolled-back transaction): a pass
        # from this thread would share that connection with the test's own sessions.
        return
    while True:
        # Sleep first: a starting app (or a test client) does not evaluate before it serves.
        await asyncio.sleep(period)
        try:
            await asyncio.to_thread(run_once, database, timezone, webhook_url, timeout=http_timeout)
        except Exception:  # the loop must outlive one bad pass
            log.exception("budget evaluation failed")
