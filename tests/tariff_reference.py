"""The pre-bill as conversations/tariff.py computed it before its integer tables (2026-12-01):
the Decimal computation line by line of its rules, kept as the oracle the fast one must equal
(tests/test_tariff.py). Not used by the bot. The parts the integer tables did not replace (the
days of each month, the split of units between months, a band's billed price) are the bot's own,
imported."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from conversations.profile import Tariff
from conversations.tariff import (
    BandLine,
    Cliff,
    FeeLine,
    LevyLine,
    MonthCharge,
    PreBill,
    _check,
    _days_in_month,
    _month_days,
    _split,
    billed_price,
    centimes,
)

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


def _line(key: str, lower: int, upper: int | None, units: int, price: Decimal) -> BandLine:
    return BandLine(key, lower, upper, units, price, centimes(units * price))


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
