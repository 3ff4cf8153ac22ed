"""Account linking: a contract number, then proof of holding it. Diagram: docs/flows/linking.md

Proof is either a phone the channel vouches for (a Telegram contact whose user id is the
sender's, the WhatsApp sender number, `--phone` in the console) equal to the contract's
phone, or the exact amount of the contract's last bill. Never the national ID card (law 09-08).
Nothing about a contract is shown before proof. Five failed proofs lock linking for the chat
for 30 minutes; every attempt goes to the audit log.
"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

from storage import Contract
from storage.values import ARABIC_DIGITS, ValueProblem, normalize_phone, parse_amount

from ..flow import AGAIN, Flow, Turn
from .common import contract_label, operator_phone

link = Flow("link")

MAX_FAILURES = 5
LOCK = timedelta(minutes=30)


async def _locked_until(t: Turn):
    locked_at = await t.tx.last_audit_at("link_locked", channel=t.channel, user_id=t.user_id)
    if locked_at and t.now < locked_at + LOCK:
        return locked_at + LOCK
    return None


async def _failures(t: Turn) -> int:
    since = t.now - LOCK
    locked_at = await t.tx.last_audit_at("link_locked", channel=t.channel, user_id=t.user_id)
    if locked_at and locked_at > since:
        since = locked_at
    return await t.tx.count_audit("link_failed", channel=t.channel, user_id=t.user_id, since=since)


async def _say_locked(t: Turn, until) -> str:
    t.say("link.locked", time=t.t.ltr(t.local(until).strftime("%H:%M")), phone=operator_phone(t))
    t.data.clear()
    return "menu.main"


async def _fail(t: Turn, reason: str, contract: str | None) -> str:
    """Record a failed proof; lock after the fifth; otherwise say how many tries are left."""
    await t.tx.audit("link_failed", channel=t.channel, user_id=t.user_id, contract=contract,
                     details={"reason": reason}, now=t.now)
    failures = await _failures(t)
    if failures >= MAX_FAILURES:
        await t.tx.audit("link_locked", channel=t.channel, user_id=t.user_id, contract=contract, now=t.now)
        return await _say_locked(t, t.now + LOCK)
    t.say_text(t.t.n("link.tries_left", MAX_FAILURES - failures))
    return AGAIN


def _typed_contract(t: Turn) -> str | None:
    if t.understood is not None and t.understood.entities.get("contract"):
        return str(t.understood.entities["contract"])
    digits = re.sub(r"[\s\-./]", "", t.text.translate(ARABIC_DIGITS))
    return digits if digits.isdigit() else None


@link.prompt("contract")
async def ask_contract(t: Turn) -> str | None:
    until = await _locked_until(t)
    if until:
        return await _say_locked(t, until)
    t.data.pop("link_contract", None)
    if "after_link" in t.data:
        t.say("link.needed")
    t.ask(t.t("link.ask_contract"), [t.button("cmd:cancel", "common.cancel")])
    return None


@link.handle("contract")
async def on_contract(t: Turn) -> str | None:
    until = await _locked_until(t)
    if until:
        return await _say_locked(t, until)
    if t.choice() == "cmd:cancel":
        t.data.clear()
        return "menu.main"
    number = _typed_contract(t)
    if not number or not t.profile.contract_number_ok(number):
        t.say("link.contract_format")
        return AGAIN
    if await t.tx.is_linked(t.channel, t.user_id, number):
        c = await t.tx.contract(number)
        t.say("link.already", contract=contract_label(t, c))
        return t.data.pop("after_link", None) or "menu.main"
    contract = await t.tx.contract(number)
    if contract is None:
        t.say("link.unknown", number=t.t.ltr(number))
        return await _fail(t, "unknown_contract", None)
    t.data["link_contract"] = number
    return "link.proof"


async def _contract(t: Turn) -> Contract | None:
    number = t.data.get("link_contract")
    return await t.tx.contract(number) if number else None


async def _has_bill(t: Turn, contract: Contract) -> bool:
    return bool(await t.tx.bills(contract.contract, limit=1))


@link.prompt("proof")
async def ask_proof(t: Turn) -> str | None:
    contract = await _contract(t)
    if contract is None:
        return "link.contract"
    vouched = t.inbound.sender_phone
    if vouched:
        try:
            if normalize_phone(vouched) == contract.phone:
                return await _linked(t, contract, "phone")
        except ValueProblem:
            pass
    buttons = []
    if t.inbound.contact_request_supported:
        buttons.append(replace(t.button("proof:phone", "link.proof_phone"), request="contact"))
    if await _has_bill(t, contract):
        buttons.append(t.button("proof:amount", "link.proof_amount"))
    if not buttons:
        t.say("link.no_proof_possible", phone=operator_phone(t))
        t.data.clear()
        return "menu.main"
    buttons.append(t.button("cmd:cancel", "common.cancel"))
    t.ask(t.t("link.ask_proof"), buttons, ask="contact" if t.inbound.contact_request_supported else None)
    return None


async def _guard(t: Turn) -> tuple[Contract | None, str | None]:
    """Every proof step: the contract being linked, unless the chat is locked, the customer
    cancels or shares a contact (then the returned state or check is where to go)."""
    contract = await _contract(t)
    if contract is None:
        return None, "link.contract"
    until = await _locked_until(t)
    if until:
        return None, await _say_locked(t, until)
    if t.inbound.contact_phone:
        return None, await _check_contact(t, contract)
    if t.choice() == "cmd:cancel":
        t.data.clear()
        return None, "menu.main"
    return contract, None


@link.handle("proof")
async def on_proof(t: Turn) -> str | None:
    contract, redirect = await _guard(t)
    if contract is None:
        return redirect
    picked = t.choice()
    if picked == "proof:amount":
        return "link.amount"
    if picked == "proof:phone":
        t.say("link.use_share_button")
        return AGAIN
    if t.text and await _has_bill(t, contract):
        try:
            parse_amount(t.text)
        except ValueProblem:
            pass
        else:
            return await _check_amount(t, contract)
    t.say("link.pick_proof")
    return AGAIN


async def _check_contact(t: Turn, contract: Contract) -> str | None:
    if not t.inbound.contact_is_own:
        t.say("link.contact_not_own")
        return await _fail(t, "contact_not_own", contract.contract)
    try:
        phone = normalize_phone(t.inbound.contact_phone or "")
    except ValueProblem:
        phone = None
    if phone != contract.phone:
        t.say("link.phone_mismatch")
        return await _fail(t, "phone_mismatch", contract.contract)
    return await _linked(t, contract, "phone")


@link.prompt("amount")
async def ask_amount(t: Turn) -> str | None:
    t.ask(t.t("link.ask_amount"), [t.button("cmd:cancel", "common.cancel")])
    return None


@link.handle("amount")
async def on_amount(t: Turn) -> str | None:
    contract, redirect = await _guard(t)
    if contract is None:
        return redirect
    return await _check_amount(t, contract)


async def _check_amount(t: Turn, contract: Contract) -> str | None:
    try:
        typed = parse_amount(t.text)
    except ValueProblem:
        t.say("link.amount_format")
        return AGAIN
    bills = await t.tx.bills(contract.contract, limit=1)
    if not bills or bills[0].amount != typed:
        t.say("link.amount_mismatch")
        return await _fail(t, "amount_mismatch", contract.contract)
    return await _linked(t, contract, "bill_amount")


async def _linked(t: Turn, contract: Contract, method: str) -> str:
    """Link the contract (and, on phone proof, the holder's other contracts with that phone)."""
    linked = [contract]
    if method == "phone":
        linked += [c for c in await t.tx.contracts_with_phone(contract.phone) if c.contract != contract.contract]
    for c in linked:
        await t.tx.link_chat(t.channel, t.user_id, c.contract, method, now=t.now)
        await t.tx.audit("link_ok", channel=t.channel, user_id=t.user_id, contract=c.contract,
                         details={"method": method}, now=t.now)
    t.say("link.done", contract=contract_label(t, contract))
    if len(linked) > 1:
        t.say("link.also", contracts="\n".join("• " + contract_label(t, c) for c in linked[1:]))
    t.consume_input()
    after = t.data.pop("after_link", None)
    t.data.pop("link_contract", None)
    t.data.pop("_choices", None)
    return after or "menu.main"
