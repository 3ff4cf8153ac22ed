"""Small helpers shared by journeys."""
from __future__ import annotations

from storage import Contract

from ..flow import Turn


def contract_label(t: Turn, c: Contract) -> str:
    """`1000001 (électricité, Casablanca)`: what a customer recognises a contract by."""
    return t.t("contract.label", number=t.t.ltr(c.contract), service=t.t(f"service.{c.service}"), city=c.city)


def operator_phone(t: Turn) -> str:
    return t.t.ltr(t.profile.contact.phones[0])
