"""Every text of prices, cost reports and budgets a person reads, in English and Swedish.

The control plane's catalogue (``controlplane.messages.CATALOGUE``) includes these keys, so
budget errors carry ``message("costs.…", …)`` rendered in the caller's ``Accept-Language``, and
a budget alert's webhook body carries both renderings. Pure data (no imports of ours), so the
catalogue can import it.
"""

from __future__ import annotations

from typing import Final, Literal

Language = Literal["en", "sv"]

MESSAGES: Final[dict[str, dict[Language, str]]] = {
    "costs.budget_alert": {
        "en": "Tenant {tenant} has used {threshold} % of its budget for {month} ({spent} of "
        "{budget} SEK).",
        "sv": "Miljön {tenant} har förbrukat {threshold} % av sin budget för {month} ({spent} "
        "av {budget} kr).",
    },
    "costs.budget_exceeded": {
        "en": "tenant {tenant!r} has used {spent} of its {budget} SEK budget for {month}; new "
        "notebooks cannot be started until a tenant admin raises the budget or the month ends",
        "sv": "miljön {tenant!r} har förbrukat sin budget för {month} ({spent} av {budget} kr); "
        "nya notebooks kan inte startas förrän en administratör höjer budgeten eller månaden "
        "är slut",
    },
    "costs.no_budget": {
        "en": "tenant {tenant!r} has no budget; a tenant admin can set one",
        "sv": "miljön {tenant!r} har ingen budget; en administratör för miljön kan sätta en",
    },
}
