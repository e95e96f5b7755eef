"""Entry point for ``python -m infra.mlflow``."""

from infra.mlflow.cli import mlflow_app

mlflow_app()
