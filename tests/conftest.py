"""Shared pytest configuration: fixture modules live in tests/fixtures/ and are plugins here."""

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.tokens",
    "tests.fixtures.cluster",
    "tests.fixtures.keycloak",
    "tests.fixtures.mlflow",
]
