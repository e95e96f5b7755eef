"""Settings of the operators, from ``SANDLADA_OPERATOR_*`` environment variables."""

from __future__ import annotations

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
