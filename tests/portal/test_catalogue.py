"""The portal's catalogues hold every message the code uses, Swedish translated (no browser)."""

from __future__ import annotations

from typing import Any

from babel.messages.pofile import read_po

from controlplane.portal.catalogue import extract, po_path
from controlplane.portal.i18n import Language, negotiate


def _ids(language: str) -> dict[Any, Any]:
    with po_path(language).open("rb") as po_file:
        return {m.id: m.string for m in read_po(po_file, locale=language) if m.id}


def test_every_message_is_in_both_catalogues_and_translated_to_swedish() -> None:
    used = {m.id for m in extract() if m.id}
    assert len(used) > 100
    swedish = _ids("sv")
    english = _ids("en")
    assert used - set(swedish) == set(), "run python -m controlplane.portal.catalogue"
    assert used - set(english) == set(), "run python -m controlplane.portal.catalogue"
    untranslated = [
        i for i in used if not (all(swedish[i]) if isinstance(swedish[i], tuple) else swedish[i])
    ]
    assert untranslated == []


def test_accept_language_picks_swedish_or_english() -> None:
    assert negotiate(None) == "sv"
    assert negotiate("en-GB,en;q=0.9,sv;q=0.8") == "en"
    assert negotiate("de-DE,sv;q=0.5,en;q=0.4") == "sv"
    assert negotiate("fr-FR") == "sv"
    assert negotiate("sv;q=0.2, en;q=0.7") == "en"


def test_numbers_dates_and_sek_follow_the_language() -> None:
    sv, en = Language("sv"), Language("en")
    assert sv.gettext("Sign out") == "Logga ut"
    assert en.gettext("Sign out") == "Sign out"
    assert sv.ngettext("%(num)s GPU", "%(num)s GPUs", 2) == "%(num)s GPU:er"
    assert sv.sek(1234.5).replace("\xa0", " ") == "1 234,50 kr"
    assert en.sek(1234.5).replace("\xa0", " ") in {"SEK1,234.50", "SEK 1,234.50"}
    assert sv.number(12345).replace("\xa0", " ") == "12 345"
    assert en.number(12345) == "12,345"
