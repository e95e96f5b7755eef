"""API types shared by several domains: safe text, organisation numbers, agencies."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from stdnum.exceptions import ValidationError
from stdnum.se import orgnr

from controlplane.models import AgencyKind


def clean_text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text on every database, or None if it can."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        return "must not contain unpaired surrogate characters"
    return None


def _clean_text(value: str) -> str:
    problem = clean_text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# Text a person typed: PostgreSQL cannot store NUL and no database can store lone surrogates,
# so both are refused as bad input instead of failing at the database.
SafeText = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$"), AfterValidator(_clean_text)]


def _organisation_number(value: str) -> str:
    try:
        return str(orgnr.validate(value))
    except ValidationError as exc:
        raise ValueError(
            "not a valid Swedish organisation number (NNNNNN-NNNN with a correct check digit)"
        ) from exc


def format_organisation_number(compact: str) -> str:
    """NNNNNN-NNNN from the stored compact form (what ``orgnr.format`` gives, without its
    re-validation, which is measurable when listing hundreds of tenants)."""
    return f"{compact[:6]}-{compact[6:]}"


OrganisationNumber = Annotated[
    str,
    StringConstraints(min_length=10, max_length=13, pattern=r"^[0-9 -]+$"),
    AfterValidator(_organisation_number),
    Field(
        description="Swedish organisation number, NNNNNN-NNNN (the dash is optional).",
        examples=["212000-2742"],
    ),
]


class AgencyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[SafeText, Field(min_length=1, max_length=200, examples=["Kiruna kommun"])]
    organisation_number: OrganisationNumber
    kind: AgencyKind


class AgencyOut(BaseModel):
    name: str
    organisation_number: str = Field(examples=["212000-2742"])
    kind: AgencyKind


# Ids, offsets and cursors fit the databases' 32-bit INTEGER; larger values are a 422, not a
# database overflow.
MAX_ID = 2**31 - 1
