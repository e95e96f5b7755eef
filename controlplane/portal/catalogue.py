"""Keep the portal's message catalogues in step with the code.

Run ``python -m controlplane.portal.catalogue`` after changing a text.

Extracts every message id from the templates (``_()``, ``gettext``, ``ngettext``, ``{% trans %}``)
and the Python modules (``N_``, ``gettext``) with Babel, and merges them into
``translations/<lang>/LC_MESSAGES/messages.po``: new ids are added (empty in Swedish, to be
translated), ids no longer used are dropped. A unit test fails when an id has no Swedish text.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from controlplane.portal.i18n import LANGUAGES, TRANSLATIONS_DIR

PORTAL_DIR = Path(__file__).parent
METHOD_MAP = [("templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {
    "templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true"},
}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def extract() -> Catalog:
    """A template catalogue of every message id the portal uses."""
    template = Catalog(project="sandlada-portal", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(PORTAL_DIR), METHOD_MAP, OPTIONS, KEYWORDS, strip_comment_tags=True
    ):
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def po_path(language: str) -> Path:
    return TRANSLATIONS_DIR / language / "LC_MESSAGES" / "messages.po"


def update() -> None:
    template = extract()
    for language in LANGUAGES:
        path = po_path(language)
        with path.open("rb") as po_file:
            catalog = read_po(po_file, locale=language)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as po_file:
            write_po(po_file, catalog, width=100, omit_header=False, include_previous=False)


if __name__ == "__main__":
    update()
