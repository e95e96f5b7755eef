"""Safe Kubernetes names for tenants.

A tenant's slug is a DNS-1123 label of at most 40 characters derived from a human name; the
tenant's namespace is ``t-<slug>``. When a slug is already taken, a short hash suffix that
depends on a caller-given seed makes it unique while keeping it readable.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

SLUG_MAX_LENGTH = 40
NAMESPACE_PREFIX = "t-"
_SUFFIX_LENGTH = 6
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_valid_slug(slug: str) -> bool:
    """Whether ``slug`` is a DNS-1123 label of at most SLUG_MAX_LENGTH characters."""
    return len(slug) <= SLUG_MAX_LENGTH and bool(_DNS1123_LABEL.match(slug))


def slugify(text: str, max_length: int = SLUG_MAX_LENGTH) -> str:
    """Turn a human name ("Kiruna kommun – AI-pilot") into a DNS-1123 label.

    "Kiruna kommun – AI-pilot" becomes "kiruna-kommun-ai-pilot".

    Swedish letters lose their diacritics (å, ä → a; ö → o). Returns ``"tenant"`` when nothing
    usable is left, so the result is always a valid label.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    dashed = re.sub(r"[^a-z0-9]+", "-", ascii_only).strip("-")
    slug = dashed[:max_length].rstrip("-")
    return slug or "tenant"


def with_hash_suffix(slug: str, seed: str, max_length: int = SLUG_MAX_LENGTH) -> str:
    """``slug`` shortened as needed and suffixed with a hash of ``seed``: unique but readable."""
    digest = hashlib.sha256(seed.encode()).hexdigest()[:_SUFFIX_LENGTH]
    head = slug[: max_length - _SUFFIX_LENGTH - 1].rstrip("-") or "t"
    return f"{head}-{digest}"


def namespace_for(slug: str) -> str:
    """The namespace that holds tenant ``slug``'s objects."""
    return f"{NAMESPACE_PREFIX}{slug}"


TENANT_ROLES = ("admin", "member")


def tenant_group(slug: str, role: str) -> str:
    """The identity group (Keycloak group name, token ``groups`` entry, RBAC Group subject).

    One name everywhere, so a single Keycloak membership grants access in the API, in
    Kubernetes RBAC and in MLflow: ``t-<slug>-admins`` or ``t-<slug>-members``.
    """
    if role not in TENANT_ROLES:
        raise ValueError(f"role must be one of {TENANT_ROLES}, not {role!r}")
    return f"{NAMESPACE_PREFIX}{slug}-{role}s"
