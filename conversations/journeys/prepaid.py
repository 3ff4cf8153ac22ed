"""Prepaid meters: an emergency consumption advance (profile policy) or a top-up visit.
Diagram: docs/flows/prepaid.md"""
from __future__ import annotations

from ..flow import AGAIN, Flow, Turn
from .common import contract_label, elsewhere, linked_contract, pick_contract

prepaid = Flow("prepaid")


async def _contract(t: Turn):
    return await linked_contract(t, "p_contract")


@prepaid.prompt("start", needs_link=True)
async def start(t: Turn) -> str | None:
    contracts = [c for c in await t.tx.linked_contracts(t.channel, t.user_id) if c.is_prepaid]
    if not contracts:
        t.say("prepaid.none_linked")
        return "menu.main"
    if len(contracts) == 1:
        t.data["p_contract"] = contracts[0].contract
        return "prepaid.option"
    t.ask(t.t("prepaid.which_contract"), [t.button(f"c:{c.contract}", "reading.contract_button",
                                                   contract=contract_label(t, c)) for c in contracts])
    return None


@prepaid.handle("start")
async def on_contract(t: Turn) -> str | None:
    return await pick_contract(t, "prepaid", "p_contract", "prepaid.option", "reading.pick_contract")


@prepaid.prompt("option")
async def ask_option(t: Turn) -> str | None:
    policy = t.profile.prepaid_advance
    t.ask(t.t("prepaid.ask_option"),
          [t.button("advance", "prepaid.opt_advance", kwh=t.t.number(policy.kwh)),
           t.button("visit", "prepaid.opt_visit"), t.button("cmd:cancel", "common.cancel")])
    return None


@prepaid.handle("option")
async def on_option(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "cmd:cancel":
        return "menu.main"
    contract = await _contract(t)
    if picked == "advance":
        policy = t.profile.prepaid_advance
        if policy.low_income_only and not contract.low_income:
            t.say("prepaid.advance_not_eligible")
            return "menu.main"
        this_year = [r for r in await t.tx.requests(contract=contract.contract, kinds=["prepaid_advance"])
                     if t.local(r.created_at).year == t.today.year and r.status not in ("rejected", "replaced", "cancelled")]
        if len(this_year) >= policy.max_per_year:
            t.say_text(t.t.n("prepaid.advance_limit", policy.max_per_year))
            return "menu.main"
        t.data["p_kind"] = "prepaid_advance"
        return "prepaid.confirm"
    if picked == "visit":
        t.data["p_kind"] = "prepaid_visit"
        return "prepaid.confirm"
    other = elsewhere(t, "prepaid")
    if other:
        return other
    t.say("prepaid.pick_option")
    return AGAIN


@prepaid.prompt("confirm")
async def ask_confirm(t: Turn) -> str | None:
    contract = await _contract(t)
    key = "prepaid.confirm_advance" if t.data["p_kind"] == "prepaid_advance" else "prepaid.confirm_visit"
    t.ask(t.t(key, contract=contract_label(t, contract), kwh=t.t.number(t.profile.prepaid_advance.kwh)), t.yes_no())
    return None


@prepaid.handle("confirm")
async def on_confirm(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "no":
        t.say("cancel.done")
        return "menu.main"
    if picked != "yes":
        t.say("common.answer_yes_no")
        return AGAIN
    contract = await _contract(t)
    kind = t.data["p_kind"]
    reference = await t.tx.next_reference("PP" if kind == "prepaid_advance" else "PV", t.today.year)
    await t.tx.add_request(reference=reference, kind=kind, contract=contract.contract, channel=t.channel,
                           user_id=t.user_id, lang=t.lang,
                           details={"kwh": t.profile.prepaid_advance.kwh} if kind == "prepaid_advance" else {},
                           now=t.now)
    await t.tx.audit("request_filed", channel=t.channel, user_id=t.user_id, contract=contract.contract,
                     details={"reference": reference, "kind": kind}, now=t.now)
    t.say("prepaid.recorded", reference=t.t.ltr(reference))
    t.data.pop("p_kind", None)
    t.data.pop("p_contract", None)
    return "menu.main"
