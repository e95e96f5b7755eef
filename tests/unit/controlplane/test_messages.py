"""The message catalogue: complete in both languages, and the language negotiation."""

from __future__ import annotations

import string

import pytest

from controlplane.errors import InvalidInputError, InvalidTransitionError
from controlplane.messages import CATALOGUE, LANGUAGES, Message, action, message, negotiate, state
from controlplane.models import RequestStatus, TenantStatus


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("key", sorted(CATALOGUE))
def test_every_message_has_both_languages_with_the_same_parameters(key: str) -> None:
    entry = CATALOGUE[key]
    assert set(entry) == set(LANGUAGES), key
    assert all(entry[language].strip() for language in LANGUAGES), key
    assert _fields(entry["en"]) == _fields(entry["sv"]), key


@pytest.mark.parametrize("value", [s.value for s in (*RequestStatus, *TenantStatus)])
def test_every_state_has_words(value: str) -> None:
    assert state(value).render("sv")


def test_unknown_key_is_refused_at_once() -> None:
    with pytest.raises(KeyError):
        Message("no.such.message")


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("sv", "sv"),
        ("sv-SE", "sv"),
        ("SV_fi", "sv"),
        ("en-GB,sv;q=0.8", "en"),
        ("sv;q=0.9,en;q=0.5", "sv"),
        ("en;q=0.4,sv;q=0.9", "sv"),
        ("de-DE,sv;q=0.5", "sv"),
        ("de,fr", "en"),
        ("*", "en"),
        ("sv;q=0", "en"),
        ("sv;q=bogus,en", "en"),
        (";;;,,", "en"),
    ],
)
def test_negotiate(header: str | None, language: str) -> None:
    assert negotiate(header) == language


def test_nested_parameters_are_rendered_in_the_same_language() -> None:
    error = InvalidTransitionError(
        message("request.not_pending", id=7, state=state("approved"), action=action("rejected"))
    )
    assert error.render("en") == (
        "sandbox request 7 is approved, so it cannot be rejected; only pending requests can"
    )
    assert error.render("sv").startswith("ansökan 7 är godkänd, så den kan inte avslås")
    assert error.detail == error.render("en")


def test_invalid_input_names_the_field_in_both_languages() -> None:
    error = InvalidInputError("end_date", message("request.end_date_far", years=5))
    assert error.field == "end_date"
    assert error.render("en") == "end_date: must be at most 5 years ahead"
    assert error.render("sv") == "end_date: får ligga högst 5 år fram i tiden"
