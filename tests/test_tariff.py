"""Band maths worked by hand. An inline tariff keeps the tests independent of the example prices
in profiles/onee.toml; the ONEE profile is checked where its sourced figures are used."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from conversations.profile import Fee, Levy, Tariff, load_profile
from conversations.tariff import estimate_correction, prebill, price_month, split_by_month

ELEC = Tariff.model_validate(
    {
        "code": "E",
        "service": "electricity",
        "name": {"ar": "ك", "fr": "E"},
        "unit": "kWh",
        "rule": "progressive_then_selective",
        "selective_above": 150,
        "vat_percent": "20",
        "progressive_bands": [{"upto": 100, "price": "0.9010"}, {"upto": 150, "price": "1.0732"}],
        "selective_bands": [
            {"upto": 210, "price": "1.0732"},
            {"upto": 310, "price": "1.1676"},
            {"upto": 510, "price": "1.3817"},
            {"price": "1.5958"},
        ],
        "fees": [{"key": "rent", "name": {"ar": "ك", "fr": "L"}, "monthly": "7.20", "vat_percent": "20"}],
    }
)
WATER = Tariff.model_validate(
    {
        "code": "W",
        "service": "water",
        "name": {"ar": "م", "fr": "W"},
        "unit": "m3",
        "rule": "progressive",
        "vat_percent": "0",
        "progressive_bands": [
            {"upto": 6, "price": "2.99"},
            {"upto": 8, "price": "3.15"},
            {"upto": 20, "price": "10.30"},
            {"price": "14.08"},
        ],
        "fees": [{"key": "fixed", "name": {"ar": "ث", "fr": "F"}, "monthly": "6.00", "vat_percent": "0"}],
    }
)


def test_progressive_under_150():
    # 130 kWh = 100 × 0.9010 + 30 × 1.0732 = 90.10 + 32.196 (→ 32.20) = 122.30 DH HT
    m = price_month(ELEC, 130)
    assert m.rule_applied == "progressive"
    assert [(l.units, l.amount) for l in m.lines] == [(100, 9010), (30, 3220)]
    assert m.energy_ht == 12230


def test_the_150_kwh_cliff():
    # 150 kWh: 90.10 + 50 × 1.0732 = 90.10 + 53.66 = 143.76 DH
    assert price_month(ELEC, 150).energy_ht == 14376
    # 151 kWh: the WHOLE month at the first selective price: 151 × 1.0732 = 162.0532 → 162.05 DH
    m = price_month(ELEC, 151)
    assert m.rule_applied == "selective" and [(l.units, l.amount) for l in m.lines] == [(151, 16205)]
    # 250 kWh falls in 211–310: 250 × 1.1676 = 291.90 DH
    assert price_month(ELEC, 250).energy_ht == 29190
    # 600 kWh: the open band: 600 × 1.5958 = 957.48 DH
    assert price_month(ELEC, 600).energy_ht == 95748


def test_cliff_warning_says_what_crossing_costs():
    # 146 kWh in May: 4 kWh before the line. TTC at 150 = 143.76 + 28.752 (→ 28.75) = 172.51;
    # at 151 = 162.05 + 32.41 = 194.46; crossing adds 21.95 DH.
    bill = prebill(ELEC, date(2026, 4, 30), date(2026, 5, 31), 146)
    assert (bill.cliff.units, bill.cliff.remaining, bill.cliff.extra_cost_ttc) == (146, 4, 2195)
    assert prebill(ELEC, date(2026, 4, 30), date(2026, 5, 31), 120).cliff is None
    assert prebill(ELEC, date(2026, 4, 30), date(2026, 5, 31), 160).cliff is None
    # 145 kWh from 31 October to 1 December: November (140) is over, December (5) is far from the line.
    assert prebill(ELEC, date(2026, 10, 31), date(2026, 12, 1), 145).cliff is None
    assert prebill(ELEC, date(2026, 10, 31), date(2026, 11, 30), 150).cliff.remaining == 0


def test_water_social_band_and_no_vat():
    # 5 m³: all in the social band: 5 × 2.99 = 14.95 DH
    assert price_month(WATER, 5).energy_ht == 1495
    # 7 m³: 6 × 2.99 + 1 × 3.15 = 17.94 + 3.15 = 21.09 DH
    assert [(l.units, l.amount) for l in price_month(WATER, 7).lines] == [(6, 1794), (1, 315)]
    # 25 m³: 17.94 + 2 × 3.15 + 12 × 10.30 + 5 × 14.08 = 17.94 + 6.30 + 123.60 + 70.40 = 218.24 DH
    assert price_month(WATER, 25).energy_ht == 21824
    bill = prebill(WATER, date(2026, 4, 30), date(2026, 5, 31), 7)
    # one month: 21.09 + fixed fee 6.00, VAT exempt
    assert (bill.energy_ht, bill.fees_ht, bill.vat, bill.total_ttc) == (2109, 600, 0, 2709)


def test_one_month_electricity_bill_with_fees_and_vat():
    # May, 130 kWh: energy 122.30; rent 7.20; VAT 20 % on each: 24.46 + 1.44; total 155.40
    bill = prebill(ELEC, date(2026, 4, 30), date(2026, 5, 31), 130)
    assert (bill.energy_ht, bill.fees_ht, bill.vat, bill.total_ttc) == (12230, 720, 2590, 15540)


def test_a_long_period_is_priced_per_month_not_as_one_lump():
    # 300 kWh over 15 March → 15 May (61 days: 16 in March, 30 in April, 15 in May)
    # exact shares 78.69 / 147.54 / 73.77 → 78 / 147 / 73 + the 2 left to the largest fractions (May, March)
    split = split_by_month(date(2026, 3, 15), date(2026, 5, 15), 300)
    assert [(m.month, u) for m, u, _ in split] == [(3, 79), (4, 147), (5, 74)]
    bill = prebill(ELEC, date(2026, 3, 15), date(2026, 5, 15), 300)
    # March 79 × 0.9010 = 71.18; April 90.10 + 47 × 1.0732 (50.44) = 140.54; May 74 × 0.9010 = 66.67
    assert [m.energy_ht for m in bill.months] == [7118, 14054, 6667]
    assert bill.energy_ht == 27839
    # one lump of 300 kWh would be selective: 300 × 1.1676 = 350.28 DH
    assert price_month(ELEC, 300).energy_ht == 35028 > bill.energy_ht


def test_estimate_correction_is_spread_per_month():
    # Three months estimated at 100 kWh each, billed 3 × (90.10 + 7.20) × 1.2 = 3 × 116.76 = 350.28 DH.
    # The real index shows 450 kWh over the same three months: 150 per month, never one lump of 450.
    c = estimate_correction(
        ELEC,
        period_start=date(2026, 6, 30),
        period_end=date(2026, 9, 30),
        actual_units=450,
        estimated_units_by_month=[(date(2026, 7, 1), 100), (date(2026, 8, 1), 100), (date(2026, 9, 1), 100)],
        billed_ttc=35028,
    )
    # July 31 days, August 31, September 30 of 92: 151.63 / 151.63 / 146.74 → 151 + 151 + 146, the 2 left
    # to the largest fractions (September .74, then August .63 as the later of the tie) → 151 / 152 / 147
    assert [m.units for m in c.months] == [151, 152, 147]  # 151 and 152 are selective, 147 progressive
    assert c.estimated_units == 300 and c.billed_ttc == 35028
    assert c.difference == c.amount_actual_ttc - 35028 > 0
    lump = price_month(ELEC, 450).energy_ht
    assert sum(m.energy_ht for m in c.months) < lump


def test_onee_profile_uses_the_sourced_prices():
    p = load_profile()
    e = p.tariff("BT-RES")
    assert e.vat_percent == Decimal("20") and e.selective_above == 150
    assert [b.price for b in e.progressive_bands] == [Decimal("0.9010"), Decimal("1.0732")]
    assert price_month(e, 130).energy_ht == 12230
    w = p.tariff("EAU-RES")
    assert w.vat_percent == 0 and w.progressive_bands[0].upto == 6


@given(st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)), st.integers(0, 400), st.integers(0, 100_000))
def test_split_always_sums_exactly(start, days, units):
    from datetime import timedelta

    split = split_by_month(start, start + timedelta(days=days), units)
    assert sum(u for _, u, _ in split) == units
    assert all(u >= 0 for _, u, _ in split)
    assert abs(sum(s for _, _, s in split) - 1) < Decimal("1e-20")


@given(
    start=st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 1)),
    days=st.integers(min_value=1, max_value=120),
    units=st.integers(min_value=0, max_value=2000),
)
def test_memoised_prebill_is_the_computation(start, days, units):
    """prebill() is memoised (the confirm step's pre-bill and its correction price one period):
    a hit is the very bill the computation gives, asked once or again."""
    from datetime import timedelta

    from conversations.tariff import _prebill

    end = start + timedelta(days=days)
    for tariff in (ELEC, *load_profile().tariffs):
        computed = _prebill(tariff, start, end, units, 15)
        assert prebill(tariff, start, end, units) == computed
        assert prebill(tariff, start, end, units) == computed  # the memoised one


def test_memoised_prebill_follows_the_tariff_object():
    # Another grid (an operator's new prices: another object) is priced anew, not served the
    # bill of the grid it replaced.
    bill = prebill(ELEC, date(2026, 4, 30), date(2026, 5, 31), 146)
    dearer = ELEC.model_copy(
        update={"progressive_bands": [b.model_copy(update={"price": b.price * 2}) for b in ELEC.progressive_bands]}
    )
    from conversations.tariff import _prebill

    again = prebill(dearer, date(2026, 4, 30), date(2026, 5, 31), 146)
    assert again == _prebill(dearer, date(2026, 4, 30), date(2026, 5, 31), 146, 15)
    assert again.energy_ht > 1.9 * bill.energy_ht
    assert prebill(ELEC, date(2026, 4, 30), date(2026, 5, 31), 146) == bill


FIXED_TTC = ELEC.model_copy(update={"fixed_ttc_vat_percent": Decimal(14), "vat_by_year": {2024: Decimal(14)}})
LEVIED = WATER.model_copy(
    update={
        "levies": [
            Levy.model_validate({"key": "tax", "name": {"ar": "ض", "fr": "T"}, "monthly": "1.37", "per_unit": "0.0713"})
        ],
        "fees": [
            Fee.model_validate(
                {
                    "key": "rent",
                    "name": {"ar": "ك", "fr": "L"},
                    "monthly": "7.333",
                    "vat_percent": "20",
                    "vat_by_year": {2024: "11", 2025: "15.5"},
                }
            )
        ],
        "vat_percent": Decimal("7"),
    }
)

PROFILE_TARIFFS = (*load_profile().tariffs, *load_profile("srm-cs").tariffs)


@given(
    start=st.dates(min_value=date(2023, 1, 1), max_value=date(2027, 12, 1)),
    days=st.integers(min_value=0, max_value=800),
    units=st.integers(min_value=0, max_value=20_000),
    margin=st.integers(min_value=0, max_value=40),
)
def test_integer_prebill_is_the_decimal_computation(start, days, units, margin):
    """The pre-bill computed in integers from tables (conversations/tariff.py) is, field by field
    and to the Decimal's digits, the Decimal computation of its rules (tests/tariff_reference.py),
    for every tariff of both profiles, a fixed tax-inclusive grid and a tariff with levies, a fee
    with yearly rates and odd prices."""
    from datetime import timedelta

    from conversations.tariff import _prebill

    from .tariff_reference import reference_prebill

    end = start + timedelta(days=days)
    for tariff in (ELEC, WATER, FIXED_TTC, LEVIED, *PROFILE_TARIFFS):
        fast, slow = _prebill(tariff, start, end, units, margin), reference_prebill(tariff, start, end, units, margin)
        assert fast == slow
        assert repr(fast) == repr(slow)  # the same Decimals, exponents included (shown to customers)


def test_a_month_of_each_units_is_the_decimal_computation():
    from .tariff_reference import price_month as reference_month

    for tariff in (ELEC, WATER, FIXED_TTC, LEVIED, *PROFILE_TARIFFS):
        for units in range(0, 1200):
            assert repr(price_month(tariff, units, date(2026, 5, 1))) == repr(
                reference_month(tariff, units, date(2026, 5, 1))
            )


def test_equal_remainders_keep_the_decimal_order():
    # 73,948 kWh over 7 + 31 + 19 days: December and February leave the same remainder; the
    # Decimal split gave the extra unit to December (its 28 digits) and the integer one must too.
    from .tariff_reference import reference_prebill

    start, end = date(2026, 12, 24), date(2027, 2, 19)
    bill = prebill(ELEC, start, end, 73_948)
    assert [m.units for m in bill.months] == [9082, 40217, 24649]
    assert bill == reference_prebill(ELEC, start, end, 73_948, 15)


@given(
    start=st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 6, 1)),
    days=st.integers(min_value=1, max_value=95),
    units=st.integers(min_value=0, max_value=1500),
)
def test_kept_month_texts_are_the_texts(start, days, units):
    """A month's lines of a pre-bill text are kept per month, units and lines (pricing.py
    _MONTH_TEXT): a text built from kept lines is the one built anew, in French and Arabic."""
    import types
    from datetime import timedelta

    from conversations.i18n import translator
    from conversations.journeys import pricing

    for lang in ("fr", "ar"):
        t = types.SimpleNamespace(tr=translator(lang), lang=lang, today=start + timedelta(days=days))
        for tariff in PROFILE_TARIFFS[:2]:
            kept = pricing.describe_prebill(t, tariff, start, start + timedelta(days=days), units)
            again = pricing.describe_prebill(t, tariff, start, start + timedelta(days=days), units)
            pricing._MONTH_TEXT.clear()
            anew = pricing.describe_prebill(t, tariff, start, start + timedelta(days=days), units)
            assert kept == again == anew
