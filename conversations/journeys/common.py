"""Small helpers shared by journeys."""
from __future__ import annotations

from storage import Contract

from ..flow import Turn


def contract_label(t: Turn, c: Contract) -> str:
    """`1000001 (électricité, Casablanca)`: what a customer recognises a contract by."""
    return t.t("contract.label", number=t.t.ltr(c.contract), service=t.t(f"service.{c.service}"), city=c.city)


def operator_phone(t: Turn) -> str:
    return t.t.ltr(t.profile.contact.phones[0])


async def linked_contract(t: Turn, key: str) -> Contract | None:
    """The contract a journey stored under `key`, only if this chat has proven it holds it:
    never act on a contract named by a forged or stale payload."""
    number = t.data.get(key)
    if not number or not await t.tx.is_linked(t.channel, t.user_id, number):
        return None
    return await t.tx.contract(number)


def forget(t: Turn, prefix: str) -> None:
    """Drop a journey's own data (its keys share a prefix) when it ends or restarts."""
    for key in [k for k in t.data if k.startswith(prefix)]:
        del t.data[key]
