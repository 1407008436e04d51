"""Translations of command-line messages (gettext catalogs compiled with Babel).

The language follows the usual environment variables (``LANGUAGE``, ``LC_ALL``,
``LC_MESSAGES``, ``LANG``); French ships with the package, any other language falls back to
the English source text.
"""

from __future__ import annotations

import gettext
from pathlib import Path

__all__ = ["DOMAIN", "LOCALE_DIR", "gettext_", "ngettext"]

DOMAIN = "case_workflow"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"

_translation = gettext.translation(DOMAIN, localedir=LOCALE_DIR, fallback=True)
gettext_ = _translation.gettext
ngettext = _translation.ngettext
