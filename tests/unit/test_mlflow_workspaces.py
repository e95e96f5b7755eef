"""Pure parts of operators/mlflow_workspaces.py: names, derived passwords, pod environment."""

from __future__ import annotations

import pytest

from operators.mlflow_workspaces import (
    TenantMlflowCredentials,
    tenant_password,
    tenant_workspace_name,
)

KEY = b"k" * 32


def test_workspace_is_the_tenant_namespace() -> None:
    assert tenant_workspace_name("kiruna-ai") == "t-kiruna-ai"


@pytest.mark.parametrize("slug", ["", "Kiruna", "-a", "a_b", "a" * 41, "../admin"])
def test_workspace_name_refuses_what_is_not_a_slug(slug: str) -> None:
    with pytest.raises(ValueError, match="slug"):
        tenant_workspace_name(slug)


def test_password_is_stable_per_key_and_slug_and_differs_otherwise() -> None:
    password = tenant_password(KEY, "kiruna-ai")
    assert password == tenant_password(KEY, "kiruna-ai")
    assert password != tenant_password(KEY, "lulea-ai")
    assert password != tenant_password(b"x" * 32, "kiruna-ai")
    # 256 bits, URL-safe, so it fits a Secret, an env var and basic auth unquoted.
    assert len(password) == 43
    assert password.replace("-", "").replace("_", "").isalnum()


def test_password_key_must_not_be_short() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        tenant_password(b"short", "kiruna-ai")


def test_env_holds_what_the_mlflow_client_reads_and_repr_hides_the_password() -> None:
    credentials = TenantMlflowCredentials(
        tracking_uri="http://mlflow.sandlada-system:5000",
        workspace="t-kiruna-ai",
        username="t-kiruna-ai",
        password="s3cret",
    )
    assert credentials.env() == {
        "MLFLOW_TRACKING_URI": "http://mlflow.sandlada-system:5000",
        "MLFLOW_WORKSPACE": "t-kiruna-ai",
        "MLFLOW_TRACKING_USERNAME": "t-kiruna-ai",
        "MLFLOW_TRACKING_PASSWORD": "s3cret",
    }
    assert "s3cret" not in repr(credentials)
