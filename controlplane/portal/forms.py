"""Forms of the portal: posted fields to the API's pydantic models, errors back to fields.

The form posts flat field names; they are assembled into the same ``SandboxRequestIn`` /
``ApproveIn`` the JSON API validates, so the portal enforces exactly the API's rules. Each
validation error is mapped to the form field it concerns and to a message from the catalogue
(by pydantic's error type), so it can be shown next to that field in the person's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from controlplane.portal.i18n import N_, Language

# JSON path (as pydantic reports it) → form field name.
REQUEST_FIELDS: dict[tuple[str, ...], str] = {
    ("name",): "name",
    ("agency", "name"): "agency_name",
    ("agency", "organisation_number"): "organisation_number",
    ("agency", "kind"): "agency_kind",
    ("agency",): "agency_name",
    ("purpose",): "purpose",
    ("legal_basis",): "legal_basis",
    ("data_classification",): "data_classification",
    ("ai_act_risk",): "ai_act_risk",
    ("quota", "gpus"): "gpus",
    ("quota", "gpu_model"): "gpu_model",
    ("quota", "cpu"): "cpu",
    ("quota", "memory_gib"): "memory_gib",
    ("quota", "storage_gib"): "storage_gib",
    ("quota",): "gpu_model",  # the model-level rule: a GPU model is needed with GPUs
    ("end_date",): "end_date",
}
QUOTA_FIELDS = ("gpus", "gpu_model", "cpu", "memory_gib", "storage_gib")
APPROVE_FIELDS: dict[tuple[str, ...], str] = {
    **{("quota", name): name for name in QUOTA_FIELDS},
    ("quota",): "gpu_model",
    ("comment",): "comment",
}

# Messages by pydantic error type; {placeholders} come from the error's context.
_BY_TYPE = {
    "missing": N_("Fill in this field."),
    "string_too_short": N_("Fill in this field."),
    "too_short": N_("Fill in this field."),
    "too_long": N_("Use at most {max_length} characters."),
    "string_too_long": N_("Use at most {max_length} characters."),
    "int_parsing": N_("Enter a whole number."),
    "int_type": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "greater_than_equal": N_("Enter a number of at least {ge}."),
    "less_than_equal": N_("Enter a number of at most {le}."),
    "date_parsing": N_("Enter a date as YYYY-MM-DD."),
    "date_from_datetime_parsing": N_("Enter a date as YYYY-MM-DD."),
    "date_type": N_("Enter a date as YYYY-MM-DD."),
    "enum": N_("Choose one of the options."),
    "literal_error": N_("Choose one of the options."),
    "string_pattern_mismatch": N_("This contains characters that are not allowed."),
}
_BY_FIELD = {
    "organisation_number": N_(
        "Enter a valid Swedish organisation number, NNNNNN-NNNN (the check digit must match)."
    ),
    "gpu_model": N_("Choose a GPU model when you ask for GPUs."),
}
FALLBACK = N_("Check this value.")


@dataclass
class FormErrors:
    """Messages (already translated) per form field, in the order the fields appear."""

    fields: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(name, message)


def translate_validation(
    exc: ValidationError, paths: Mapping[tuple[str, ...], str], language: Language
) -> FormErrors:
    errors = FormErrors()
    for error in exc.errors():
        loc = tuple(str(part) for part in error.get("loc", ()))
        name = paths.get(loc) or paths.get(loc[:1]) or ""
        kind = str(error.get("type", ""))
        if name == "organisation_number" or (kind == "value_error" and name in _BY_FIELD):
            template = _BY_FIELD[name]
        else:
            template = _BY_TYPE.get(kind, FALLBACK)
        context = {k: v for k, v in (error.get("ctx") or {}).items() if isinstance(k, str)}
        try:
            message = language.gettext(template).format(**context)
        except (KeyError, IndexError):
            message = language.gettext(template)
        if name:
            errors.add(name, message)
        else:
            errors.general.append(message)
    return errors


def _number(value: str) -> int | str:
    value = value.strip()
    try:
        return int(value)
    except ValueError:
        return value  # left for pydantic to report as "enter a whole number"


def quota_payload(form: Mapping[str, Any]) -> dict[str, Any]:
    gpus = _number(str(form.get("gpus", "0")) or "0")
    model = str(form.get("gpu_model", "")).strip() or None
    return {
        "gpus": gpus,
        "gpu_model": model if gpus != 0 else None,
        "cpu": _number(str(form.get("cpu", ""))),
        "memory_gib": _number(str(form.get("memory_gib", ""))),
        "storage_gib": _number(str(form.get("storage_gib", ""))),
    }


def request_payload(form: Mapping[str, Any]) -> dict[str, Any]:
    def text(name: str) -> str:
        return str(form.get(name, "")).strip()

    return {
        "name": text("name"),
        "agency": {
            "name": text("agency_name"),
            "organisation_number": text("organisation_number"),
            "kind": text("agency_kind"),
        },
        "purpose": text("purpose"),
        "legal_basis": text("legal_basis"),
        "data_classification": text("data_classification"),
        "ai_act_risk": text("ai_act_risk"),
        "quota": quota_payload(form),
        "end_date": text("end_date"),
    }


def approve_payload(form: Mapping[str, Any]) -> dict[str, Any]:
    comment = str(form.get("comment", "")).strip()
    return {"quota": quota_payload(form), "comment": comment or None}
