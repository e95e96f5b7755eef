"""The Tenant operator's MLflow step: a workspace per tenant and Secret ``mlflow-tracking``.

`provision` calls `operators.mlflow_workspaces.ensure_tenant_workspace` and writes the
credentials into Secret ``mlflow-tracking`` in the tenant namespace (notebook pods read it with
``envFrom``); `suspend` revokes the tenant's MLflow user but keeps its data; `remove` deletes
the workspace with everything in it (offboarding). Without MLflow settings every step is a
no-op that says so, and the Tenant's ``MlflowReady`` condition tells why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from kubernetes import client

from operators.config import OperatorConfig
from operators.mlflow_workspaces import (
    MlflowAdminError,
    admin_client,
    ensure_tenant_workspace,
    remove_tenant_workspace,
)
from operators.notebook_storage import call_api
from operators.storage import FIELD_MANAGER, KubernetesError
from tenants.builders import MLFLOW_SECRET, build_mlflow_secret
from tenants.names import namespace_for
from tenants.resource import SharedService, TenantSpec

CONDITION = "MlflowReady"


class Reason:
    """Reasons of the ``MlflowReady`` condition."""

    PROVISIONED = "Provisioned"
    NOT_CONFIGURED = "NotConfigured"
    UNAVAILABLE = "MlflowUnavailable"
    REFUSED = "MlflowRefused"
    SUSPENDED = "Suspended"
    NOT_GRANTED = "NotGranted"


@dataclass(frozen=True)
class Outcome:
    """What the MLflow step did, for the ``MlflowReady`` condition."""

    ready: bool
    reason: str
    message: str


NOT_CONFIGURED = Outcome(
    ready=False,
    reason=Reason.NOT_CONFIGURED,
    message="MLflow is not configured for this platform (SANDLADA_OPERATOR_MLFLOW_URL and "
    "_ADMIN_PASSWORD unset): no tracking workspace",
)


class MlflowStep:
    """Provisions and removes tenants' MLflow workspaces with the operator's settings."""

    def __init__(self, config: OperatorConfig, api_client: client.ApiClient) -> None:
        self._config = config
        self._core = client.CoreV1Api(api_client)

    @property
    def configured(self) -> bool:
        """Whether MLflow settings are present."""
        return self._config.mlflow_configured

    def _admin(self) -> httpx.Client:
        password = self._config.mlflow_admin_password
        assert self._config.mlflow_url is not None and password is not None  # configured
        return admin_client(
            self._config.mlflow_url,
            self._config.mlflow_admin_username,
            password.get_secret_value(),
        )

    def provision(self, slug: str, owner: dict[str, Any]) -> Outcome:
        """Ensure the workspace and write Secret ``mlflow-tracking`` (owner: the Tenant).

        Raises `MlflowAdminError` (``retryable`` tells whether to retry) and `KubernetesError`.
        """
        if not self.configured:
            return NOT_CONFIGURED
        with self._admin() as admin:
            credentials = ensure_tenant_workspace(
                admin,
                slug,
                password_key=self._config.mlflow_key(),
                tracking_uri=self._config.mlflow_tracking_uri,
            )
        namespace = namespace_for(slug)
        secret = build_mlflow_secret(slug, credentials.env())
        secret["metadata"]["ownerReferences"] = [owner]
        call_api(
            f"apply Secret {namespace}/{MLFLOW_SECRET}",
            lambda: self._core.patch_namespaced_secret(
                MLFLOW_SECRET,
                namespace,
                secret,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
            ),
        )
        return Outcome(
            ready=True,
            reason=Reason.PROVISIONED,
            message=f"workspace {credentials.workspace}; credentials in Secret {MLFLOW_SECRET}",
        )

    def suspend(self, slug: str) -> Outcome:
        """Revoke the tenant's MLflow user; runs, models and artifacts stay."""
        if not self.configured:
            return NOT_CONFIGURED
        with self._admin() as admin:
            remove_tenant_workspace(admin, slug, keep_data=True)
        return Outcome(
            ready=False,
            reason=Reason.SUSPENDED,
            message="suspended: MLflow credentials revoked, data kept",
        )

    def remove(self, slug: str) -> None:
        """Delete the tenant's workspace, user and data (offboarding)."""
        if not self.configured:
            return
        with self._admin() as admin:
            remove_tenant_workspace(admin, slug)


def failure(exc: MlflowAdminError | KubernetesError) -> Outcome:
    """The condition for a failed step."""
    retryable = exc.retryable if isinstance(exc, MlflowAdminError) else exc.transient
    return Outcome(
        ready=False,
        reason=Reason.UNAVAILABLE if retryable else Reason.REFUSED,
        message=f"MLflow workspace not provisioned: {exc}",
    )


def as_granted(outcome: Outcome, spec: TenantSpec) -> Outcome:
    """``outcome`` as the tenant's pods see it: without ``mlflow`` in ``spec.sharedServices``
    (granted by the control plane) its NetworkPolicies block the egress, so a provisioned
    workspace is not usable (under a CNI that enforces them) and the condition says why."""
    if not outcome.ready or SharedService.MLFLOW in spec.shared_services:
        return outcome
    return Outcome(
        ready=False,
        reason=Reason.NOT_GRANTED,
        message=f"{outcome.message}; but spec.sharedServices does not list mlflow, so the "
        "tenant's NetworkPolicies block its pods from reaching MLflow (the control plane grants "
        "it when SANDLADA_MLFLOW_ENABLED is set)",
    )
