"""The labels stamped on every object Sandlåda manages, so it can find and watch its own."""

from __future__ import annotations

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "sandlada"
TENANT_LABEL = "sandlada.se/tenant"


def standard_labels(slug: str) -> dict[str, str]:
    """The labels every object of tenant ``slug`` carries."""
    return {MANAGED_BY_LABEL: MANAGED_BY, TENANT_LABEL: slug}
