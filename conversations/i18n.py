"""Arabic and French messages from gettext catalogs, and locale-aware formatting.

Catalogs are `locales/<lang>/LC_MESSAGES/messages.po`, read with Babel at start (no compile
step to forget). Message ids are stable keys (`link.ask_contract`), so a missing translation
is visible as a key, never silently falls back to another language.

Right-to-left: Telegram and WhatsApp pick a paragraph's direction from its first strong
character, and inside Arabic text a run like `DF-2026-000123` or `080 200 77 77` is reordered
by the bidi algorithm (the neutral `-` and spaces between digit runs take the Arabic
direction). Such tokens are wrapped in LEFT-TO-RIGHT ISOLATE … POP DIRECTIONAL ISOLATE in
Arabic messages only.
"""

from __future__ import annotations

import datetime as dt
import gettext
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.messages.pofile import read_po
from babel.numbers import get_decimal_symbol, get_group_symbol, parse_pattern

LANGS = ("ar", "fr")
LRI, PDI = "\u2066", "\u2069"
_BABEL_LOCALE = {"ar": Locale.parse("ar_MA"), "fr": Locale.parse("fr_MA")}
# Parsed once: Babel otherwise parses the locale and the pattern on every call.
_MONEY_PATTERN = parse_pattern("#,##0.00")
_INT_PATTERN = parse_pattern("#,##0")
# Amounts are integers: grouping digits by three with the locale's own symbols gives Babel's
# result for a fraction of its cost (Decimal arithmetic, ~60 µs a call; a balance shows 5 to 10
# amounts). Negative numbers still go through Babel. tests/test_locales.py checks the two agree.
_SYMBOLS = {lang: (get_decimal_symbol(loc), get_group_symbol(loc)) for lang, loc in _BABEL_LOCALE.items()}


def _grouped(n: int, group: str) -> str:
    return f"{n:,}".replace(",", group)


@lru_cache(maxsize=4096)
def _date(lang: str, d: date, fmt: str) -> str:
    text = format_date(d, fmt, locale=_BABEL_LOCALE[lang])
    if lang == "fr" and d.day == 1 and fmt.startswith("d "):
        text = "1er" + text[1:]  # French writes the first of the month as an ordinal
    return text


@dataclass(frozen=True)
class Catalog:
    lang: str
    messages: dict[str, str | tuple[str, ...]]
    plural: Callable[[int], int]
    nplurals: int


def _catalog_path(lang: str):
    return resources.files("locales").joinpath(lang, "LC_MESSAGES", "messages.po")


@cache
def catalog(lang: str) -> Catalog:
    with _catalog_path(lang).open("rb") as fh:
        po = read_po(fh, locale=lang)
    messages: dict[str, str | tuple[str, ...]] = {}
    for m in po:
        if not m.id or m.string is None:
            continue  # (absent: the key itself is shown, as for an unknown key)
        key = m.id[0] if isinstance(m.id, (tuple, list)) else m.id
        messages[key] = tuple(m.string) if isinstance(m.string, (tuple, list)) else m.string
    return Catalog(lang, messages, gettext.c2py(po.plural_expr), po.num_plurals)


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


class Translator:
    """Messages and formats in one language."""

    def __init__(self, lang: str) -> None:
        if lang not in LANGS:
            lang = "fr"
        self.lang = lang
        self._cat = catalog(lang)

    def __call__(self, key: str, /, **params: Any) -> str:
        text = self._cat.messages.get(key)
        if text is None or isinstance(text, tuple):
            return key  # visible, and caught by the catalog test
        return text.format(**params) if params else text

    def n(self, key: str, count: int, /, **params: Any) -> str:
        forms = self._cat.messages.get(key)
        if not isinstance(forms, tuple):
            return key
        text = forms[min(self._cat.plural(count), len(forms) - 1)]
        return text.format(count=self.number(count), **params)

    # ---- formatting
    def ltr(self, token: object) -> str:
        """Keep a left-to-right token (reference, phone, date, index) in order inside Arabic text."""
        text = str(token)
        return f"{LRI}{text}{PDI}" if self.lang == "ar" else text

    def money(self, centimes: int) -> str:
        """`1 234,50 DH` / `1.234,50 درهم`."""
        if centimes >= 0:
            decimal, group = _SYMBOLS[self.lang]
            value = f"{_grouped(centimes // 100, group)}{decimal}{centimes % 100:02d}"
        else:
            value = _MONEY_PATTERN.apply(Decimal(centimes) / 100, _BABEL_LOCALE[self.lang])
        return f"{LRI}{value}{PDI} درهم" if self.lang == "ar" else f"{value}\u00a0DH"

    def number(self, n: int) -> str:
        value = _grouped(n, _SYMBOLS[self.lang][1]) if n >= 0 else _INT_PATTERN.apply(n, _BABEL_LOCALE[self.lang])
        return self.ltr(value) if self.lang == "ar" and len(value) > 3 else value

    def day(self, n: int) -> str:
        """A day of the month on its own ("du 1er au 10"): French writes the first as an ordinal."""
        return "1er" if n == 1 and self.lang == "fr" else self.number(n)

    def date(self, d: dt.date, *, with_year: bool = True) -> str:  # (`date` is this method here)
        return _date(self.lang, d, "d MMMM y" if with_year else "d MMMM")

    def month(self, d: dt.date) -> str:
        return _date(self.lang, d, "MMMM y")

    def of_month(self, d: dt.date) -> str:
        """`d'octobre 2026` / `de septembre 2026` (French elides before a vowel); Arabic: the month."""
        month = self.month(d)
        if self.lang != "fr":
            return month
        return f"d'{month}" if month[:1] in "aeiouyéèâ" else f"de {month}"

    def month_short(self, d: dt.date) -> str:
        """`sept. 2026`: for button labels (WhatsApp list rows hold 24 characters)."""
        return _date(self.lang, d, "MMM y")


@cache
def translator(lang: str) -> Translator:
    return Translator(lang)
