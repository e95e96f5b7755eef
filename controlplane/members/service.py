"""Tenant members: who is in a tenant's admins and members groups in Keycloak.

The identity groups ``t-<slug>-admins`` and ``t-<slug>-members`` live in Keycloak, not in SQL;
Keycloak is the one record of who belongs to a tenant (tokens, Kubernetes RBAC and MLflow all
read it from there). Every change is audited in the caller's SQL transaction. A Keycloak change
cannot be rolled back with SQL, so each write here is idempotent and converges: a request retried
after a failure finishes the job instead of doubling it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from controlplane.audit.service import Actor, record
from controlplane.auth.dependencies import TenantCaller
from controlplane.errors import (
    ConflictError,
    NotFoundError,
    ServiceUnavailableError,
)
from controlplane.identity.storage import IdentityStore, IdentityUser
from controlplane.members.schemas import MemberIn, MemberOut, MemberRole
from controlplane.messages import message
from tenants.names import tenant_group

NOT_CONFIGURED = message("identity.not_configured")


def require(identity: IdentityStore | None) -> IdentityStore:
    if identity is None:
        raise ServiceUnavailableError(NOT_CONFIGURED)
    return identity


def _group_ids(identity: IdentityStore, slug: str) -> dict[MemberRole, str]:
    """Both groups of a tenant, created when missing (idempotent)."""
    return {role: identity.ensure_group(tenant_group(slug, role.value)) for role in MemberRole}


def provision_tenant_groups(
    session: Session,
    identity: IdentityStore,
    actor: Actor,
    slug: str,
    requester_subject: str,
) -> None:
    """Make a new tenant's groups exist with the requester as admin, and audit it."""
    admin = ensure_tenant_groups(identity, slug, requester_subject)
    record_tenant_groups(session, actor, slug, admin)


def ensure_tenant_groups(
    identity: IdentityStore, slug: str, requester_subject: str, *, exact: bool = True
) -> str | None:
    """Keycloak only: the tenant's groups exist with the requester as admin.

    Returns the admin's username (None when the requester's account is gone). Runs after the
    approval has committed, outside any SQL transaction. ``exact`` (the approval's attempt)
    converges to exactly the requester as admin and no members, which also clears anything left
    in groups of the same name; the status sync's retry (``exact=False``) only adds, so people
    added through the members API meanwhile are kept.
    """
    groups = _group_ids(identity, slug)
    requester = identity.get_user(requester_subject)
    wanted = {MemberRole.ADMIN: {requester.id} if requester else set(), MemberRole.MEMBER: set()}
    for role, group_id in groups.items():
        present = {user.id for user in identity.members(group_id)}
        for user_id in wanted[role] - present:
            identity.add_member(user_id, group_id)
        for user_id in present - wanted[role] if exact else ():
            identity.remove_member(user_id, group_id)
    return requester.username if requester else None


def record_tenant_groups(session: Session, actor: Actor, slug: str, admin: str | None) -> None:
    """Audit that the tenant's groups were set up (the sync looks for this event)."""
    record(
        session,
        actor,
        "tenant.groups_created",
        "tenant",
        slug,
        after={
            "groups": [tenant_group(slug, role.value) for role in MemberRole],
            # None: the requester's account is gone from Keycloak; a platform admin adds an
            # admin through the members API.
            "admin": admin,
        },
    )


def _memberships(
    identity: IdentityStore, slug: str
) -> tuple[dict[MemberRole, str], dict[str, tuple[IdentityUser, MemberRole]]]:
    groups = _group_ids(identity, slug)
    people: dict[str, tuple[IdentityUser, MemberRole]] = {}
    # Members first, so that someone in both groups is reported with the stronger role.
    for role in (MemberRole.MEMBER, MemberRole.ADMIN):
        for user in identity.members(groups[role]):
            people[user.id] = (user, role)
    return groups, people


def _out(user: IdentityUser, role: MemberRole) -> MemberOut:
    return MemberOut(username=user.username, email=user.email, name=user.name, role=role)


def list_members(identity: IdentityStore | None, caller: TenantCaller) -> list[MemberOut]:
    _, people = _memberships(require(identity), caller.tenant.slug)
    return sorted((_out(u, r) for u, r in people.values()), key=lambda m: m.username)


def _unknown(who: str) -> NotFoundError:
    return NotFoundError(
        f"there is no account {who!r} in the identity provider; the person must sign in to "
        "Sandlåda once (or be created in Keycloak by your identity administrator) before they "
        f"can be added / det finns inget konto {who!r}; personen måste logga in i Sandlåda en "
        "gång (eller läggas upp i Keycloak av er identitetsadministratör) innan hen kan läggas till"
    )


def _last_admin(slug: str) -> ConflictError:
    return ConflictError(
        f"tenant {slug!r} must keep at least one admin; add another admin first / miljön måste "
        "ha minst en administratör; lägg till en till först"
    )


def add_member(
    session: Session, identity: IdentityStore | None, caller: TenantCaller, body: MemberIn
) -> MemberOut:
    """Put a person in exactly the given role (moving them if they had the other one)."""
    store = require(identity)
    slug = caller.tenant.slug
    if body.username is not None:
        user, who = store.find_by_username(body.username), body.username
    else:
        assert body.email is not None  # the schema demands exactly one
        user, who = store.find_by_email(body.email), body.email
    if user is None:
        raise _unknown(who)
    groups, people = _memberships(store, slug)
    before = people.get(user.id, (user, None))[1]
    if before is MemberRole.ADMIN and body.role is MemberRole.MEMBER:
        admins = [uid for uid, (_, role) in people.items() if role is MemberRole.ADMIN]
        if admins == [user.id]:
            raise _last_admin(slug)
    if before is not body.role:
        # Add first, then remove: a failure in between leaves more access, not an empty tenant.
        store.add_member(user.id, groups[body.role])
        for role, group_id in groups.items():
            if role is not body.role:
                store.remove_member(user.id, group_id)
        record(
            session,
            Actor.of(caller.user),
            "tenant.member_added" if before is None else "tenant.member_role_changed",
            "tenant",
            slug,
            before={"username": user.username, "role": before.value} if before else None,
            after={"username": user.username, "role": body.role.value},
        )
    return _out(user, body.role)


def remove_member(
    session: Session, identity: IdentityStore | None, caller: TenantCaller, username: str
) -> None:
    store = require(identity)
    slug = caller.tenant.slug
    groups, people = _memberships(store, slug)
    match = next(
        ((u, r) for u, r in people.values() if u.username.lower() == username.lower()), None
    )
    if match is None:
        raise NotFoundError(
            f"{username!r} is not a member of tenant {slug!r} / {username!r} är inte medlem i "
            "miljön"
        )
    user, role = match
    admins = [uid for uid, (_, r) in people.items() if r is MemberRole.ADMIN]
    if role is MemberRole.ADMIN and admins == [user.id]:
        raise _last_admin(slug)
    for group_id in groups.values():
        store.remove_member(user.id, group_id)
    record(
        session,
        Actor.of(caller.user),
        "tenant.member_removed",
        "tenant",
        slug,
        before={"username": user.username, "role": role.value},
    )
