"""Enumerations stored in the database and exposed in the API (their values are the contract)."""

from __future__ import annotations

import enum


class AgencyKind(enum.StrEnum):
    MUNICIPALITY = "municipality"
    REGION = "region"
    AGENCY = "agency"
    OTHER = "other"


class DataClassification(enum.StrEnum):
    OPEN = "open"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"


class AiActRisk(enum.StrEnum):
    """The requester's self-assessment under the EU AI Act; ``unacceptable`` is never accepted."""

    MINIMAL = "minimal"
    LIMITED = "limited"
    HIGH = "high"
    UNACCEPTABLE = "unacceptable"


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class TenantStatus(enum.StrEnum):
    PROVISIONING = "provisioning"
    READY = "ready"
    SUSPENDED = "suspended"
    DELETING = "deleting"
    DELETED = "deleted"
