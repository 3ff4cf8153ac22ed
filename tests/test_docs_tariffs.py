"""The worked examples in docs/tariffs.md are what the engine computes with the shipped profile."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from conversations.profile import load_profile
from conversations.tariff import prebill
from storage.values import format_amount_plain as fmt

CASES = [
    ("BT-RES", "130 kWh in May", date(2026, 4, 30), date(2026, 5, 31), 130),
    ("BT-RES", "150 kWh in May", date(2026, 4, 30), date(2026, 5, 31), 150),
    ("BT-RES", "151 kWh in May", date(2026, 4, 30), date(2026, 5, 31), 151),
    ("BT-RES", "300 kWh, 15 March → 15 May", date(2026, 3, 15), date(2026, 5, 15), 300),
    ("EAU-RES", "7 m³ in May", date(2026, 4, 30), date(2026, 5, 31), 7),
    ("EAU-RES", "25 m³ in May", date(2026, 4, 30), date(2026, 5, 31), 25),
]


def test_doc_table_matches_the_engine():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "tariffs.md").read_text(encoding="utf-8")
    profile = load_profile()
    for code, label, start, end, units in CASES:
        bill = prebill(profile.tariff(code), start, end, units)
        months = " + ".join(str(m.units) for m in bill.months)
        row = f"| {label} | {months} | {fmt(bill.energy_ht)} | {fmt(bill.fees_ht)} | {fmt(bill.vat)} | {fmt(bill.total_ttc)} |"  # noqa: E501
        assert row in doc, row


def srm_bill_rows() -> list[str]:
    """The SRM Casablanca-Settat March 2025 bill (86 kWh, research L4) line by line, from
    profiles/srm-cs.toml (issue 24): docs/tariffs.md holds each row."""
    from conversations.tariff import billed_price

    bt = load_profile("srm-cs").tariff("BT-RES")
    bill = prebill(bt, date(2025, 1, 31), date(2025, 2, 28), 86)
    rows = []
    for m in bill.months:
        for line in m.lines:
            price = str(billed_price(bt, line.price, bill.vat_percent)).replace(".", ",")
            rows.append(f"| Énergie, {line.units} kWh × {price} DH | | | {fmt(line.amount)} |")
    rows += [f"| {f.name_fr} | | | {fmt(f.amount_ht)} |" for f in bill.fees]
    rows.append(f"| **Total HT** | | | **{fmt(bill.energy_ht + bill.fees_ht)}** |")
    rows.append(f"| TVA sur l'énergie | {fmt(bill.energy_ht)} | {bill.vat_percent} % | {fmt(bill.energy_vat)} |")
    rows += [
        f"| TVA sur {f.name_fr.lower()} | {fmt(f.amount_ht)} | {f.vat_percent} % | {fmt(f.vat)} |" for f in bill.fees
    ]
    rows += [f"| {l.name_fr} | | | {fmt(l.amount)} |" for l in bill.levies]
    rows.append(f"| **Taxes** | | | **{fmt(bill.vat + bill.levies_total)}** |")
    rows.append(f"| **Total TTC** | | | **{fmt(bill.total_ttc)}** |")
    return rows


def test_doc_reproduces_the_published_srm_bill_line_by_line():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "tariffs.md").read_text(encoding="utf-8")
    rows = srm_bill_rows()
    for row in rows:
        assert row in doc, row
    # The published bill's own figures (research L4): HT 78.51, Taxes 14.42, and so 92.93 TTC.
    assert "| **Total HT** | | | **78.51** |" in rows and "| **Taxes** | | | **14.42** |" in rows
    assert rows[-1] == "| **Total TTC** | | | **92.93** |"


FIXED_TTC = [  # (kWh in May 2026, energy HT, VAT, total TTC) for ONEE's grid kept at its 14 % TTC
    (130, "116.19", "24.68", "148.07"),
    (300, "332.76", "67.99", "407.95"),
]


def test_doc_fixed_ttc_rows_match_the_engine():
    from decimal import Decimal

    doc = (Path(__file__).resolve().parents[1] / "docs" / "tariffs.md").read_text(encoding="utf-8")
    bt = load_profile().tariff("BT-RES")
    kept = bt.model_copy(update={"fixed_ttc_vat_percent": Decimal(14)})
    for units, energy, vat, total in FIXED_TTC:
        before = prebill(bt, date(2026, 4, 30), date(2026, 5, 31), units)
        fixed = prebill(kept, date(2026, 4, 30), date(2026, 5, 31), units)
        assert (fmt(fixed.energy_ht), fmt(fixed.vat), fmt(fixed.total_ttc)) == (energy, vat, total)
        row = f"| {units} kWh in May | {fmt(before.total_ttc)} | {total} |"
        assert row in doc, row
        # Energy with its VAT: 1.20 / 1.14 - 1 = 5.3 % more when VAT is added on top.
        ratio = Decimal(before.energy_ht + _vat(before)) / Decimal(fixed.energy_ht + _vat(fixed))
        assert abs(ratio - Decimal("1.2") / Decimal("1.14")) < Decimal("0.001")


def _vat(bill) -> int:
    return bill.energy_vat
