"""Local MLflow tracking server for development and tests (see ``infra.mlflow.server``)."""
