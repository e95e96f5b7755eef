"""The caller as read from Keycloak-shaped claims."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.auth.principal import User
from controlplane.errors import NotAuthenticatedError, PermissionDeniedError


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "u-1",
        "preferred_username": "anna",
        "name": "Anna Andersson",
        "email": "anna@kiruna.se",
        "realm_access": {"roles": ["default-roles-sandlada"]},
        "groups": ["t-kiruna-ai-pilot-members", "/t-lulea-x-admins", "unrelated", "t--members"],
        "organisation_number": "212000-2742",
    }
    claims.update(overrides)
    return claims


def test_reads_keycloak_claims() -> None:
    user = User.from_claims(_claims(), "platform-admin")
    assert (user.subject, user.username, user.name, user.email) == (
        "u-1",
        "anna",
        "Anna Andersson",
        "anna@kiruna.se",
    )
    assert user.organisation_number == "2120002742"
    assert not user.is_platform_admin
    assert user.tenant_slugs() == {"kiruna-ai-pilot", "lulea-x"}


def test_platform_admin_role() -> None:
    user = User.from_claims(_claims(realm_access={"roles": ["platform-admin"]}), "platform-admin")
    assert user.is_platform_admin


@pytest.mark.parametrize("raw", ["2120002742", "212000-2742", " 212000-2742"])
def test_organisation_number_is_normalised(raw: str) -> None:
    assert User.from_claims(_claims(organisation_number=raw), "x").require_organisation() == (
        "2120002742"
    )


def test_missing_or_invalid_organisation_claim_is_a_clear_403() -> None:
    missing = User.from_claims(_claims(organisation_number=None), "x")
    with pytest.raises(PermissionDeniedError, match="no organisation_number claim"):
        missing.require_organisation()
    invalid = User.from_claims(_claims(organisation_number="212000-2743"), "x")
    with pytest.raises(PermissionDeniedError, match="not a valid Swedish organisation number"):
        invalid.require_organisation()


def test_odd_claim_types_are_ignored_not_trusted() -> None:
    user = User.from_claims(
        _claims(realm_access="platform-admin", groups="t-x-admins"), "platform-admin"
    )
    assert not user.is_platform_admin
    assert user.tenant_slugs() == frozenset()


def test_subject_is_required() -> None:
    with pytest.raises(NotAuthenticatedError):
        User.from_claims(_claims(sub=""), "x")
