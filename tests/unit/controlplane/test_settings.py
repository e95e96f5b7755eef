"""Settings: environment variables with the SANDLADA_ prefix; production refuses dev defaults."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from controlplane.settings import DEV_DATABASE_URL, DEV_OIDC_ISSUER, Settings


def test_defaults_are_the_local_dev_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENVIRONMENT", "DATABASE_URL", "OIDC_ISSUER", "OIDC_AUDIENCE", "GPU_OVERCOMMIT"):
        monkeypatch.delenv(f"SANDLADA_{name}", raising=False)
    settings = Settings()
    assert settings.database_url == "sqlite:///var/sandlada.db" == DEV_DATABASE_URL
    assert settings.oidc_issuer == "http://127.0.0.1:8080/realms/sandlada" == DEV_OIDC_ISSUER
    assert settings.oidc_audience == "sandlada-controlplane"
    assert settings.gpu_overcommit == 1.0


def test_read_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDLADA_GPU_OVERCOMMIT", "1.5")
    monkeypatch.setenv("SANDLADA_DATABASE_URL", "postgresql+psycopg://db/sandlada")
    settings = Settings()
    assert settings.gpu_overcommit == 1.5
    assert settings.database_url == "postgresql+psycopg://db/sandlada"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "SANDLADA_DATABASE_URL"),
        ({"database_url": "postgresql+psycopg://db/s"}, "SANDLADA_OIDC_ISSUER"),
        (
            {"database_url": "postgresql+psycopg://db/s", "oidc_issuer": "http://sso.example.se/r"},
            "https",
        ),
    ],
)
def test_production_refuses_dev_defaults(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(environment="production", **overrides)  # type: ignore[arg-type]


def test_production_with_real_settings_starts() -> None:
    settings = Settings(
        environment="production",
        database_url="postgresql+psycopg://db/sandlada",
        oidc_issuer="https://sso.example.se/realms/sandlada",
        keycloak_url="https://sso.example.se",
        keycloak_client_secret=SecretStr("from-the-secret-store"),
    )
    assert settings.environment == "production"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"keycloak_url": "https://sso.example.se"}, "SANDLADA_KEYCLOAK_CLIENT_SECRET"),
        ({"keycloak_client_secret": "from-the-secret-store"}, "SANDLADA_KEYCLOAK_URL"),
    ],
)
def test_production_refuses_dev_keycloak_admin(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(
            environment="production",
            database_url="postgresql+psycopg://db/sandlada",
            oidc_issuer="https://sso.example.se/realms/sandlada",
            **overrides,  # type: ignore[arg-type]
        )


def test_keycloak_admin_defaults_to_the_dev_realm_in_development_only() -> None:
    assert Settings(environment="development").keycloak_url == "http://127.0.0.1:8080"
    assert Settings(environment="test").keycloak_url is None


def test_overcommit_below_one_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(gpu_overcommit=0.5)
