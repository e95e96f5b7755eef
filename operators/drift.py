"""Pure drift detection: is a live object still what the builders asked for?

Only what we set is compared. The apiserver adds defaults, status and metadata of its own, and
other actors may add labels; none of that is drift. A changed or missing field, or a list
(rules, subjects, policy peers) that gained or lost an entry, is.
"""

from __future__ import annotations

from typing import Any

# Metadata we set and must keep; the rest of metadata belongs to the apiserver.
_OWNED_METADATA = ("labels", "annotations")


def _contains(desired: Any, live: Any) -> bool:
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            key in live and _contains(value, live[key]) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(desired) == len(live)
            and all(_contains(d, item) for d, item in zip(desired, live, strict=True))
        )
    return bool(desired == live)


def drifted(desired: dict[str, Any], live: dict[str, Any]) -> bool:
    """Whether ``live`` no longer carries every field ``desired`` sets."""
    for key, value in desired.items():
        if key == "metadata":
            live_metadata = live.get("metadata") or {}
            for field in _OWNED_METADATA:
                if field in value and not _contains(value[field], live_metadata.get(field) or {}):
                    return True
        elif key not in live or not _contains(value, live[key]):
            return True
    return False
