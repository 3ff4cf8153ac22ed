"""The bare-number fast path of understand() ("45400" typed at the index step) reads exactly
what the full path (normalisation, every phrase rule, the trained model's gate) reads."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from conversations import understanding as u

TODAY = date(2026, 12, 5)
HINTS = (None, "fr", "ar", "fr-FR", "en")

# Shapes the full path treats apart: years (a date, not an index), phone numbers, more digits
# than a meter has, leading zeros, one or two digits (a menu choice more likely).
EDGES = [
    *map(str, range(0, 130)),
    *map(str, range(1985, 2045)),
    "0000",
    "00045400",
    "45400",
    "045400",
    "999999999",
    "1000000000",
    "0612345678",
    "612345678",
    "212612345678",
    "05122026",
    "0512",
    "1205",
    "311226",
    "20261205",
    "123456789012345",
    # Groups of three (a spaced or dotted index), dates and phone numbers among them.
    "45 400",
    "45.400",
    "1 045 400",
    "045 400",
    "0 000",
    "12.345",
    "05.122",
    "31.122",
    "01.202",
    "2.025",
    "2 026",
    "06 123",
    "212 612 345",
    "061.234.567",
    "612 345 678",
    "999 999 999",
    "1.000.000.000",
    "1 000 000 000 000",
]


def both(text: str, hint: str | None, today: date = TODAY, model: bool = True) -> tuple[u.Understood, u.Understood]:
    return (
        u._understand(text, hint, today=today, model=model, fast=True),
        u._understand(text, hint, today=today, model=model, fast=False),
    )


def test_edges_read_the_same_both_ways() -> None:
    for text in EDGES:
        for hint in HINTS:
            for model in (True, False):
                fast, full = both(text, hint, model=model)
                assert fast == full, (text, hint, model)


@settings(max_examples=400, deadline=None)
@given(
    text=st.from_regex(r"\A[0-9]{1,12}\Z"),
    hint=st.sampled_from(HINTS),
    today=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
)
def test_any_digits_read_the_same_both_ways(text: str, hint: str | None, today: date) -> None:
    fast, full = both(text, hint, today)
    assert fast == full


def test_the_index_step_takes_the_fast_path() -> None:
    # (what the bench and a customer type): answered by the fast path, as the full path would
    assert u._bare_digits("45400", "fr", TODAY) == u.Understood("reading", "fr", {"index": 45400}, 0.9, "rules")
    assert u.understand("45400", "ar", today=TODAY) == u.Understood("reading", "ar", {"index": 45400}, 0.9, "rules")
    assert u._bare_digits("2025", "fr", TODAY) is None  # a year: the full path decides


def test_other_digit_texts_keep_the_full_path() -> None:
    # Arabic-Indic digits, signs, other spacings: not the fast path's shape, read as before.
    assert u.understand("45  400", "fr", today=TODAY).entities.get("index") == 45400
    assert u._understand("45  400", "fr", today=TODAY) == u._understand("45  400", "fr", today=TODAY, fast=False)
    assert u.understand("٤٥٤٠٠", None, today=TODAY) == u.Understood("reading", "ar", {"index": 45400}, 0.9, "rules")
    assert u.understand("/start", "fr", today=TODAY).intent != "reading"


@settings(max_examples=400, deadline=None)
@given(
    text=st.from_regex(r"\A[0-9]{1,3}([ .][0-9]{3}){1,4}\Z"),
    hint=st.sampled_from(HINTS),
    today=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
)
def test_grouped_digits_read_the_same_both_ways(text: str, hint: str | None, today: date) -> None:
    fast, full = both(text, hint, today)
    assert fast == full


def test_a_spaced_index_takes_the_fast_path() -> None:
    for text in ("45 400", "45.400"):
        assert u._bare_digits(text, "fr", TODAY) == u.Understood("reading", "fr", {"index": 45400}, 0.9, "rules")
        assert u.understand(text, "fr", today=TODAY) == u.Understood("reading", "fr", {"index": 45400}, 0.9, "rules")


def test_a_text_without_a_letter_names_no_position() -> None:
    # parse_ordinal answers None at once for ASCII without a letter (the index typed at the menu):
    # every ordinal it knows has a letter, so the full reading could find none either.
    assert all(any(c.isalpha() for c in key) for key in u._ORDINALS)
    for text in ("45400", "45 400", "2", "#2", "1.", "-1", "", "  ", "12/05"):
        assert u.parse_ordinal(text) is None
    assert u.parse_ordinal("le 2e") == 2 and u.parse_ordinal("2 eme") == 2 and u.parse_ordinal("dernier") == -1
