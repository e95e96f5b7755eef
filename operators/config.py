"""Settings of the operators, from ``SANDLADA_OPERATOR_*`` environment variables."""

from __future__ import annotations

import hashlib

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorConfig(BaseSettings):
    """How the operator process runs; the defaults suit one replica on a local cluster."""

    model_config = SettingsConfigDict(env_prefix="SANDLADA_OPERATOR_")

    standalone: bool = True
    """No kopf peering: one replica (the Helm chart runs one, with a Recreate strategy)."""

    health_url: str | None = None
    """kopf liveness endpoint, e.g. ``http://0.0.0.0:8080/healthz``; none when unset."""

    install_crd: bool = False
    """Apply the Tenant CRD at start-up (local development; Helm ships it otherwise)."""

    workers: int = 16
    """Threads for the synchronous handlers (Kubernetes client calls block)."""

    retry_delay: float = 2.0
    """Seconds before retrying a reconcile that failed for a transient reason."""

    kopf_log_level: str = "WARNING"
    """Level of kopf's per-object log; INFO logs every handled event (costly at bulk)."""

    deletion_poll: float = 1.0
    """Seconds between checks while a tenant's namespace is being removed."""

    notebook_url_base: str = "https://sandlada.localhost"
    """Where the platform's proxy serves notebooks; a notebook's url is this plus its path."""

    notebook_storage_class: str | None = None
    """StorageClass of notebooks' home volumes; none: the cluster's default class."""

    mlflow_url: str | None = None
    """The shared MLflow server's base URL for its admin API; none: tenants get no MLflow."""

    mlflow_admin_username: str = "admin"
    """MLflow's admin user (basic-auth app)."""

    mlflow_admin_password: SecretStr | None = None
    """MLflow's admin password; MLflow counts as configured only with it."""

    mlflow_password_key: SecretStr | None = None
    """Key the tenant passwords are derived from (≥ 16 bytes); none: derived from the admin
    password, so the dev stack needs to hand over only the admin credentials."""

    mlflow_tracking_uri: str | None = None
    """The address notebooks use (e.g. the in-cluster Service); none: ``mlflow_url``."""

    @property
    def mlflow_configured(self) -> bool:
        """Whether tenants get an MLflow workspace."""
        return bool(self.mlflow_url and self.mlflow_admin_password)

    def mlflow_key(self) -> bytes:
        """The tenant-password key (see ``mlflow_password_key``)."""
        if self.mlflow_password_key is not None:
            return self.mlflow_password_key.get_secret_value().encode()
        if self.mlflow_admin_password is None:
            raise ValueError("MLflow is not configured")
        secret = self.mlflow_admin_password.get_secret_value().encode()
        return hashlib.sha256(b"sandlada-mlflow-password-key:" + secret).digest()
