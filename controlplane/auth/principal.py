"""The authenticated caller, built from Keycloak-shaped token claims."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stdnum.exceptions import ValidationError
from stdnum.se import orgnr

from controlplane.errors import NotAuthenticatedError, PermissionDeniedError
from controlplane.messages import message
from tenants.names import NAMESPACE_PREFIX, TENANT_ROLES

ORGANISATION_CLAIM = "organisation_number"


def _strings(value: Any) -> frozenset[str]:
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


def _group_name(group: str) -> str:
    # Keycloak puts full paths ("/t-x-members") in the groups claim when "full group path" is
    # on; the identity group is the last segment either way.
    return group.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class User:
    """Who is calling and what the token says about them."""

    subject: str
    username: str
    name: str
    email: str | None
    roles: frozenset[str]
    groups: frozenset[str]
    organisation_number: str | None  # compact 10 digits, when the claim is present and valid
    organisation_claim: str | None  # the claim as sent, for messages
    is_platform_admin: bool

    @classmethod
    def from_claims(cls, claims: dict[str, Any], admin_role: str) -> User:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise NotAuthenticatedError(message("auth.no_subject"))
        realm_access = claims.get("realm_access")
        roles = (
            _strings(realm_access.get("roles")) if isinstance(realm_access, dict) else frozenset()
        )
        raw_org = claims.get(ORGANISATION_CLAIM)
        org: str | None = None
        if isinstance(raw_org, str):
            try:
                org = orgnr.validate(raw_org)
            except ValidationError:
                org = None
        username = claims.get("preferred_username")
        name = claims.get("name")
        email = claims.get("email")
        return cls(
            subject=subject,
            username=username if isinstance(username, str) else subject,
            name=name
            if isinstance(name, str)
            else (username if isinstance(username, str) else subject),
            email=email if isinstance(email, str) else None,
            roles=roles,
            groups=frozenset(_group_name(g) for g in _strings(claims.get("groups"))),
            organisation_number=org,
            organisation_claim=raw_org if isinstance(raw_org, str) else None,
            is_platform_admin=admin_role in roles,
        )

    def require_organisation(self) -> str:
        """The caller's agency (compact organisation number); 403 when the token lacks one."""
        if self.organisation_number is not None:
            return self.organisation_number
        if self.organisation_claim is None:
            raise PermissionDeniedError(message("auth.no_organisation"))
        raise PermissionDeniedError(message("auth.bad_organisation", claim=self.organisation_claim))

    def tenant_slugs(self) -> frozenset[str]:
        """Slugs of the tenants whose identity groups (t-<slug>-admins/-members) the user is in."""
        suffixes = tuple(f"-{role}s" for role in TENANT_ROLES)
        slugs = set()
        for group in self.groups:
            if group.startswith(NAMESPACE_PREFIX):
                for suffix in suffixes:
                    if group.endswith(suffix) and len(group) > len(NAMESPACE_PREFIX) + len(suffix):
                        slugs.add(group[len(NAMESPACE_PREFIX) : -len(suffix)])
        return frozenset(slugs)
