"""Exact band pricing from the operator profile: what a consumption will cost before the bill.

Rules (docs/tariffs.md has a worked example with the profile's values):
- A period (previous reading date, new reading date] is spread over calendar months in
  proportion to its days in each month (largest remainder, so whole units add up exactly).
  Each calendar month is priced with the full monthly bands: bills are monthly, and pricing a
  35-day catch-up as one lump would wrongly cross the 150 kWh line.
- "progressive": every unit at the price of the band it falls in. "progressive_then_selective":
  progressive while the month is at or under `selective_above`; above it the whole month at the
  price of the selective band its total falls in.
- Every band line is rounded to the centime (half up), as a bill prints it; VAT is computed
  once on the energy total and once per fee, each at its own rate for the year of the period's
  last day (`vat_by_year`). Fees are monthly amounts × the months of the period (days in each
  month / days of that month, summed, to 2 decimals). Levies (taxes besides VAT) likewise, plus
  any amount per unit; they are in the total, not in the HT amount, and bear no VAT.
- A grid whose tax-inclusive prices stay fixed (`fixed_ttc_vat_percent` k): each band is billed
  at price × (100 + k) / (100 + today's rate), to 4 decimals, before VAT.

Computed in integers (every price and rate as an exact fraction, each rounding as the Decimal
one would): a tariff's bands under a VAT rate are a table built once (`_Grid`), and a month's
lines for a number of units are kept in it, as a printed tranche table would list them.
tests/tariff_reference.py keeps the Decimal computation the results must equal.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from .profile import Tariff


def centimes(dirhams: Decimal) -> int:
    return int((dirhams * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class BandLine:
    label_key: str  # "progressive" | "selective"
    lower: int  # exclusive
    upper: int | None  # inclusive; None = open
    units: int
    price: Decimal
    amount: int  # centimes, excluding VAT


@dataclass(frozen=True)
class MonthCharge:
    month: date  # first day of the month
    units: int
    rule_applied: str  # "progressive" | "selective"
    lines: tuple[BandLine, ...]
    energy_ht: int


@dataclass(frozen=True)
class FeeLine:
    key: str
    name_ar: str
    name_fr: str
    months: Decimal
    amount_ht: int
    vat_percent: Decimal
    vat: int


@dataclass(frozen=True)
class LevyLine:
    key: str
    name_ar: str
    name_fr: str
    amount: int  # centimes


@dataclass(frozen=True)
class Cliff:
    month: date
    units: int
    remaining: int  # units the month can still take and stay progressive (one more switches it)
    extra_cost_ttc: int  # what crossing the line adds, in centimes


@dataclass(frozen=True)
class PreBill:
    tariff_code: str
    period_start: date
    period_end: date
    total_units: int
    months: tuple[MonthCharge, ...]
    fees: tuple[FeeLine, ...]
    energy_ht: int
    fees_ht: int
    vat: int
    total_ttc: int
    vat_percent: Decimal  # the energy's rate
    cliff: Cliff | None
    energy_vat: int = 0
    levies: tuple[LevyLine, ...] = ()
    levies_total: int = 0


@dataclass(frozen=True)
class Correction:
    estimated_units: int
    actual_units: int
    amount_actual_ttc: int
    billed_ttc: int
    difference: int  # > 0 due, < 0 credit
    months: tuple[MonthCharge, ...]


@cache
def _days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _month_days(start: date, end: date) -> list[tuple[date, int]]:
    """Days of (start, end] in each calendar month; a same-day period counts one day."""
    first = start + timedelta(days=1) if end > start else end
    out: list[tuple[date, int]] = []
    day = first
    while day <= end:
        month_end = day.replace(day=_days_in_month(day.year, day.month))
        last = min(month_end, end)
        out.append((day.replace(day=1), (last - day).days + 1))
        day = last + timedelta(days=1)
    return out


def split_by_month(period_start: date, period_end: date, units: int) -> list[tuple[date, int, Decimal]]:
    """Units per calendar month in proportion to days; shares sum exactly to `units`."""
    _check(period_start, period_end, units)
    return _split(_month_days(period_start, period_end), units)


def _check(period_start: date, period_end: date, units: int) -> None:
    if period_end < period_start:
        raise ValueError("period ends before it starts")
    if units < 0:
        raise ValueError("negative consumption")


def _split(months: list[tuple[date, int]], units: int) -> list[tuple[date, int, Decimal]]:
    total_days = sum(d for _, d in months)
    exact = [Decimal(units * d) / total_days for _, d in months]
    whole = [int(x) for x in exact]
    left = units - sum(whole)
    # Largest fractional parts first; ties go to the later month (the most recent use).
    order = sorted(range(len(months)), key=lambda i: (exact[i] - whole[i], i), reverse=True)
    for i in order[:left]:
        whole[i] += 1
    return [(m, whole[i], Decimal(d) / total_days) for i, (m, d) in enumerate(months)]


def billed_price(tariff: Tariff, price: Decimal, rate: Decimal) -> Decimal:
    """The unit price before VAT a band is billed at, under VAT `rate`: the grid's price, or for
    a grid whose tax-inclusive prices stay fixed, what is left of them before today's VAT."""
    kept = tariff.fixed_ttc_vat_percent
    if kept is None:
        return price
    return (price * (100 + kept) / (100 + rate)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def _half_up(num: int, den: int) -> int:
    """num / den rounded half up (num, den ≥ 0): `centimes` of an exact fraction."""
    q, r = divmod(num, den)
    return q + (2 * r >= den)


class _Grid:
    """A tariff's bands under one VAT rate as exact fractions, and each month's lines by units
    (a month's charge depends on its units alone: customers share them all the time)."""

    __slots__ = ("lines", "progressive", "selective", "selective_above", "tariff")
    MAX_UNITS_KEPT = 4096  # distinct monthly consumptions kept; cleared when full

    def __init__(self, tariff: Tariff, rate: Decimal | None) -> None:
        self.tariff = tariff  # held: grids are keyed by its id

        def bands(source) -> tuple[tuple[int | None, Decimal, int, int], ...]:
            out = []
            for b in source:
                price = b.price if rate is None else billed_price(tariff, b.price, rate)
                out.append((b.upto, price, *price.as_integer_ratio()))
            return tuple(out)

        self.progressive = bands(tariff.progressive_bands)
        self.selective = bands(tariff.selective_bands) if tariff.rule == "progressive_then_selective" else None
        self.selective_above = tariff.selective_above or 0
        self.lines: dict[int, tuple[str, tuple[BandLine, ...], int]] = {}

    def month(self, units: int) -> tuple[str, tuple[BandLine, ...], int]:
        """(rule applied, band lines, energy HT in centimes) of a month of `units`."""
        kept = self.lines.get(units)
        if kept is not None:
            return kept
        lines: list[BandLine] = []
        if self.selective is not None and units > self.selective_above:
            lower = self.selective_above
            for upto, price, num, den in self.selective:
                if upto is None or units <= upto:
                    lines.append(BandLine("selective", lower, upto, units, price, _half_up(units * num * 100, den)))
                    break
                lower = upto
            rule = "selective"
        else:
            lower = 0
            for upto, price, num, den in self.progressive:
                if units <= lower:
                    break
                in_band = (units if upto is None else min(units, upto)) - lower
                lines.append(BandLine("progressive", lower, upto, in_band, price, _half_up(in_band * num * 100, den)))
                if upto is None:
                    break
                lower = upto
            rule = "progressive"
        if len(self.lines) >= self.MAX_UNITS_KEPT:
            self.lines.clear()
        kept = self.lines[units] = (rule, tuple(lines), sum(l.amount for l in lines))
        return kept


class _Rates:
    """A tariff's VAT rates for one year, as Decimals (shown) and exact fractions (computed)."""

    __slots__ = ("energy", "energy_ratio", "fees")

    def __init__(self, tariff: Tariff, day: date) -> None:
        self.energy = tariff.vat_at(day)
        self.energy_ratio = self.energy.as_integer_ratio()
        self.fees = tuple(
            (f, f.monthly.as_integer_ratio(), rate, rate.as_integer_ratio())
            for f in tariff.fees
            for rate in (f.vat_at(day),)
        )


# Tables per tariff object, keyed by identity and holding it (a frozen pydantic model holding
# lists is not hashable); a profile has a handful of tariffs, reloaded ones replace theirs.
_GRIDS: dict[tuple[int, Decimal | None], _Grid] = {}
_RATES: dict[tuple[int, int], tuple[Tariff, _Rates]] = {}


def _grid(tariff: Tariff, rate: Decimal) -> _Grid:
    # Only a grid of fixed tax-inclusive prices depends on the rate.
    key = (id(tariff), rate if tariff.fixed_ttc_vat_percent is not None else None)
    grid = _GRIDS.get(key)
    if grid is None or grid.tariff is not tariff:
        if len(_GRIDS) >= 256:
            _GRIDS.clear()
        grid = _GRIDS[key] = _Grid(tariff, key[1])
    return grid


def _rates(tariff: Tariff, day: date) -> _Rates:
    key = (id(tariff), day.year)  # a rate is the year's (vat_by_year)
    kept = _RATES.get(key)
    if kept is None or kept[0] is not tariff:
        if len(_RATES) >= 256:
            _RATES.clear()
        kept = _RATES[key] = (tariff, _Rates(tariff, day))
    return kept[1]


def price_month(
    tariff: Tariff, units: int, month: date = date(1970, 1, 1), *, rate: Decimal | None = None
) -> MonthCharge:
    """One calendar month of consumption priced band by band (under VAT `rate`: by default
    the tariff's for that month; it matters only to a grid of fixed tax-inclusive prices)."""
    rule, lines, energy = _grid(tariff, tariff.vat_at(month) if rate is None else rate).month(units)
    return MonthCharge(month, units, rule, lines, energy)


def _vat(amount: int, percent: Decimal) -> int:
    num, den = percent.as_integer_ratio()
    return _half_up(amount * num, 100 * den)


def _month_ttc(grid: _Grid, units: int, rate: tuple[int, int]) -> int:
    energy = grid.month(units)[2]
    return energy + _half_up(energy * rate[0], 100 * rate[1])


_MONTHS_LCM = 377_580  # lcm(28, 29, 30, 31): every day's share of its month in one denominator


def _split_units(days: list[tuple[date, int]], units: int) -> list[int]:
    """_split's units alone, in integers: the same largest-remainder shares."""
    if len(days) == 1:
        return [units]
    total = sum(d for _, d in days)
    whole, rests = [], []
    for _, d in days:
        q, r = divmod(units * d, total)
        whole.append(q)
        rests.append(r)
    if len(set(rests)) < len(rests):
        # Equal remainders: _split's Decimals (28 digits) order them by how many digits their
        # whole parts leave to the fraction, not always the later month first as it means to;
        # its order is kept, so a bill is what it was (a tie is rare: equal days, or luck).
        return [u for _, u, _ in _split(days, units)]
    left = units - sum(whole)
    # Largest fractional parts first; ties go to the later month (the most recent use).
    for i in sorted(range(len(days)), key=lambda i: (rests[i], i), reverse=True)[:left]:
        whole[i] += 1
    return whole


def _months_hundredths(days: list[tuple[date, int]]) -> int:
    """The period's months (days in each month / days of that month, summed) in hundredths,
    rounded half to even as Decimal's quantize; exact, so no tie can be near (a tie needs a
    denominator divisible by 8, and the lcm of month lengths is divisible by 4 only)."""
    num = sum(d * (_MONTHS_LCM // _days_in_month(m.year, m.month)) for m, d in days) * 100
    q, r = divmod(num, _MONTHS_LCM)
    return q + (2 * r > _MONTHS_LCM or (2 * r == _MONTHS_LCM and q % 2))


# prebill() is pure and its result immutable (frozen dataclasses, tuples): memoised, so the
# confirm step's pre-bill and its estimate correction (the same period and units) are priced
# once, and customers of one tariff reading in the same window share theirs. A tariff (a frozen
# pydantic model holding lists: not hashable) is keyed by identity and kept in the entry, so
# its id cannot be reused while the entry lives. Bounded: cleared when full.
_PREBILLS: dict[tuple[int, date, date, int, int], tuple[Tariff, PreBill]] = {}
_PREBILLS_MAX = 4096


def prebill(tariff: Tariff, period_start: date, period_end: date, units: int, *, cliff_margin: int = 15) -> PreBill:
    key = (id(tariff), period_start, period_end, units, cliff_margin)
    hit = _PREBILLS.get(key)
    if hit is not None and hit[0] is tariff:
        return hit[1]
    bill = _prebill(tariff, period_start, period_end, units, cliff_margin)
    if len(_PREBILLS) >= _PREBILLS_MAX:
        _PREBILLS.clear()
    _PREBILLS[key] = (tariff, bill)
    return bill


def _prebill(tariff: Tariff, period_start: date, period_end: date, units: int, cliff_margin: int) -> PreBill:
    _check(period_start, period_end, units)
    rates = _rates(tariff, period_end)  # VAT as in force at the end of the billed period
    rate, (rate_num, rate_den) = rates.energy, rates.energy_ratio
    grid = _grid(tariff, rate)
    days = _month_days(period_start, period_end)  # once: the split and the fees' months
    months = tuple(MonthCharge(m, u, *grid.month(u)) for (m, _), u in zip(days, _split_units(days, units), strict=True))
    energy_ht = sum(m.energy_ht for m in months)
    hundredths = _months_hundredths(days)
    month_count = Decimal(hundredths).scaleb(-2)  # as quantize(Decimal("0.01")) writes it
    fees = []
    for f, (m_num, m_den), fee_rate, (f_num, f_den) in rates.fees:
        amount = _half_up(m_num * hundredths, m_den)
        fees.append(
            FeeLine(f.key, f.name.ar, f.name.fr, month_count, amount, fee_rate, _half_up(amount * f_num, 100 * f_den))
        )
    fees_ht = sum(f.amount_ht for f in fees)
    energy_vat = _half_up(energy_ht * rate_num, 100 * rate_den)
    vat = energy_vat + sum(f.vat for f in fees)
    levies = tuple(
        LevyLine(l.key, l.name.ar, l.name.fr, centimes(l.monthly * month_count + l.per_unit * units))
        for l in tariff.levies
    )
    levies_total = sum(l.amount for l in levies)
    cliff = None
    if tariff.rule == "progressive_then_selective" and tariff.selective_above is not None:
        # Only the period's last month can still be acted on (the earlier ones are over).
        line, m = tariff.selective_above, months[-1]
        if line - cliff_margin <= m.units <= line:
            extra = _month_ttc(grid, line + 1, rates.energy_ratio) - _month_ttc(grid, line, rates.energy_ratio)
            cliff = Cliff(m.month, m.units, line - m.units, extra)
    return PreBill(
        tariff.code,
        period_start,
        period_end,
        units,
        months,
        tuple(fees),
        energy_ht,
        fees_ht,
        vat,
        energy_ht + fees_ht + vat + levies_total,
        rate,
        cliff,
        energy_vat,
        levies,
        levies_total,
    )


def estimate_correction(
    tariff: Tariff,
    *,
    period_start: date,
    period_end: date,
    actual_units: int,
    estimated_units_by_month: list[tuple[date, int]],
    billed_ttc: int,
) -> Correction:
    """Actual use over the whole period spread per month and priced, against what was billed on estimates."""
    actual = prebill(tariff, period_start, period_end, actual_units)
    return Correction(
        sum(u for _, u in estimated_units_by_month),
        actual_units,
        actual.total_ttc,
        billed_ttc,
        actual.total_ttc - billed_ttc,
        actual.months,
    )
