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
