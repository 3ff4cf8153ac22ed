"""Previous operators' references (issue 24): how a reference printed on an old Lydec, Redal,
Amendis, ONEE or régie bill is recognised, whatever a customer or a spreadsheet did to it."""

from __future__ import annotations

import re

from .values import ARABIC_DIGITS

# What bills and customers put between a reference's digit groups: spaces (ASCII, no-break,
# narrow, thin), dashes, dots and slashes. "0193 017 183", "0193-017-183", "٠١٩٣ ٠١٧ ١٨٣".
_SEPARATORS = re.compile(r"[\s\u00a0\u202f\u2009\-\u2010\u2011\u2012\u2013./]")


def reference_key(text: str) -> str | None:
    """The reference's digits (Arabic-Indic read as 0-9), or None if anything else is in it."""
    digits = _SEPARATORS.sub("", text.translate(ARABIC_DIGITS))
    return digits if digits.isascii() and digits.isdigit() else None
