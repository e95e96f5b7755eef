"""API shapes of the members endpoints."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controlplane.schemas import SafeText


class MemberRole(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class MemberIn(BaseModel):
    """Whom to add (by username or e-mail, exactly one) and in which role."""

    model_config = ConfigDict(extra="forbid")

    username: Annotated[SafeText, Field(min_length=1, max_length=255)] | None = None
    email: Annotated[SafeText, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    role: MemberRole = MemberRole.MEMBER

    @model_validator(mode="after")
    def _exactly_one_identifier(self) -> Self:
        if (self.username is None) == (self.email is None):
            raise ValueError(
                "give exactly one of username or email / ange antingen username eller email"
            )
        return self


class MemberOut(BaseModel):
    username: str
    email: str | None
    name: str
    role: MemberRole
