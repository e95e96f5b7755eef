"""Control plane settings: one pydantic-settings class read from ``SANDLADA_*`` variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_DATABASE_URL = "sqlite:///var/sandlada.db"
DEV_OIDC_ISSUER = "http://127.0.0.1:8080/realms/sandlada"
DEV_KUBECONFIG = Path("var/cluster/kubeconfig")
DEV_KEYCLOAK_URL = "http://127.0.0.1:8080"
DEV_KEYCLOAK_CLIENT_SECRET = "sandlada-controlplane-dev-secret"  # noqa: S105 - dev realm only
DEV_PORTAL_CLIENT_SECRET = "sandlada-portal-dev-secret"  # noqa: S105 - dev realm only
DEV_PORTAL_SESSION_SECRET = "sandlada-portal-dev-session-secret"  # noqa: S105 - dev only
DEV_MLFLOW_URL = "http://127.0.0.1:5000"


class Settings(BaseSettings):
    """Everything the control plane reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="SANDLADA_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        DEV_DATABASE_URL,
        description="SQLAlchemy URL; PostgreSQL (postgresql+psycopg://…) in production.",
    )
    oidc_issuer: str = Field(
        DEV_OIDC_ISSUER,
        description="OIDC issuer; discovery is at {issuer}/.well-known/openid-configuration.",
    )
    oidc_audience: str = "sandlada-controlplane"
    oidc_http_timeout_seconds: float = Field(5.0, gt=0)
    jwks_cache_seconds: int = Field(
        300, ge=0, description="How long a fetched JWKS is trusted before it is fetched again."
    )
    jwks_min_refetch_seconds: float = Field(
        5.0,
        ge=0,
        description="Least time between JWKS refetches caused by tokens with unknown key ids.",
    )
    platform_admin_role: str = "platform-admin"
    tenant_list_cache_entries: int = Field(
        256,
        ge=0,
        le=100_000,
        description="Rendered pages of GET /api/v1/tenants kept until tenants or agencies change "
        "(least recently used first out); 0 renders every request.",
    )
    gpu_overcommit: float = Field(
        1.0,
        ge=1.0,
        le=10.0,
        description="Granted GPUs per model may reach total × this factor.",
    )
    log_json: bool = False
    kubeconfig: Path | None = Field(
        None,
        description="Kubeconfig of the cluster tenants run on; development defaults to "
        f"{DEV_KUBECONFIG} (the local cluster). Unset or absent file: no cluster, tenants are "
        "recorded and provisioned once one is configured.",
    )
    kubernetes_timeout_seconds: float = Field(5.0, gt=0)
    tenant_sync_seconds: float = Field(
        2.0, ge=0, description="Period of the tenant status sync; 0 turns the loop off."
    )
    tenant_retention_days: float = Field(
        30.0,
        ge=0,
        description="Days an offboarded tenant stays suspended (data kept) before its Tenant "
        "resource and namespace are deleted.",
    )
    keycloak_url: str | None = Field(
        None,
        description="Keycloak base URL for group and member administration (admin REST API); "
        f"development defaults to {DEV_KEYCLOAK_URL}. Unset: no tenant groups are created on "
        "approval and the members API answers 503.",
    )
    keycloak_realm: str = "sandlada"
    keycloak_client_id: str = Field(
        "sandlada-controlplane", description="Confidential client whose service account is used."
    )
    keycloak_client_secret: SecretStr = SecretStr(DEV_KEYCLOAK_CLIENT_SECRET)
    keycloak_timeout_seconds: float = Field(5.0, gt=0)
    portal_client_id: str = Field(
        "sandlada-portal", description="OIDC client of the web portal (code flow with PKCE)."
    )
    portal_client_secret: SecretStr = SecretStr(DEV_PORTAL_CLIENT_SECRET)
    portal_session_secret: SecretStr = Field(
        SecretStr(DEV_PORTAL_SESSION_SECRET),
        description="Key material for the portal's encrypted session cookies.",
    )
    portal_mlflow_url: str | None = Field(
        None,
        description="MLflow UI linked from tenant pages; development defaults to "
        f"{DEV_MLFLOW_URL}.",
    )
    mlflow_enabled: bool = Field(
        False,
        description="The platform runs the shared MLflow server (the operator has "
        "SANDLADA_OPERATOR_MLFLOW_URL and a workspace per tenant): every Tenant resource then "
        "lists sharedServices [mlflow], so the tenant's NetworkPolicies allow egress to it. The "
        "Helm chart sets it from operator.mlflow.url, `sandlada dev up` from the MLflow it starts.",
    )

    report_timezone: str = Field(
        "Europe/Stockholm",
        description="IANA time zone whose calendar days usage is rolled up by, prices take "
        "effect on and months are reported in.",
    )
    budget_webhook_url: str | None = Field(
        None,
        description="URL that budget alerts (80 % and 100 % of a tenant's monthly budget) are "
        "POSTed to as JSON. Unset: alerts are recorded but not sent.",
    )
    budget_webhook_timeout_seconds: float = Field(5.0, gt=0)
    budget_evaluation_seconds: float = Field(
        60.0,
        ge=0,
        description="Period of the budget evaluation (alerts and their webhook delivery); 0 "
        "turns the loop off.",
    )

    @model_validator(mode="after")
    def _no_dev_defaults_in_production(self) -> Self:
        # A production deployment that silently runs on the developer's SQLite file or trusts a
        # loopback/plain-HTTP issuer would be a security hole, so refuse to start instead.
        if self.kubeconfig is None and self.environment == "development":
            self.kubeconfig = DEV_KUBECONFIG
        if self.keycloak_url is None and self.environment == "development":
            self.keycloak_url = DEV_KEYCLOAK_URL
        if self.portal_mlflow_url is None and self.environment == "development":
            self.portal_mlflow_url = DEV_MLFLOW_URL
        if self.environment != "production":
            return self
        problems = []
        if self.database_url.startswith("sqlite"):
            problems.append("SANDLADA_DATABASE_URL points at SQLite; use PostgreSQL")
        if self.oidc_issuer == DEV_OIDC_ISSUER or not self.oidc_issuer.startswith("https://"):
            problems.append("SANDLADA_OIDC_ISSUER must be the production issuer over https")
        if self.keycloak_client_secret.get_secret_value() == DEV_KEYCLOAK_CLIENT_SECRET:
            problems.append("SANDLADA_KEYCLOAK_CLIENT_SECRET is the dev realm's secret")
        if self.keycloak_url is None:
            problems.append("SANDLADA_KEYCLOAK_URL is unset; tenant groups could not be managed")
        if problems:
            raise ValueError(
                "refusing to start in production with dev defaults: " + "; ".join(problems)
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
