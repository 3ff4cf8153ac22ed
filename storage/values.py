"""Parsing of the values that cross the system boundary: money, phones, dates, indexes.

Money is integer centimes everywhere inside Addad; binary floating point never touches it.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

__all__ = [
    "ARABIC_DIGITS",
    "ValueProblem",
    "fold",
    "format_amount_plain",
    "normalize_phone",
    "parse_amount",
    "parse_iso_date",
    "parse_nonneg_int",
]


def fold(text: str) -> str:
    """Case- and accent-insensitive key (`Fès`, `FES`, `fes` → `fes`)."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


class ValueProblem(ValueError):
    """A value that cannot be accepted; the message is a short English reason for operators."""


# Arabic-Indic (U+0660..) and Eastern Arabic-Indic (U+06F0..) digits to ASCII.
ARABIC_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
# Spaces people and spreadsheets put between thousands: ASCII, NBSP, narrow NBSP, thin space.
_GROUP_SPACES = re.compile(r"[ \u00a0\u202f\u2009]")
_AMOUNT = re.compile(r"^(-?)(\d+)(?:[.,\u066b](\d{1,2}))?$")


def parse_amount(text: str, *, allow_negative: bool = False) -> int:
    """Dirhams as written by people (`243.17`, `243,17`, `1 243,17`, `1243`) to centimes.

    More than two decimals is refused rather than rounded: a bill amount with three decimals
    is a data error, not something to guess.
    """
    raw = (text or "").strip().translate(ARABIC_DIGITS)
    for suffix in ("dh", "mad", "درهم"):
        if raw.lower().endswith(suffix):
            raw = raw[: -len(suffix)].strip()
    raw = _GROUP_SPACES.sub("", raw)
    if not raw:
        raise ValueProblem("empty amount")
    # `1.243,17` / `1,243.17`: a group mark followed by the other decimal mark.
    if re.fullmatch(r"-?\d{1,3}([.,])\d{3}(\1\d{3})*[.,]\d{1,2}", raw):
        decimal_mark = raw[-3] if raw[-3] in ".," else raw[-2]
        group_mark = "," if decimal_mark == "." else "."
        raw = raw.replace(group_mark, "")
    m = _AMOUNT.match(raw)
    if not m:
        if re.fullmatch(r"-?\d+[.,]\d{3,}", raw):
            raise ValueProblem("more than 2 decimals")
        raise ValueProblem(f"not an amount: {text.strip()!r}")
    sign, units, cents = m.groups()
    if sign and not allow_negative:
        raise ValueProblem("negative amount")
    value = int(units) * 100 + int((cents or "0").ljust(2, "0"))
    return -value if sign else value


def format_amount_plain(centimes: int) -> str:
    """Centimes as a CSV amount: `1243.17` (dot, no grouping), the inverse of parse_amount."""
    sign = "-" if centimes < 0 else ""
    whole, cents = divmod(abs(centimes), 100)
    return f"{sign}{whole}.{cents:02d}"


def normalize_phone(text: str) -> str:
    """Any usual spelling of a Moroccan number to E.164 (`+212612345678`).

    Accepts `0612345678`, `06 12 34 56 78`, `06-12-34-56-78`, `+212612345678`, `+212 (0)6…`,
    `00212 6 12 34 56 78`, `212612345678` and Arabic-Indic digits. Other countries' numbers in
    international form are kept as E.164 too (a customer abroad still holds a contract).
    """
    raw = (text or "").strip().translate(ARABIC_DIGITS)
    if not raw:
        raise ValueProblem("empty phone number")
    plus = raw.startswith("+")
    digits = re.sub(r"[\s\-./()\u00a0]", "", raw.lstrip("+"))
    if not digits.isdecimal():
        raise ValueProblem(f"not a phone number: {text.strip()!r}")
    if not plus and digits.startswith("00"):
        digits, plus = digits[2:], True
    if digits.startswith("2120"):  # +212 (0)6...
        digits = "212" + digits[4:]
    if plus or (digits.startswith("212") and len(digits) == 12):
        if digits.startswith("212"):
            if len(digits) != 12 or digits[3] not in "5678":
                raise ValueProblem(f"not a Moroccan number: {text.strip()!r}")
        elif not 8 <= len(digits) <= 15:
            raise ValueProblem(f"not a phone number: {text.strip()!r}")
        return "+" + digits
    if len(digits) == 10 and digits[0] == "0" and digits[1] in "5678":
        return "+212" + digits[1:]
    if len(digits) == 9 and digits[0] in "5678":
        return "+212" + digits
    raise ValueProblem(f"not a Moroccan phone number: {text.strip()!r}")


def parse_iso_date(text: str) -> date:
    raw = (text or "").strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise ValueProblem(f"not a YYYY-MM-DD date: {raw!r}")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueProblem(f"no such date: {raw!r}") from None


def parse_nonneg_int(text: str, what: str = "number") -> int:
    raw = _GROUP_SPACES.sub("", (text or "").strip().translate(ARABIC_DIGITS))
    if raw.startswith("-") and raw[1:].isdecimal():
        raise ValueProblem(f"negative {what}")
    if not raw.isdecimal():
        raise ValueProblem(f"not a whole {what}: {text.strip()!r}")
    return int(raw)
