"""Languages of the portal: negotiation, message catalogues and locale-aware formatting.

The catalogues are the ``.po`` files in ``translations/<lang>/LC_MESSAGES/messages.po``; they
are compiled in memory when the portal starts (Babel's ``write_mo``), so a fresh clone needs no
build step and no compiled ``.mo`` file is committed. Message ids are the English text.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import Translations

LANGUAGES = ("sv", "en")
DEFAULT_LANGUAGE = "sv"
LANGUAGE_NAMES = {"sv": "Svenska", "en": "English"}
TRANSLATIONS_DIR = Path(__file__).with_name("translations")
# People read times in Swedish time, whatever the server's clock zone.
DISPLAY_TIMEZONE = ZoneInfo("Europe/Stockholm")


@cache
def translations(language: str) -> Translations:
    """The compiled catalogue of ``language`` (read once per process)."""
    po_path = TRANSLATIONS_DIR / language / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain="messages")


def negotiate(accept_language: str | None) -> str:
    """The best of our languages for an ``Accept-Language`` header (Swedish if none fits)."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    wanted: list[tuple[float, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        # Earlier entries win ties, as browsers list them in preference order.
        wanted.append((quality - position * 1e-6, tag.strip().lower()))
    for quality, tag in sorted(wanted, reverse=True):
        primary = tag.split("-", 1)[0]
        if quality > 0 and primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Language:
    """One request's language: gettext functions and formatters bound to its locale."""

    code: str

    @property
    def locale(self) -> Locale:
        return Locale.parse(self.code)

    def gettext(self, message: str) -> str:
        return translations(self.code).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return translations(self.code).ngettext(singular, plural, n)

    def date(self, value: date | None, format: str = "medium") -> str:
        return "" if value is None else format_date(value, format=format, locale=self.code)

    def datetime(self, value: datetime | None, format: str = "medium") -> str:
        if value is None:
            return ""
        return format_datetime(value, format=format, tzinfo=DISPLAY_TIMEZONE, locale=self.code)

    def number(self, value: float | int | Decimal, digits: int = 0) -> str:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.code)

    def sek(self, value: float | Decimal) -> str:
        return format_currency(value, "SEK", locale=self.code)

    def template_globals(self) -> dict[str, Any]:
        return {
            "lang": self.code,
            "gettext": self.gettext,
            "ngettext": self.ngettext,
            "fmt_date": self.date,
            "fmt_datetime": self.datetime,
            "fmt_number": self.number,
            "fmt_sek": self.sek,
        }


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    """Mark ``message`` for the catalogue; it is translated when rendered."""
    return message
