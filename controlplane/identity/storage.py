"""Keycloak's admin API as the control plane's service account, and nothing else.

All I/O with Keycloak's admin REST API goes through :class:`IdentityStore`: python-keycloak's
``KeycloakAdmin`` authenticated with the ``sandlada-controlplane`` client credentials. Every
python-keycloak error that is not an expected "not found" becomes a
:class:`~controlplane.errors.ServiceUnavailableError` (503): an unreachable or misconfigured
identity provider is the platform's problem, never the caller's, and never a 500.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from keycloak import KeycloakAdmin, KeycloakError, KeycloakOpenIDConnection

from controlplane.errors import ServiceUnavailableError
from controlplane.messages import message

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class IdentityUser:
    """A person as the identity provider knows them."""

    id: str
    username: str
    email: str | None
    name: str

    @classmethod
    def from_representation(cls, user: dict[str, Any]) -> IdentityUser:
        names = [user.get("firstName"), user.get("lastName")]
        name = " ".join(n for n in names if isinstance(n, str) and n)
        email = user.get("email")
        return cls(
            id=str(user["id"]),
            username=str(user["username"]),
            email=email if isinstance(email, str) else None,
            name=name or str(user["username"]),
        )


class IdentityStore:
    """Groups and users of one realm; methods are blocking (call them from sync routes)."""

    def __init__(
        self, server_url: str, realm: str, client_id: str, client_secret: str, timeout: float
    ) -> None:
        self.server_url = server_url
        self.realm = realm
        connection = KeycloakOpenIDConnection(
            server_url=server_url,
            realm_name=realm,
            client_id=client_id,
            client_secret_key=client_secret,
            grant_type="client_credentials",
            timeout=math.ceil(timeout),  # python-keycloak types it as whole seconds
        )
        # No I/O here: the service-account token is fetched on the first call.
        self._admin = KeycloakAdmin(connection=connection)

    @contextmanager
    def _call(self, what: str) -> Iterator[None]:
        try:
            yield
        except KeycloakError as exc:
            log.warning("identity provider call failed", call=what, error=str(exc))
            raise ServiceUnavailableError(
                message("identity.unavailable", what=what, error=str(exc))
            ) from exc

    def _one_user(self, query: dict[str, Any], field: str, value: str) -> IdentityUser | None:
        with self._call(f"look up user by {field}"):
            users = self._admin.get_users({**query, "exact": True})
        # ``exact`` matches case-insensitively on some Keycloak versions; compare ourselves.
        for user in users:
            if str(user.get(field, "")).lower() == value.lower():
                return IdentityUser.from_representation(user)
        return None

    def find_by_username(self, username: str) -> IdentityUser | None:
        return self._one_user({"username": username}, "username", username)

    def find_by_email(self, email: str) -> IdentityUser | None:
        return self._one_user({"email": email}, "email", email)

    def get_user(self, user_id: str) -> IdentityUser | None:
        try:
            with self._call("get user"):
                user = self._admin.get_user(user_id)
        except ServiceUnavailableError as exc:
            if _status(exc) == 404:
                return None
            raise
        return IdentityUser.from_representation(user)

    def group_id(self, name: str) -> str | None:
        """The id of the top-level group ``name``, or None when it does not exist."""
        try:
            with self._call("find group"):
                group = self._admin.get_group_by_path(f"/{name}")
        except ServiceUnavailableError as exc:
            if _status(exc) == 404:
                return None
            raise
        return str(group["id"])

    def ensure_group(self, name: str) -> str:
        """The id of the top-level group ``name``, created if missing (idempotent)."""
        with self._call("create group"):
            created = self._admin.create_group({"name": name}, skip_exists=True)
        if created:
            return str(created)
        existing = self.group_id(name)
        if existing is None:  # deleted between our create and our read
            raise ServiceUnavailableError(message("identity.group_vanished", group=name))
        return existing

    def members(self, group_id: str) -> list[IdentityUser]:
        with self._call("list group members"):
            users = self._admin.get_group_members(group_id)
        return [IdentityUser.from_representation(u) for u in users]

    def add_member(self, user_id: str, group_id: str) -> None:
        with self._call("add group member"):
            self._admin.group_user_add(user_id, group_id)

    def remove_member(self, user_id: str, group_id: str) -> None:
        with self._call("remove group member"):
            self._admin.group_user_remove(user_id, group_id)


def _status(exc: ServiceUnavailableError) -> int | None:
    cause = exc.__cause__
    return cause.response_code if isinstance(cause, KeycloakError) else None
