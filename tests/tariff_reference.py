"""The pre-bill as conversations/tariff.py computed it before its integer tables (2026-12-01):
the Decimal computation line by line of its rules, kept as the oracle the fast one must equal
(tests/test_tariff.py). Not used by the bot."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from conversations.profile import Tariff
from conversations.tariff import BandLine, Cliff, FeeLine, LevyLine, MonthCharge, PreBill, centimes

__all__ = [
    "ROUND_HALF_UP",
    "BandLine",
    "Cliff",
    "FeeLine",
    "LevyLine",
    "MonthCharge",
    "PreBill",
    "centimes",
    "reference_prebill",
]


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


def _line(key: str, lower: int, upper: int | None, units: int, price: Decimal) -> BandLine:
    return BandLine(key, lower, upper, units, price, centimes(units * price))


def billed_price(tariff: Tariff, price: Decimal, rate: Decimal) -> Decimal:
    """The unit price before VAT a band is billed at, under VAT `rate`: the grid's price, or for
    a grid whose tax-inclusive prices stay fixed, what is left of them before today's VAT."""
    kept = tariff.fixed_ttc_vat_percent
    if kept is None:
        return price
    return (price * (100 + kept) / (100 + rate)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def price_month(
    tariff: Tariff, units: int, month: date = date(1970, 1, 1), *, rate: Decimal | None = None
) -> MonthCharge:
    """One calendar month of consumption priced band by band (under VAT `rate`: by default
    the tariff's for that month; it matters only to a grid of fixed tax-inclusive prices)."""
    lines: list[BandLine] = []
    if tariff.fixed_ttc_vat_percent is not None:
        vat = tariff.vat_at(month) if rate is None else rate
        tariff = tariff.model_copy(
            update={
                "progressive_bands": [
                    b.model_copy(update={"price": billed_price(tariff, b.price, vat)}) for b in tariff.progressive_bands
                ],
                "selective_bands": [
                    b.model_copy(update={"price": billed_price(tariff, b.price, vat)}) for b in tariff.selective_bands
                ],
            }
        )
    if tariff.rule == "progressive_then_selective" and units > (tariff.selective_above or 0):
        lower = tariff.selective_above or 0  # (set: the condition above reads it)
        for band in tariff.selective_bands:
            if band.upto is None or units <= band.upto:
                lines.append(_line("selective", lower, band.upto, units, band.price))
                break
            lower = band.upto
        rule = "selective"
    else:
        lower = 0
        for band in tariff.progressive_bands:
            if units <= lower:
                break
            in_band = (units if band.upto is None else min(units, band.upto)) - lower
            lines.append(_line("progressive", lower, band.upto, in_band, band.price))
            if band.upto is None:
                break
            lower = band.upto
        rule = "progressive"
    return MonthCharge(month, units, rule, tuple(lines), sum(l.amount for l in lines))


def _vat(amount: int, percent: Decimal) -> int:
    return centimes(Decimal(amount) / 100 * percent / 100)


def _month_ttc(tariff: Tariff, units: int, rate: Decimal) -> int:
    energy = price_month(tariff, units, rate=rate).energy_ht
    return energy + _vat(energy, rate)


def reference_prebill(tariff: Tariff, period_start: date, period_end: date, units: int, cliff_margin: int) -> PreBill:
    _check(period_start, period_end, units)
    rate = tariff.vat_at(period_end)  # VAT as in force at the end of the billed period
    days = _month_days(period_start, period_end)  # once: the split and the fees' months
    months = tuple(price_month(tariff, u, m, rate=rate) for m, u, _ in _split(days, units))
    energy_ht = sum(m.energy_ht for m in months)
    month_count = sum((Decimal(d) / _days_in_month(m.year, m.month) for m, d in days), Decimal(0)).quantize(
        Decimal("0.01")
    )
    fees = tuple(
        FeeLine(
            f.key,
            f.name.ar,
            f.name.fr,
            month_count,
            centimes(f.monthly * month_count),
            f.vat_at(period_end),
            _vat(centimes(f.monthly * month_count), f.vat_at(period_end)),
        )
        for f in tariff.fees
    )
    fees_ht = sum(f.amount_ht for f in fees)
    energy_vat = _vat(energy_ht, rate)
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
            extra = _month_ttc(tariff, line + 1, rate) - _month_ttc(tariff, line, rate)
            cliff = Cliff(m.month, m.units, line - m.units, extra)
    return PreBill(
        tariff.code,
        period_start,
        period_end,
        units,
        months,
        fees,
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
