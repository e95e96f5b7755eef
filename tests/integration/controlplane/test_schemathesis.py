"""Property-based API test: schemathesis against the served OpenAPI document with valid tokens.

The app runs in uvicorn on loopback on its own committed database (with GPU capacity so that
generated requests can succeed), and every generated call carries a platform admin's token so
that the fuzzing reaches past authentication into the handlers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from schemathesis.core.result import Ok

from controlplane.database import Database
from controlplane.settings import Settings
from tests.fixtures.tokens import ADMIN, TestIssuer
from tests.integration.controlplane.conftest import ServedApp, create_capacity

pytestmark = pytest.mark.slow
EXAMPLES = 15  # per operation and mode; the machine has two cores

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture
def served(served_settings: Settings) -> Iterator[ServedApp]:
    database = Database.from_url(served_settings.database_url)
    with database.session(write=True) as session:
        create_capacity(session, 8)
        create_capacity(session, 8, "string")  # the model name generators reach first
    database.dispose()
    with ServedApp(served_settings) as served:
        yield served


def _fuzz(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

    run()


# schemathesis' own pytest integration (`from_fixture`) breaks on pytest 9 (it reads a private
# node attribute), so operations are driven through hypothesis directly; each operation's first
# failure is collected and all are reported together.
def test_api_conforms_to_its_schema(served: ServedApp, oidc_issuer: TestIssuer) -> None:
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    headers = oidc_issuer.headers(ADMIN, expires_in=3600)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"operation could not be loaded: {result.err()}")
            continue
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, headers)
            except Unsatisfiable:
                # Operations without parameters or body have no invalid input to generate.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as exc:
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    assert operations >= 10
    assert not failures, "\n\n".join(failures)
