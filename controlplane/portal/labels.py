"""Display names of the API's enumerations (message ids for the catalogue)."""

from __future__ import annotations

from controlplane.models import (
    AgencyKind,
    AiActRisk,
    DataClassification,
    RequestStatus,
    TenantStatus,
)
from controlplane.portal.i18n import N_

AGENCY_KINDS = {
    AgencyKind.MUNICIPALITY: N_("Municipality"),
    AgencyKind.REGION: N_("Region"),
    AgencyKind.AGENCY: N_("Government agency"),
    AgencyKind.OTHER: N_("Other public organisation"),
}
CLASSIFICATIONS = {
    DataClassification.OPEN: N_("Open"),
    DataClassification.INTERNAL: N_("Internal"),
    DataClassification.CONFIDENTIAL: N_("Confidential"),
}
RISKS = {
    AiActRisk.MINIMAL: N_("Minimal risk"),
    AiActRisk.LIMITED: N_("Limited risk (transparency obligations)"),
    AiActRisk.HIGH: N_("High risk"),
    AiActRisk.UNACCEPTABLE: N_("Unacceptable risk (prohibited)"),
}
REQUEST_STATUSES = {
    RequestStatus.PENDING: N_("Pending"),
    RequestStatus.APPROVED: N_("Approved"),
    RequestStatus.REJECTED: N_("Rejected"),
    RequestStatus.WITHDRAWN: N_("Withdrawn"),
}
TENANT_STATUSES = {
    TenantStatus.PROVISIONING: N_("Being set up"),
    TenantStatus.READY: N_("Ready"),
    TenantStatus.SUSPENDED: N_("Suspended"),
    TenantStatus.DELETING: N_("Being deleted"),
    TenantStatus.DELETED: N_("Deleted"),
}
ROLES = {"admin": N_("Administrator"), "member": N_("Member")}
ERROR_TITLES = {
    401: N_("Please sign in"),
    403: N_("You do not have access to this page"),
    404: N_("Page not found"),
    409: N_("This cannot be done right now"),
    422: N_("Check what you entered"),
    503: N_("A service is not available"),
}
NOTEBOOK_PHASES = {
    "Pending": N_("Starting"),
    "Running": N_("Running"),
    "Stopped": N_("Stopped"),
    "Failed": N_("Failed"),
}
STOP_REASONS = {
    "idle": N_("Stopped after being idle"),
    "max-age": N_("Stopped at its maximum age"),
    "user": N_("Stopped by a person"),
}
ALERT_DELIVERY = {
    "pending": N_("Being sent"),
    "delivered": N_("Sent"),
    "failed": N_("Could not be sent"),
    "skipped": N_("Recorded (no webhook configured)"),
}
