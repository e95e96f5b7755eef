"""A tenant's MLflow workspace and credentials on the shared tracking server.

The shared server runs with ``--enable-workspaces`` and MLflow's basic-auth app. For tenant
``<slug>`` this module keeps, through the server's admin REST API:

- a workspace ``t-<slug>`` (the tenant's namespace name, so a later move to
  mlflow-kubernetes-plugins, where workspace = namespace, keeps every name);
- a user ``t-<slug>`` whose password is derived from a platform key and the slug, so any
  reconcile can return the same credentials without storing them;
- a role ``sandlada-tenant`` in that workspace (``TENANT_GRANTS``: enter and create, full rights
  on its experiments, runs, artifacts, models and prompts) and the user's assignment to it.

The user has no grant anywhere else, and the server denies what was not granted
(``default_permission = NO_PERMISSIONS``, default workspace closed), so other tenants'
experiments, runs and artifacts answer 403 or 404 and searches do not list them.

Everything is idempotent: the Tenant operator calls ``ensure_tenant_workspace`` on create and
resume, ``remove_tenant_workspace`` on delete. Errors carry ``retryable`` so a handler can
choose between a temporary and a permanent failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

import httpx

from tenants.names import is_valid_slug, namespace_for

TENANT_ROLE = "sandlada-tenant"
# What the tenant's role holds, all inside its own workspace. ``USE`` on the workspace lets the
# user in and lets it create; on its own it only reaches what this user created, because the
# server's default permission is NO_PERMISSIONS. The tenant is one team sharing one credential
# (and later several member identities), so it gets full rights on every experiment (with its
# runs, traces, logged models), registered model and prompt of the workspace.
TENANT_GRANTS: tuple[tuple[str, str], ...] = (
    ("workspace", "USE"),
    ("experiment", "MANAGE"),
    ("registered_model", "MANAGE"),
    ("prompt", "MANAGE"),
)
WORKSPACE_HEADER = "X-MLFLOW-WORKSPACE"
_USERS = "/api/2.0/mlflow/users"
_ROLES = "/api/3.0/mlflow/roles"
_USER_ROLES = "/api/3.0/mlflow/users/roles/list"
_WORKSPACES = "/api/3.0/mlflow/workspaces"
_EXPERIMENTS_SEARCH = "/api/2.0/mlflow/experiments/search"
_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"


class MlflowAdminError(Exception):
    """The MLflow server refused or could not be reached; ``retryable`` says whether to retry."""

    def __init__(self, message: str, *, retryable: bool, status_code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code


@dataclass(frozen=True)
class TenantMlflowCredentials:
    """What a tenant's notebook needs to log runs in its workspace."""

    tracking_uri: str
    workspace: str
    username: str
    password: str = field(repr=False)

    def env(self) -> dict[str, str]:
        """Environment variables the MLflow client reads (for a pod's Secret / ``envFrom``)."""
        return {
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "MLFLOW_WORKSPACE": self.workspace,
            "MLFLOW_TRACKING_USERNAME": self.username,
            "MLFLOW_TRACKING_PASSWORD": self.password,
        }


def admin_client(
    base_url: str, username: str, password: str, *, timeout: float = 10.0
) -> httpx.Client:
    """An HTTP client for the server's admin API (the caller closes it)."""
    return httpx.Client(base_url=base_url, auth=(username, password), timeout=timeout)


def tenant_workspace_name(slug: str) -> str:
    """The workspace (and user) name of tenant ``slug``: its namespace, ``t-<slug>``."""
    if not is_valid_slug(slug):
        raise ValueError(f"not a tenant slug (DNS-1123 label, at most 40 characters): {slug!r}")
    return namespace_for(slug)


def tenant_password(password_key: bytes, slug: str) -> str:
    """The tenant user's password: an HMAC of the slug under the platform's key.

    Deriving instead of storing lets every reconcile return the same credentials; rotating the
    key rotates all passwords at the next reconcile. The key is as sensitive as the MLflow
    admin password and lives beside it.
    """
    if len(password_key) < 16:
        raise ValueError("password_key must be at least 16 bytes")
    digest = hmac.new(password_key, b"sandlada-mlflow-tenant:" + slug.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def ensure_tenant_workspace(
    client: httpx.Client,
    slug: str,
    *,
    password_key: bytes,
    tracking_uri: str | None = None,
) -> TenantMlflowCredentials:
    """Create or repair tenant ``slug``'s workspace, user and grant; return its credentials.

    ``client`` talks to the server as its admin (see ``admin_client``). ``tracking_uri`` is the
    address notebooks use (e.g. the in-cluster Service); it defaults to the client's base URL.
    """
    name = tenant_workspace_name(slug)
    password = tenant_password(password_key, slug)
    _ensure_workspace(client, name)
    _ensure_user(client, name, password)
    role_id = _ensure_role(client, name)
    _ensure_assignment(client, name, role_id)
    return TenantMlflowCredentials(
        tracking_uri=tracking_uri or str(client.base_url).rstrip("/"),
        workspace=name,
        username=name,
        password=password,
    )


def remove_tenant_workspace(client: httpx.Client, slug: str, *, keep_data: bool = False) -> None:
    """Revoke tenant ``slug``'s credentials and, unless ``keep_data``, delete its data.

    The user goes first, so access stops even if deleting data fails half-way. Deleting data
    removes each experiment's artifacts, then the workspace with everything in it (its roles,
    experiments, runs, models). ``keep_data=True`` suits a suspension: a later
    ``ensure_tenant_workspace`` gives access back to the same data.
    """
    name = tenant_workspace_name(slug)
    _delete_owner_roles(client, name)
    _call(client, "DELETE", f"{_USERS}/delete", json={"username": name}, missing_ok=True)
    if keep_data:
        return
    if _call(client, "GET", f"{_WORKSPACES}/{name}", missing_ok=True) is None:
        return
    for experiment_id in _experiment_ids(client, name):
        # The artifact proxy resolves paths inside the request's workspace
        # (``workspaces/<name>/<experiment id>/…``), so this cannot reach another tenant's files.
        _call(
            client,
            "DELETE",
            f"{_ARTIFACTS}/{experiment_id}",
            headers={WORKSPACE_HEADER: name},
            missing_ok=True,
        )
    _call(client, "DELETE", f"{_WORKSPACES}/{name}", params={"mode": "CASCADE"}, missing_ok=True)


def _delete_owner_roles(client: httpx.Client, username: str) -> None:
    """Delete the synthetic ``__user_<id>__`` roles holding the user's owner grants.

    MLflow keys them by user id and keeps them when the user is deleted; a store that reuses
    ids (SQLite does for the highest one) must not hand them to whoever gets the id next.
    """
    listed = _call(
        client,
        "GET",
        _USER_ROLES,
        params={"username": username},
        missing_ok=True,
    )
    for role in (listed or {}).get("roles", []):
        if str(role.get("name", "")).startswith("__user_"):
            _call(
                client, "DELETE", f"{_ROLES}/delete", json={"role_id": role["id"]}, missing_ok=True
            )


def _ensure_workspace(client: httpx.Client, name: str) -> None:
    if _call(client, "GET", f"{_WORKSPACES}/{name}", missing_ok=True) is not None:
        return
    _call(
        client,
        "POST",
        _WORKSPACES,
        json={"name": name, "description": f"Sandlåda tenant {name}"},
        exists_ok=True,
    )


def _ensure_user(client: httpx.Client, name: str, password: str) -> None:
    created = _call(
        client,
        "POST",
        f"{_USERS}/create",
        json={"username": name, "password": password},
        exists_ok=True,
    )
    if created is None:
        # Existing user: set the derived password again, which also applies a rotated key.
        _call(
            client,
            "PATCH",
            f"{_USERS}/update-password",
            json={"username": name, "password": password},
        )


def _ensure_role(client: httpx.Client, workspace: str) -> int:
    listed = _call(client, "GET", f"{_ROLES}/list", params={"workspace": workspace}) or {}
    role = next((r for r in listed.get("roles", []) if r.get("name") == TENANT_ROLE), None)
    if role is None:
        created = _call(
            client,
            "POST",
            f"{_ROLES}/create",
            json={
                "workspace": workspace,
                "name": TENANT_ROLE,
                "description": "The tenant's own workspace: everything in it, nothing else.",
            },
        )
        role = (created or {})["role"]
    role_id = int(role["id"])
    present = {
        (p.get("resource_type"), p.get("resource_pattern"), p.get("permission"))
        for p in role.get("permissions", [])
    }
    for resource_type, permission in TENANT_GRANTS:
        if (resource_type, "*", permission) in present:
            continue
        _call(
            client,
            "POST",
            f"{_ROLES}/permissions/add",
            json={
                "role_id": role_id,
                "resource_type": resource_type,
                "resource_pattern": "*",
                "permission": permission,
            },
        )
    return role_id


def _ensure_assignment(client: httpx.Client, username: str, role_id: int) -> None:
    listed = _call(client, "GET", _USER_ROLES, params={"username": username})
    if any(int(r["id"]) == role_id for r in (listed or {}).get("roles", [])):
        return
    _call(
        client,
        "POST",
        f"{_ROLES}/assign",
        json={"username": username, "role_id": role_id},
        exists_ok=True,
    )


def _experiment_ids(client: httpx.Client, workspace: str) -> list[str]:
    ids: list[str] = []
    page_token: str | None = None
    while True:
        body: dict[str, Any] = {"max_results": 1000, "view_type": "ALL"}
        if page_token:
            body["page_token"] = page_token
        page = _call(
            client,
            "POST",
            _EXPERIMENTS_SEARCH,
            json=body,
            headers={WORKSPACE_HEADER: workspace},
        )
        page = page or {}
        ids.extend(str(e["experiment_id"]) for e in page.get("experiments", []))
        page_token = page.get("next_page_token")
        if not page_token:
            return ids


def _call(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    json: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    missing_ok: bool = False,
    exists_ok: bool = False,
) -> dict[str, Any] | None:
    """One admin API call; None when tolerated as already absent / already present."""
    try:
        response = client.request(method, path, json=json, params=params, headers=headers)
    except httpx.TransportError as error:
        raise MlflowAdminError(
            f"MLflow unreachable for {method} {path}: {error}", retryable=True
        ) from error
    if response.is_success:
        if not response.content:
            return {}
        payload: dict[str, Any] = response.json()
        return payload
    code = _error_code(response)
    if missing_ok and (response.status_code == 404 or code == _DOES_NOT_EXIST):
        return None
    if exists_ok and code == _ALREADY_EXISTS:
        return None
    raise MlflowAdminError(
        f"MLflow answered {response.status_code} {code or ''} to {method} {path}: "
        f"{_error_message(response)}",
        # Server-side trouble may pass; a refusal of this request will not.
        retryable=response.status_code >= 500 or response.status_code == 429,
        status_code=response.status_code,
    )


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("error_code") if isinstance(body, dict) else None
    return str(code) if code else None


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    # MLflow's duplicate-key messages embed the SQL statement with its parameters (a password
    # hash for users): keep only the first sentence out of logs and status conditions.
    message = str(body.get("message", "")) if isinstance(body, dict) else str(body)
    return message.split(" Error: ", 1)[0][:300]
