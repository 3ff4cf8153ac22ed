"""Small helpers shared by journeys."""

from __future__ import annotations

from storage import Contract

from ..events import Button
from ..flow import AGAIN, ContractData, Turn, ref
from ..places import city_label

MENU_MAIN = ref("menu.main")


def contract_label(t: Turn, c: Contract) -> str:
    """`1000001 (électricité, Casablanca)`: what a customer recognises a contract by (the city's
    Arabic name in Arabic, where the profile knows it)."""
    return t.tr(
        "contract.label",
        number=t.tr.ltr(c.contract),
        service=t.tr(f"service.{c.service}"),
        city=city_label(t.profile, t.tr, c.city),
    )


def contract_button(t: Turn, c: Contract, key: str, /, **params) -> Button:
    """A `c:NUMBER` choice tagged with its service and meter, so "lma" or the meter number typed picks it."""
    return t.tag(t.button(f"c:{c.contract}", key, **params), service=c.service, meter=c.meter_number)


def operator_phone(t: Turn) -> str:
    return t.tr.ltr(t.profile.contact.phones[0])


async def linked_contract(t: Turn, number: str | None) -> Contract | None:
    """The contract a journey kept the `number` of, only if this chat has proven it holds it:
    never act on a contract named by a forged or stale payload."""
    if not number:
        return None
    for contract in await t.tx.linked_contracts(t.channel, t.user_id):  # read once per turn
        if contract.contract == number:
            return contract
    return None


SWITCH_CONFIDENCE = 0.6


def elsewhere(t: Turn, journey: str) -> str | None:
    """Where a typed request for something else leads ("combien je dois ?" while a meter is
    being chosen from a list): that request's entry state. Only for list choices: where free
    text is the answer (an index, a reason), the text is the answer."""
    from . import INTENT_ENTRY

    u = t.understood
    if t.inbound.payload is not None or u is None or u.confidence < SWITCH_CONFIDENCE:
        return None
    if u.intent in ("greeting", "help", "cancel") or u.intent not in INTENT_ENTRY:
        return None
    if u.source != "rules":
        return None  # a reading the rules do not share does not override a named choice ("lma")
    target = INTENT_ENTRY[u.intent]
    return None if target.startswith(journey + ".") else target


async def pick_contract(t: Turn, journey: str, data: ContractData, then: str, unclear: str) -> str | None:
    """The answer to a journey's "which contract?" list: the linked contract picked is kept
    in the journey's `data` and the journey goes on to `then`; a typed request for something
    else goes there; anything else asks again with `unclear`."""
    picked = t.choice()
    if picked == "cmd:cancel":
        return MENU_MAIN
    if picked and picked.startswith("c:"):
        data.contract = picked[2:]
        if await linked_contract(t, data.contract) is not None:
            return then
    other = elsewhere(t, journey)
    if other:
        return other
    t.say(unclear)
    return AGAIN
