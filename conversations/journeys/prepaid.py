"""Prepaid meters: an emergency consumption advance (profile policy) or a top-up visit.
Diagram: docs/flows/prepaid.md"""

from __future__ import annotations

from storage import Request

from ..flow import AGAIN, ContractData, Field, Flow, MenuItem, Turn, ref, take
from .common import contract_button, contract_label, elsewhere, linked_contract, pick_contract
from .filing import file_request
from .tracking import describe_request

prepaid = Flow(
    "prepaid",
    states=("start", "option", "pending", "confirm"),
    intents=("prepaid",),
    menu=MenuItem(4, "menu.prepaid"),
    pausable=True,
    request=True,
)
PREPAID_START = prepaid.state("start")
PREPAID_OPTION = prepaid.state("option")
PREPAID_PENDING = prepaid.state("pending")
PREPAID_CONFIRM = prepaid.state("confirm")

MENU_MAIN = ref("menu.main")


class PrepaidData(ContractData):
    """What the prepaid journey has gathered (the request kind, a pending one to replace)."""

    key = "prepaid"
    kind = Field[str]()
    pending = Field[str]()
    replaces = Field[str]()


async def _contract(t: Turn):
    return await linked_contract(t, PrepaidData.of(t).contract)


def advance_delivery(t: Turn) -> list[str]:
    """How and when a granted advance reaches the meter, as far as the profile says."""
    policy = t.profile.prepaid_advance
    lines = []
    if policy.decision_hours:
        lines.append(t.tr("prepaid.advance_when", hours=t.tr.n("prepaid.hours", policy.decision_hours)))
    if policy.delivery is not None:
        lines.append(t.tr("prepaid.advance_how", delivery=policy.delivery.get(t.lang)))
    return lines


@prepaid.prompt("start", needs_link=True)
async def start(t: Turn) -> str | None:
    PrepaidData.of(t).clear()  # nothing from an earlier, interrupted request (a replacement) carries over
    contracts = [c for c in await t.tx.linked_contracts(t.channel, t.user_id) if c.is_prepaid]
    if not contracts:
        t.say("prepaid.none_linked")
        return MENU_MAIN
    if len(contracts) == 1:
        PrepaidData.of(t).contract = contracts[0].contract
        return PREPAID_OPTION
    t.ask(
        t.tr("prepaid.which_contract"),
        [contract_button(t, c, "reading.contract_button", contract=contract_label(t, c)) for c in contracts],
    )
    return None


@prepaid.handle("start")
async def on_contract(t: Turn) -> str | None:
    return await pick_contract(t, "prepaid", PrepaidData.of(t), PREPAID_OPTION, "reading.pick_contract")


@prepaid.prompt("option")
async def ask_option(t: Turn) -> str | None:
    policy = t.profile.prepaid_advance
    t.ask(
        t.tr("prepaid.ask_option"),
        [
            t.button("advance", "prepaid.opt_advance", kwh=t.tr.number(policy.kwh)),
            t.button("visit", "prepaid.opt_visit"),
            t.button("cmd:cancel", "common.cancel"),
        ],
    )
    return None


async def _within_limit(t: Turn, contract) -> bool:
    """This year's advances (the one being replaced aside) are under the policy's maximum."""
    policy = t.profile.prepaid_advance
    this_year = [
        r
        for r in await t.tx.requests(contract=contract.contract, kinds=["prepaid_advance"])
        if t.local(r.created_at).year == t.today.year
        and r.status not in ("rejected", "replaced", "cancelled")
        and r.reference != PrepaidData.of(t).replaces
    ]
    if len(this_year) >= policy.max_per_year:
        t.say_text(t.tr.n("prepaid.advance_limit", policy.max_per_year))
        return False
    return True


@prepaid.handle("option")
async def on_option(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "cmd:cancel":
        return MENU_MAIN
    contract = await _contract(t)
    if picked == "advance":
        policy = t.profile.prepaid_advance
        if policy.low_income_only and not contract.low_income:
            t.say("prepaid.advance_not_eligible")
            return MENU_MAIN
        PrepaidData.of(t).kind = "prepaid_advance"
    elif picked == "visit":
        PrepaidData.of(t).kind = "prepaid_visit"
    else:
        other = elsewhere(t, "prepaid")
        if other:
            return other
        t.say("prepaid.pick_option")
        return AGAIN
    # A second request while one of the same kind waits (the same day, a double tap) is never
    # filed beside it: the customer tracks the pending one or replaces it.
    kind = PrepaidData.of(t).kind
    if kind is None:  # (set just above: a session from elsewhere)
        return PREPAID_START
    pending = await t.tx.requests(status="pending", contract=contract.contract, kinds=[kind])
    if pending:
        PrepaidData.of(t).pending = pending[-1].reference
        return PREPAID_PENDING
    if kind == "prepaid_advance" and not await _within_limit(t, contract):
        return MENU_MAIN
    return PREPAID_CONFIRM


async def _pending(t: Turn) -> Request | None:
    """The pending request of the same kind the customer may track or replace."""
    reference = PrepaidData.of(t).pending
    return await t.tx.request(reference) if reference else None


@prepaid.prompt("pending")
async def ask_pending(t: Turn) -> str | None:
    request = await _pending(t)
    if request is None:  # (requests are never deleted: a session pointing nowhere starts again)
        PrepaidData.of(t).clear()
        return PREPAID_START
    t.ask(
        t.tr(
            "prepaid.pending_question",
            reference=t.tr.ltr(request.reference),
            kind=t.tr(f"request.kind_{request.kind}"),
            date=t.tr.date(request.created_at.date()),
        ),
        [
            t.button("track", "prepaid.track_pending"),
            t.button("replace", "prepaid.replace_pending"),
            t.button("cmd:cancel", "common.cancel"),
        ],
    )
    return None


@prepaid.handle("pending")
async def on_pending(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "cmd:cancel":
        PrepaidData.of(t).clear()
        return MENU_MAIN
    if picked == "track":
        request = await _pending(t)
        if request is None:
            PrepaidData.of(t).clear()
            return PREPAID_START
        lines = [describe_request(t, request)]
        if request.kind == "prepaid_advance":
            lines += advance_delivery(t)
        t.say_text("\n".join(lines))
        PrepaidData.of(t).clear()
        return MENU_MAIN
    if picked == "replace":
        PrepaidData.of(t).replaces = take(PrepaidData.of(t), PrepaidData.pending)
        if PrepaidData.of(t).kind == "prepaid_advance" and not await _within_limit(t, await _contract(t)):
            PrepaidData.of(t).clear()
            return MENU_MAIN
        return PREPAID_CONFIRM
    other = elsewhere(t, "prepaid")
    if other:
        return other
    t.say("prepaid.pick_pending")
    return AGAIN


@prepaid.prompt("confirm")
async def ask_confirm(t: Turn) -> str | None:
    contract = await _contract(t)
    advance = PrepaidData.of(t).kind == "prepaid_advance"
    key = "prepaid.confirm_advance" if advance else "prepaid.confirm_visit"
    lines = [t.tr(key, contract=contract_label(t, contract), kwh=t.tr.number(t.profile.prepaid_advance.kwh))]
    if advance:
        lines += advance_delivery(t)  # how and when, before the customer commits
    if PrepaidData.of(t).replaces:
        lines.append(t.tr("prepaid.summary_replaces", reference=t.tr.ltr(PrepaidData.of(t).replaces)))
    t.ask("\n".join([*lines, t.tr("prepaid.confirm_question")]), t.yes_no())
    return None


@prepaid.handle("confirm", records=True)
async def on_confirm(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "no":
        PrepaidData.of(t).clear()
        t.say("cancel.done")
        return MENU_MAIN
    if picked != "yes":
        t.say("common.answer_yes_no")
        return AGAIN
    contract = await _contract(t)
    kind = PrepaidData.of(t).kind
    if kind is None:
        return PREPAID_START
    replaced = PrepaidData.of(t).replaces
    if replaced and not await t.tx.set_request_status(replaced, "replaced", expected="pending", now=t.now):
        # Decided while the customer was confirming: not replaced, and nothing filed beside it.
        t.say("prepaid.pending_decided", reference=t.tr.ltr(replaced))
        PrepaidData.of(t).clear()
        return MENU_MAIN
    details: dict[str, object] = {"kwh": t.profile.prepaid_advance.kwh} if kind == "prepaid_advance" else {}
    if replaced:
        details["replaces"] = replaced
    reference = await file_request(t, kind, contract=contract.contract, replaces=replaced, details=details)
    t.say_text(
        "\n".join(
            [t.tr("prepaid.recorded", reference=t.tr.ltr(reference))]
            + (advance_delivery(t)[:1] if kind == "prepaid_advance" else [])
        )
    )
    PrepaidData.of(t).clear()
    return MENU_MAIN
