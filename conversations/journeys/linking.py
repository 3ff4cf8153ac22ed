"""Account linking: a contract number, then proof of holding it. Diagram: docs/flows/linking.md

Proof is either a phone the channel vouches for (a Telegram contact whose user id is the
sender's, the WhatsApp sender number, `--phone` in the console) equal to the contract's
phone, or the exact amount of the contract's last bill. Never the national ID card (law 09-08).
A customer who does not know the contract number picks it from the contracts on a vouched
phone (numbers masked; the phone is the proof), never on a phone merely typed.
Nothing about a contract is shown before proof, not even whether the number exists: an unknown
number gets the same proof question and fails the same way. Five failed proofs lock linking for
the chat for 30 minutes; a few failed proofs on one contract number from all chats together
(profile `linking`) suspend proof by amount on it and alert the back office (`proof_locked` in the
audit log, listed by `addad requests list`); a vouched phone still links. Every attempt goes to the
audit log.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta

from storage import Contract
from storage.legacy import reference_key
from storage.values import ARABIC_DIGITS, ValueProblem, normalize_phone, parse_amount

from ..events import Button
from ..flow import AGAIN, DIGRESSION_CONFIDENCE, FLOWS, ContractData, Field, Flow, MenuItem, Turn, ref
from ..places import city_label
from ..reminders import offer_consent
from ..understanding import _PHONE, normalize
from .common import contract_label, operator_phone

link = Flow("link", states=("contract", "pick", "proof", "amount"), menu=MenuItem(8, "menu.link"), pausable=True)
LINK_CONTRACT = link.state("contract")
LINK_PICK = link.state("pick")
LINK_PROOF = link.state("proof")
LINK_AMOUNT = link.state("amount")

MENU_MAIN = ref("menu.main")


class LinkData(ContractData):
    """The contract being proven and a phone shared for it."""

    key = "link"
    phone = Field[str]()
    legacy = Field[str]()  # "operator\x1freference as printed": the old reference the customer typed
    given_tried = Field[str]()  # the contract number the starting message gave, once taken


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
    t.say("link.locked", time=t.tr.ltr(t.local(until).strftime("%H:%M")), phone=operator_phone(t))
    t.data.clear()
    return MENU_MAIN


async def _contract_failures(t: Turn, number: str) -> int:
    """Failed proofs on this contract number from every chat and channel within the profile's window."""
    since = t.now - timedelta(hours=t.profile.linking.window_hours)
    return await t.tx.count_contract_audit("link_failed", contract=number, since=since)


async def _contract_locked(t: Turn, number: str) -> bool:
    return await _contract_failures(t, number) >= t.profile.linking.max_failed_proofs


async def _alert(t: Turn, number: str, failures: int) -> None:
    """The back office is told once per crossing of the limit: `proof_locked`, listed by `addad requests list`."""
    since = t.now - timedelta(hours=t.profile.linking.window_hours)
    recent = [
        e
        for e in await t.tx.audit_entries(contract=number, action="link_failed")
        if datetime.fromisoformat(e["at"]) >= since
    ]
    await t.tx.audit(
        "proof_locked",
        actor="system",
        channel=t.channel,
        user_id=t.user_id,
        contract=number,
        details={
            "failures": failures,
            "window_hours": t.profile.linking.window_hours,
            "chats": len({(e["channel"], e["user_id"]) for e in recent}),
            "known": await t.tx.contract(number) is not None,
        },
        now=t.now,
    )


async def _fail(t: Turn, reason: str, contract: str | None) -> str:
    """Record a failed proof (on the contract number too: the limit across chats, and the alert
    when it is reached); lock the chat after the fifth; otherwise say how many tries are left."""
    await t.tx.audit(
        "link_failed", channel=t.channel, user_id=t.user_id, contract=contract, details={"reason": reason}, now=t.now
    )
    if contract is not None:
        on_contract = await _contract_failures(t, contract)
        if on_contract == t.profile.linking.max_failed_proofs:
            await _alert(t, contract, on_contract)
    failures = await _failures(t)
    if failures >= MAX_FAILURES:
        await t.tx.audit("link_locked", channel=t.channel, user_id=t.user_id, contract=contract, now=t.now)
        return await _say_locked(t, t.now + LOCK)
    t.say_text(t.tr.n("link.tries_left", MAX_FAILURES - failures))
    return AGAIN


# "I don't know / can't find my contract number", as customers write it.
_DONT_KNOW = re.compile(  # on normalize()d text: accents dropped, arabizi 9 read as q
    r"(?<!\w)(?:ma ?3reft?ch|ma ?3rftch|ma ?3arftch|ma ?3reftouch|ma ?n3rfch|ma ?kan3rfch|ma ?3ndich|"
    r"ma ?3endich|ma ?3andich|nsit|nsito|ma ?lqitch|fin (?:n|ghadi n)?lqa|fin kayn|ou (?:je )?trouve|"
    r"ou trouver|ou est|ou se trouve|(?:ne )?(?:connais|sais) pas|connai pas|pas de numero|bla numero|"
    r"sans (?:le )?numero|n'ai pas (?:le|mon|de|d)|j'ai pas (?:le|mon|de|d)|perdu|oublie|"
    r"ما عرفتش|ماعرفتش|ما عرفتوش|ماعرفتوش|ما كنعرفش|ماكنعرفش|لا اعرف|لا اعلم|ما عنديش|ماعنديش|ما عندي|"
    r"ماعندي|نسيت|ضاع|ما لقيتش|مالقيتش|فين نلقى|فين كاين|اين اجد|اين يوجد|وين|بلا رقم|بدون رقم)(?!\w)"
)


def _dont_know(t: Turn) -> bool:
    return bool(t.text) and not re.search(r"\d{4}", t.text) and bool(_DONT_KNOW.search(normalize(t.text)))


def _prepaid_journey(t: Turn) -> bool:
    """The journey waiting for the link is a prepaid one: the customer has no bill to read from."""
    return str(t.data.get("after_link", "")).startswith("prepaid.")


def _k(t: Turn, key: str) -> str:
    return key + "_prepaid" if _prepaid_journey(t) else key


def _vouched_phone(t: Turn) -> str | None:
    """A phone the channel vouches for: the sender's (WhatsApp, console --phone) or the customer's
    own contact shared in this journey. Never a number typed."""
    for phone in (t.inbound.sender_phone, LinkData.of(t).phone):
        if phone:
            try:
                return normalize_phone(phone)
            except ValueProblem:
                continue
    return None


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
    LinkData.of(t).contract = None
    LinkData.of(t).legacy = None
    # "lindex 45400, contrat 1000001": the number given is not asked for again (once: asked
    # again after a failed proof, the customer types it), and stays given for the journey after.
    given = t.given("contract")
    if given and given != LinkData.of(t).given_tried and _well_formed(t, given):
        LinkData.of(t).given_tried = given
        return await _take_contract(t, given)
    if "after_link" in t.data:
        t.say("link.needed")
    t.ask(
        t.tr(_k(t, "link.ask_contract")),
        [t.button("link:dont_know", "link.dont_know"), t.button("cmd:cancel", "common.cancel")],
    )
    return None


@link.handle("contract", expects="number")
async def on_contract(t: Turn) -> str | None:
    until = await _locked_until(t)
    if until:
        return await _say_locked(t, until)
    picked = t.choice()
    if picked == "cmd:cancel":
        t.data.clear()
        return MENU_MAIN
    if t.inbound.contact_phone:
        if not t.inbound.contact_is_own:
            t.say("link.contact_not_own")
            return await _fail(t, "contact_not_own", None)
        LinkData.of(t).phone = t.inbound.contact_phone
        return LINK_PICK
    if picked == "link:dont_know" or _dont_know(t):
        return LINK_PICK
    if _PHONE.search(normalize(t.text)):
        # A typed phone proves nothing: contracts are listed only for a phone the channel vouches for.
        # (Whether a contract has these digits is not looked up: that would tell which numbers exist.)
        t.say("link.phone_typed")
        return LINK_PICK
    number = (reference_key(t.text) if t.text else None) or _typed_contract(t) or _typed_legacy(t)
    if not number and _restated(t):
        return AGAIN  # the request said again ("bghit nkhlas 3la 3 chhor"): not a contract number typed wrong
    if not number or not _well_formed(t, number):
        t.say(_k(t, "link.contract_format"))
        return AGAIN
    return await _take_contract(t, number)


def _restated(t: Turn) -> bool:
    """The message asks again, in words, for what linking is for (its small numbers are a month
    count, a date, an amount): what it adds is kept for the journey, as the first message's was."""
    u = t.understood
    after = str(t.data.get("after_link", "")).split(".")[0]
    if u is None or u.source != "rules" or u.confidence < DIGRESSION_CONFIDENCE or not after:
        return False
    target = FLOWS.get(after)
    if target is None or u.intent not in target.intents:
        return False
    t.add_given(without=frozenset({"contract"}))
    return True


async def _take_contract(t: Turn, number: str) -> str | None:
    """A well-formed number, typed at the question or given before it: to the proof."""
    number = await _legacy_contract(t, number)
    if await t.tx.is_linked(t.channel, t.user_id, number):
        c = await t.tx.contract(number)
        if c is not None:  # (a linked contract is always known: links reference contracts)
            t.say("link.already", contract=contract_label(t, c))
        return t.data.pop("after_link", None) or MENU_MAIN
    # Known or not, the same proof question: an unknown number fails at the proof like a wrong one.
    LinkData.of(t).contract = number
    return LINK_PROOF


# A reference as printed inside a sentence ("numero dyal lydec 0193 017 183"): digit groups
# with spaces, dashes or dots between them.
_PRINTED = re.compile(r"(?<![\w.,])\d[\d \-.]{4,}\d(?![\w,])")


def _typed_legacy(t: Turn) -> str | None:
    """The one reference a message holds, where the operator replaced others (digits only)."""
    if not t.profile.legacy_operators or not t.text:
        return None
    found = _PRINTED.findall(t.text.translate(ARABIC_DIGITS))
    keys = [k for k in (reference_key(f) for f in found) if k and _legacy_format(t, k)]
    return keys[0] if len(keys) == 1 else None


def _well_formed(t: Turn, number: str) -> bool:
    """A contract number of this operator's, or a reference of one it replaced."""
    return t.profile.contract_number_ok(number) or _legacy_format(t, number)


def _legacy_format(t: Turn, digits: str) -> bool:
    """The digits may be a reference of an operator this one replaced (Lydec's 10 digits)."""
    return any(o.reference_ok(digits) for o in t.profile.legacy_operators)


async def _legacy_contract(t: Turn, number: str) -> str:
    """Today's contract for a previous operator's reference, kept to be told once proven (never
    before: an old reference gets the proof question whether it was imported or not, and a
    wrong proof counts against today's contract, as if its number had been typed). A number
    that is a contract of today's is that contract."""
    LinkData.of(t).legacy = None
    if not t.profile.legacy_operators or await t.tx.contract(number) is not None:
        return number
    found = await t.tx.legacy_reference(number)
    if found is None:
        return number  # unknown: proven (and failed) like any unknown contract number
    operator, printed, contract = found
    LinkData.of(t).legacy = f"{operator}\x1f{printed}"
    return contract


def _masked(t: Turn, c: Contract) -> str:
    """`•••0001 (électricité, Casablanca)`: enough to recognise a contract, not to copy it."""
    return t.tr(
        "link.masked",
        number=t.tr.ltr("•••" + c.contract[-4:]),
        service=t.tr(f"service.{c.service}"),
        city=city_label(t.profile, t, c.city),
    )


@link.prompt("pick")
async def ask_pick(t: Turn) -> str | None:
    """No contract number: the contracts on a vouched phone to pick from; otherwise the way to
    share the phone (Telegram), and where the number is printed and whom to call."""
    phone = _vouched_phone(t)
    contracts = await t.tx.contracts_with_phone(phone) if phone else []
    if contracts:
        t.ask(
            t.tr("link.pick_listed"),
            [
                t.tag(Button(f"c:{c.contract}", _masked(t, c)), service=c.service, meter=c.meter_number)
                for c in contracts
            ]
            + [t.button("cmd:cancel", "common.cancel")],
        )
        return None
    if phone:
        t.say("link.none_on_phone")
    elif t.inbound.contact_request_supported:
        t.say("link.share_to_list")
    t.say(_k(t, "link.where_number"), phone=operator_phone(t))
    buttons = [t.button("cmd:cancel", "common.cancel")]
    if t.inbound.contact_request_supported and not phone:
        buttons.insert(0, replace(t.button("proof:phone", "link.proof_phone"), request="contact"))
    t.ask(t.tr("link.type_contract"), buttons, ask="contact" if len(buttons) > 1 else None)
    return None


@link.handle("pick", expects="number")
async def on_pick(t: Turn) -> str | None:
    until = await _locked_until(t)
    if until:
        return await _say_locked(t, until)
    picked = t.choice()
    if picked and picked.startswith("c:"):
        phone = _vouched_phone(t)
        listed = {c.contract: c for c in await t.tx.contracts_with_phone(phone)} if phone else {}
        contract = listed.get(picked[2:])
        if contract is None:  # not on the vouched phone: forged or stale
            t.say("link.pick_listed_again")
            return AGAIN
        if await t.tx.is_linked(t.channel, t.user_id, contract.contract):
            t.say("link.already", contract=contract_label(t, contract))
            LinkData.of(t).phone = None
            return t.data.pop("after_link", None) or MENU_MAIN
        return await _linked(t, contract, "phone")
    if picked == "proof:phone":
        t.say("link.use_share_button")
        return AGAIN
    if t.inbound.contact_phone or picked == "cmd:cancel" or _typed_contract(t):
        return await on_contract(t)
    if _vouched_phone(t) and (t.data.get("_tags") or {}):
        if not _restated(t):  # (the request said again: its month count kept, the list shown again)
            t.say("link.pick_listed_again")
        return AGAIN
    if _dont_know(t):
        t.say(_k(t, "link.where_number"), phone=operator_phone(t))
        return None
    return await on_contract(t)


def _amount_proof(t: Turn) -> bool:
    """Proof by the last bill's amount is offered unless the waiting journey is prepaid (no bill to
    read). It depends on the journey, never on the contract: the number may not exist."""
    return not _prepaid_journey(t)


@link.prompt("proof")
async def ask_proof(t: Turn) -> str | None:
    number = LinkData.of(t).contract
    if not number:
        return LINK_CONTRACT
    contract = await t.tx.contract(number)
    phone = _vouched_phone(t)
    if contract is not None and phone is not None and phone == contract.phone:
        return await _linked(t, contract, "phone")
    buttons = []
    if t.inbound.contact_request_supported:
        buttons.append(replace(t.button("proof:phone", "link.proof_phone"), request="contact"))
    if _amount_proof(t):
        buttons.append(t.button("proof:amount", "link.proof_amount"))
    if not buttons:
        t.say("link.no_proof_possible", phone=operator_phone(t))
        t.data.clear()
        return MENU_MAIN
    buttons.append(t.button("cmd:cancel", "common.cancel"))
    t.ask(t.tr("link.ask_proof"), buttons, ask="contact" if t.inbound.contact_request_supported else None)
    return None


async def _guard(t: Turn) -> tuple[str | None, str | None]:
    """Every proof step: the contract number being linked (known or not), unless the chat is
    locked, the customer cancels or shares a contact (then the returned state or check is where to go)."""
    number = LinkData.of(t).contract
    if not number:
        return None, LINK_CONTRACT
    until = await _locked_until(t)
    if until:
        return None, await _say_locked(t, until)
    if t.inbound.contact_phone:
        return None, await _check_contact(t, number)
    if t.choice() == "cmd:cancel":
        t.data.clear()
        return None, MENU_MAIN
    return number, None


@link.handle("proof", expects="number")
async def on_proof(t: Turn) -> str | None:
    number, redirect = await _guard(t)
    if number is None:
        return redirect
    picked = t.choice()
    if picked == "proof:amount":
        return LINK_AMOUNT
    if picked == "proof:phone":
        t.say("link.use_share_button")
        return AGAIN
    if t.text and _amount_proof(t):
        try:
            parse_amount(t.text)
        except ValueProblem:
            pass
        else:
            return await _check_amount(t, number)
    t.say("link.pick_proof")
    return AGAIN


async def _check_contact(t: Turn, number: str) -> str | None:
    """The customer's own contact (vouched by the channel): it links when it is the contract's
    phone, even when proof by amount is suspended on the contract."""
    if not t.inbound.contact_is_own:
        t.say("link.contact_not_own")
        return await _fail(t, "contact_not_own", number)
    try:
        phone = normalize_phone(t.inbound.contact_phone or "")
    except ValueProblem:
        phone = None
    contract = await t.tx.contract(number)
    if contract is None or phone is None or phone != contract.phone:
        t.say("link.phone_mismatch")
        return await _fail(t, "phone_mismatch", number)
    return await _linked(t, contract, "phone")


@link.prompt("amount")
async def ask_amount(t: Turn) -> str | None:
    t.ask(t.tr("link.ask_amount"), [t.button("cmd:cancel", "common.cancel")])
    return None


@link.handle("amount", expects="number")
async def on_amount(t: Turn) -> str | None:
    number, redirect = await _guard(t)
    if number is None:
        return redirect
    return await _check_amount(t, number)


async def _check_amount(t: Turn, number: str) -> str | None:
    try:
        typed = parse_amount(t.text)
    except ValueProblem:
        t.say("link.amount_format")
        return AGAIN
    if await _contract_locked(t, number):
        # Too many failed proofs on this number from all chats: the amount is not even compared.
        # (Sharing the phone is offered where the channel can share a contact: Telegram.)
        key = "link.amount_suspended" if t.inbound.contact_request_supported else "link.amount_suspended_call"
        t.say(key, phone=operator_phone(t))
        return await _fail(t, "contract_locked", number)
    contract = await t.tx.contract(number)
    bills = await t.tx.bills(contract.contract, limit=1) if contract is not None else []
    if contract is None or not bills or bills[0].amount != typed:
        t.say("link.amount_mismatch")
        return await _fail(t, "amount_mismatch", number)
    return await _linked(t, contract, "bill_amount")


async def _linked(t: Turn, contract: Contract, method: str) -> str:
    """Link the contract (and, on phone proof, the holder's other contracts with that phone)."""
    linked = [contract]
    if method == "phone":
        linked += [c for c in await t.tx.contracts_with_phone(contract.phone) if c.contract != contract.contract]
    for c in linked:
        await t.tx.link_chat(t.channel, t.user_id, c.contract, method, now=t.now)
        await t.tx.audit(
            "link_ok", channel=t.channel, user_id=t.user_id, contract=c.contract, details={"method": method}, now=t.now
        )
    legacy = LinkData.of(t).legacy
    if legacy:
        code, printed = legacy.split("\x1f", 1)
        was = t.profile.legacy_operator(code)
        t.say(
            "link.legacy_done",
            legacy_operator=was.name.get(t.lang) if was is not None else code,
            reference=t.tr.ltr(printed),
            contract=t.tr.ltr(contract.contract),
            operator=t.profile.operator.short_name.get(t.lang),
        )
    t.say("link.done", contract=contract_label(t, contract))
    if len(linked) > 1:
        t.say("link.also", contracts="\n".join("• " + contract_label(t, c) for c in linked[1:]))
    await offer_consent(t)  # reminders: asked once per chat at the next menu (conversations/reminders.py)
    t.consume_input()
    after = t.data.pop("after_link", None)
    LinkData.of(t).contract = None
    LinkData.of(t).phone = None
    LinkData.of(t).legacy = None
    t.data.pop("_choices", None)
    t.data.pop("_tags", None)
    return after or MENU_MAIN
