"""Pre-bill and estimate-correction texts: the tariff engine's numbers in the customer's words."""

from __future__ import annotations

from datetime import date

from storage import Contract, Reading

from ..flow import Turn
from ..profile import Tariff
from ..tariff import PreBill, estimate_correction, prebill


def _price(t: Turn, price) -> str:
    return t.tr.ltr(str(price).replace(".", ","))  # as the operator publishes it: 0,9010 DH/kWh


# A month's lines as a tranche table prints them: its heading (month, units, rule) and its band
# lines, which depend on the tariff and the month's units alone (the tariff's table keeps one
# tuple of lines per number of units: conversations/tariff.py _Grid), so customers of a month
# share them as they share their units. Bounded: cleared when full.
_MONTH_TEXT: dict[tuple, tuple[object, list[str]]] = {}
_MONTH_TEXT_MAX = 8192


def _month_lines(t: Turn, tariff: Tariff, months) -> list[str]:
    tr = t.tr
    unit = tr(f"unit.{tariff.service}")
    out = []
    for m in months:
        key = (tr.lang, unit, m.month, m.units, m.rule_applied, id(m.lines))
        kept = _MONTH_TEXT.get(key)
        if kept is None or kept[0] is not m.lines:  # (the lines held: their id is not reused)
            if len(_MONTH_TEXT) >= _MONTH_TEXT_MAX:
                _MONTH_TEXT.clear()
            kept = _MONTH_TEXT[key] = (m.lines, _month_text(t, unit, m))
        out += kept[1]
    return out


def _month_text(t: Turn, unit: str, m) -> list[str]:
    tr = t.tr
    out = [
        tr(
            "pricing.month",
            month=tr.month(m.month),
            units=tr.number(m.units),
            unit=unit,
            rule=tr("pricing.rule_selective" if m.rule_applied == "selective" else "pricing.rule_progressive"),
        )
    ]
    for line in m.lines:
        if line.units:
            out.append(
                tr(
                    "pricing.line",
                    units=tr.number(line.units),
                    unit=unit,
                    price=_price(t, line.price),
                    amount=tr.money(line.amount),
                )
            )
    return out


def breakdown_lines(t: Turn, tariff: Tariff, bill: PreBill) -> list[str]:
    """Month by month and band by band, then fees and VAT: the figures a bill is made of."""
    lines = _month_lines(t, tariff, bill.months)
    for fee in bill.fees:
        lines.append(
            t.tr("pricing.fee", name=fee.name_ar if t.lang == "ar" else fee.name_fr, amount=t.tr.money(fee.amount_ht))
        )
    if bill.vat:
        lines.append(t.tr("pricing.vat", amount=t.tr.money(bill.vat)))
        lines += _vat_lines(t, bill)
    for levy in bill.levies:  # taxes besides VAT (issue 24), as the bill's "Taxes" line has them
        lines.append(
            t.tr("pricing.levy", name=levy.name_ar if t.lang == "ar" else levy.name_fr, amount=t.tr.money(levy.amount))
        )
    return lines


def _vat_lines(t: Turn, bill: PreBill) -> list[str]:
    """VAT line by line when the lines bear different rates (electricity and meter rental did
    in 2024 and 2025): on what, at which rate, how much. One rate for all: the total says it."""
    parts = [(t.tr("pricing.energy"), bill.vat_percent, bill.energy_ht, bill.energy_vat)] + [
        (fee.name_ar if t.lang == "ar" else fee.name_fr, fee.vat_percent, fee.amount_ht, fee.vat) for fee in bill.fees
    ]
    taxed = [p for p in parts if p[3]]
    if len({p[1] for p in taxed}) < 2:
        return []
    return [
        t.tr(
            "pricing.vat_line",
            name=name,
            percent=t.tr.ltr(f"{percent:f}".replace(".", ",")),
            base=t.tr.money(base),
            amount=t.tr.money(vat),
        )
        for name, percent, base, vat in taxed
    ]


def describe_prebill(t: Turn, tariff: Tariff, start: date, end: date, units: int) -> tuple[str, dict]:
    bill = prebill(tariff, start, end, units)
    lines = [t.tr("pricing.header", tariff=tariff.name.get(t.lang))]
    lines += breakdown_lines(t, tariff, bill)
    lines.append(t.tr("pricing.total", amount=t.tr.money(bill.total_ttc)))
    cliff = bill.cliff
    if cliff and cliff.month == t.today.replace(day=1):  # a month that is over cannot be helped
        # Exact: at the line the month is still progressive; one unit more and all of it is not.
        lines.append(
            t.tr(
                "pricing.cliff" if cliff.remaining else "pricing.cliff_at_line",
                month=t.tr.month(cliff.month),
                units=t.tr.number(cliff.units),
                unit=t.tr(f"unit.{tariff.service}"),
                line=t.tr.number(cliff.units + cliff.remaining),
                remaining=t.tr.number(cliff.remaining),
                over=t.tr.number(cliff.units + cliff.remaining + 1),
                extra=t.tr.money(cliff.extra_cost_ttc),
            )
        )
    lines.append(t.tr("pricing.note"))
    details = {
        "units": units,
        "total_ttc": bill.total_ttc,
        "vat": bill.vat,
        "months": [[m.month.isoformat(), m.units, m.energy_ht] for m in bill.months],
    }
    return "\n".join(lines), details


async def describe_correction(
    t: Turn, contract: Contract, tariff: Tariff, last: Reading, day: date, used: int, by_month: list[tuple[date, int]]
) -> tuple[str, dict]:
    """Actual use since the last real reading, spread per month, against what was estimated
    (units per month) and billed. Follows the pre-bill of the same period, which lists the months."""
    billed = sum(
        b.amount
        for b in await t.tx.bills(contract.contract, since=last.reading_date)
        if b.estimated and b.period_start < day
    )
    c = estimate_correction(
        tariff,
        period_start=last.reading_date,
        period_end=day,
        actual_units=used,
        estimated_units_by_month=by_month,
        billed_ttc=billed,
    )
    unit = t.tr(f"unit.{tariff.service}")
    lines = [
        t.tr("correction.header"),
        t.tr("correction.estimated", units=t.tr.number(c.estimated_units), unit=unit, amount=t.tr.money(c.billed_ttc)),
        t.tr(
            "correction.actual",
            units=t.tr.number(c.actual_units),
            unit=unit,
            months=t.tr.n("common.months", len(c.months)),
            amount=t.tr.money(c.amount_actual_ttc),
        ),
    ]
    # The months and their bands are the pre-bill's, sent just before: not listed a second time.
    if c.difference > 0:
        lines.append(t.tr("correction.due", amount=t.tr.money(c.difference)))
    elif c.difference < 0:
        lines.append(t.tr("correction.credit", amount=t.tr.money(-c.difference)))
    else:
        lines.append(t.tr("correction.even"))
    return "\n".join(lines), {
        "estimated_units": c.estimated_units,
        "actual_units": c.actual_units,
        "billed_ttc": c.billed_ttc,
        "actual_ttc": c.amount_actual_ttc,
        "difference": c.difference,
    }
