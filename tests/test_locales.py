"""Both catalogs complete, placeholders matching, Arabic plurals with six forms, and every
message key the code uses present in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from conversations.i18n import LANGS, catalog, placeholders, translator

ROOT = Path(__file__).resolve().parents[1]


def _po(lang):
    with open(ROOT / "locales" / lang / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh, locale=lang)


def test_same_keys_in_both_languages():
    ar, fr = catalog("ar").messages, catalog("fr").messages
    assert set(ar) == set(fr), f"only in ar: {set(ar) - set(fr)}; only in fr: {set(fr) - set(ar)}"
    assert len(ar) > 50


@pytest.mark.parametrize("lang", LANGS)
def test_each_key_once_and_no_merge_leftovers(lang):
    # Babel keeps the last of two entries with one key and skips lines it cannot read, so a
    # merge that doubled an entry or left a conflict marker would pass silently.
    text = (ROOT / "locales" / lang / "LC_MESSAGES" / "messages.po").read_text(encoding="utf-8")
    assert not re.findall(r"^(?:<<<<<<<|=======|>>>>>>>).*$", text, re.M)
    keys = re.findall(r'^msgid "(.+)"$', text, re.M)
    assert sorted(k for k in set(keys) if keys.count(k) > 1) == []


@pytest.mark.parametrize("lang", LANGS)
def test_no_empty_or_fuzzy_translation(lang):
    for m in _po(lang):
        if not m.id:
            continue
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        assert all(s.strip() for s in strings), f"{lang}: {m.id} has an empty translation"
        assert not m.fuzzy, f"{lang}: {m.id} is fuzzy"


def test_placeholders_match_between_languages():
    ar, fr = catalog("ar").messages, catalog("fr").messages
    for key, fr_text in fr.items():
        ar_text = ar[key]
        if isinstance(fr_text, tuple):
            # Plural forms: every form names the same fields, except {count} which Arabic may
            # spell out in words for one and two ("محاولة واحدة", "محاولتان").
            expected = set().union(*(placeholders(f) for f in fr_text)) - {"count"}
            for form in ar_text + fr_text:
                assert placeholders(form) - {"count"} == expected, f"{key}: {form!r}"
            assert "count" in placeholders(fr_text[1]) and "count" in placeholders(ar_text[3])
        else:
            assert placeholders(ar_text) == placeholders(fr_text), key


def test_arabic_has_six_plural_forms_with_the_standard_rule():
    ar = catalog("ar")
    assert ar.nplurals == 6
    assert [ar.plural(n) for n in (0, 1, 2, 3, 10, 11, 99, 100, 101, 102, 103, 111)] == [
        0,
        1,
        2,
        3,
        3,
        4,
        4,
        5,
        5,
        5,
        3,
        4,
    ]
    for key, forms in ar.messages.items():
        if isinstance(forms, tuple):
            assert len(forms) == 6, key
    fr = catalog("fr")
    assert fr.nplurals == 2 and [fr.plural(n) for n in (0, 1, 2)] == [0, 0, 1]


def test_arabic_plural_renders_the_right_form():
    t = translator("ar")
    assert t.n("link.tries_left", 1) == "بقيت لك محاولة واحدة."
    assert t.n("link.tries_left", 2) == "بقيت لك محاولتان."
    assert t.n("link.tries_left", 4) == "بقيت لك 4 محاولات."
    assert t.n("link.tries_left", 11) == "بقيت لك 11 محاولة."
    assert translator("fr").n("link.tries_left", 1) == "Il vous reste 1 essai."
    assert translator("fr").n("link.tries_left", 4) == "Il vous reste 4 essais."


_KEY_USE = re.compile(r"""(?:\bt|\.t|say|button|\bn)\(\s*(?:f?)["']([a-z_]+\.[a-z_.]+)["']""")


def test_every_key_used_in_code_exists():
    used = set()
    for path in list((ROOT / "conversations").rglob("*.py")) + list((ROOT / "bot").rglob("*.py")):
        used |= set(_KEY_USE.findall(path.read_text(encoding="utf-8")))
    assert used, "the key scanner found nothing: its pattern is wrong"
    missing = sorted(k for k in used if k not in catalog("fr").messages)
    assert not missing, f"keys used in code but missing from the catalogs: {missing}"


def test_money_and_dates_per_locale():
    from datetime import date

    fr, ar = translator("fr"), translator("ar")
    assert fr.money(123450) == "1\u202f234,50\u00a0DH"
    assert ar.money(123450) == "\u20661.234,50\u2069 درهم"
    assert fr.date(date(2026, 8, 3)) == "3 août 2026"
    assert ar.date(date(2026, 8, 3)) == "3 غشت 2026"  # Moroccan month names
    assert ar.ltr("DF-2026-000123") == "\u2066DF-2026-000123\u2069"
    assert fr.ltr("DF-2026-000123") == "DF-2026-000123"


@pytest.mark.parametrize("lang", LANGS)
def test_amounts_and_numbers_read_as_babel_writes_them(lang):
    """Amounts and counts are formatted without Babel's Decimal arithmetic (it is slow);
    they must still be exactly what Babel writes for the locale, grouping included."""
    from decimal import Decimal

    from babel.numbers import format_decimal

    from conversations.i18n import _BABEL_LOCALE

    t, locale = translator(lang), _BABEL_LOCALE[lang]
    for value in [0, 1, 5, 99, 100, 999, 1000, 1001, 12345, 99999, 100000, 123456789, 10**12 + 7]:
        babel_money = format_decimal(Decimal(value) / 100, "#,##0.00", locale=locale)
        assert t.money(value) == (f"\u2066{babel_money}\u2069 درهم" if lang == "ar" else f"{babel_money}\u00a0DH")
        babel_number = format_decimal(value, "#,##0", locale=locale)
        assert t.number(value) == (t.ltr(babel_number) if lang == "ar" and len(babel_number) > 3 else babel_number)
    assert t.money(-250).count("2,50") == 1  # a credit still reads as Babel writes it
