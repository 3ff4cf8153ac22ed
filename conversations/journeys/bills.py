"""Bills and balance. Diagram: docs/flows/bills.md

balance (every linked contract: unpaid bills with their reference, those under an approved plan as
such; sub-total, last payment; total; where to pay) →
pick a bill → how it was computed (index from → to, consumption, bands, fees, VAT, billed
amount) → for an estimated bill, an offer to send the real index now.
"""

from __future__ import annotations

from storage import Bill, Contract, Request

from ..flow import AGAIN, ContractData, Field, Flow, MenuItem, Turn, ref
from ..tariff import prebill
from . import usage
from .common import contract_label, linked_contract, operator_phone
from .menu import on_menu
from .pricing import breakdown_lines
from .reading import ReadingData

bills = Flow("bills", states=("start", "estimated"), intents=("balance",), menu=MenuItem(2, "menu.bills"), request=True)
BILLS_START = bills.state("start")
BILLS_ESTIMATED = bills.state("estimated")

MENU_MAIN = ref("menu.main")
READING_START = ref("reading.start")


class BillsData(ContractData):
    """The bills shown (button index → bill number) and the contract of an estimated one."""

    key = "bills"
    listed = Field[dict[str, str]]()


MAX_DETAIL_BUTTONS = 8  # with "Menu" it fits a WhatsApp list (10 rows)


@bills.prompt("start", needs_link=True)
async def balance(t: Turn) -> str | None:
    """Every linked contract's unpaid bills and the total due, then bills to explain."""
    BillsData.of(t).clear()
    total = 0
    explainable: list[tuple[Contract, Bill]] = []
    for c in await t.tx.linked_contracts(t.channel, t.user_id):
        recent = await t.tx.bills(c.contract, limit=24)
        unpaid = sorted((b for b in recent if b.unpaid), key=lambda b: b.period_end)
        # Bills carry no payment date: the newest bill with a payment is all that is known, and said so.
        paid = next((b for b in recent if b.paid_amount > 0), None)
        last_payment = (
            t.tr("bills.last_payment", amount=t.tr.money(paid.paid_amount), period=t.tr.of_month(paid.period_end))
            if paid
            else t.tr("bills.no_payment")
        )
        if not unpaid:
            t.say_text(t.tr("bills.none_due", contract=contract_label(t, c)) + "\n" + last_payment)
            if recent:
                explainable.append((c, recent[0]))  # "how was my last bill computed?" still makes sense
            continue
        plans = await _granted_facilities(t, c)
        lines = [
            _bill_line(t, b, plans.get(b.bill_number)) + "\n" + t.tr("bills.reference", number=t.tr.ltr(b.bill_number))
            for b in unpaid
        ]
        subtotal = sum(b.due for b in unpaid)
        total += subtotal
        t.say_text(
            t.tr.n("bills.unpaid_header", len(unpaid), contract=contract_label(t, c))
            + "\n"
            + "\n".join(lines)
            + "\n"
            + t.tr("bills.subtotal", amount=t.tr.money(subtotal))
            + "\n"
            + last_payment
        )
        explainable += [(c, b) for b in reversed(unpaid)]
    if total:
        t.say("bills.total", amount=t.tr.money(total))
        channels = "\n".join(
            t.tr("bills.pay_channel", name=c.name.get(t.lang), how=c.how.get(t.lang))
            for c in t.profile.payment_channels
        )
        t.say("bills.where_to_pay", channels=channels)
    if not explainable:
        return MENU_MAIN
    several = len({c.contract for c, _ in explainable}) > 1
    buttons = []
    listed: dict[str, str] = {}
    BillsData.of(t).listed = listed
    for i, (c, b) in enumerate(explainable[:MAX_DETAIL_BUTTONS]):
        # Payloads carry a position, not the bill number: data files may hold any characters.
        listed[str(i)] = b.bill_number
        buttons.append(
            t.button(
                f"bill:{i}",
                "bills.detail_button_contract" if several else "bills.detail_button",
                period=t.tr.month_short(b.period_end) if several else t.tr.month(b.period_end),
                contract=t.tr.ltr(c.contract),
            )
        )
    t.ask(t.tr("bills.detail_prompt"), [*buttons, t.button("cmd:menu", "common.menu")])
    return None


async def _granted_facilities(t: Turn, c: Contract) -> dict[str, Request]:
    """Approved instalment plans and deferrals of a contract, by the bill numbers they cover
    (the request lists them); a later approval wins."""
    granted: dict[str, Request] = {}
    for r in await t.tx.requests(status="approved", contract=c.contract, kinds=("instalment", "deferral")):
        for number in r.details.get("bills") or ():
            granted[number] = r
    return granted


def _bill_line(t: Turn, b: Bill, plan: Request | None) -> str:
    """An unpaid bill: under a plan still running it is not overdue, the plan says when to pay."""
    common = {"period": t.tr.month(b.period_end), "amount": t.tr.money(b.due)}
    if plan is not None and plan.kind == "instalment":
        upcoming = next((line for line in plan.lines if line.due_date >= t.today), None)
        if upcoming is not None:
            return t.tr(
                "bills.line_instalment",
                **common,
                reference=t.tr.ltr(plan.reference),
                date=t.tr.date(upcoming.due_date),
                instalment=t.tr.money(upcoming.amount),
            )
    if plan is not None and plan.kind == "deferral" and plan.defer_until and plan.defer_until >= t.today:
        return t.tr(
            "bills.line_deferred", **common, reference=t.tr.ltr(plan.reference), date=t.tr.date(plan.defer_until)
        )
    return t.tr(
        "bills.line_overdue" if b.due_date < t.today else "bills.line",
        **common,
        due=t.tr.date(b.due_date),
        estimated=t.tr("bills.estimated") if b.estimated else t.tr("bills.read"),
    )


@bills.handle("start")
async def on_pick(t: Turn) -> str | None:
    picked = t.choice()
    if picked is None or not picked.startswith("bill:"):
        return await on_menu(t)  # any other request works from here as from the menu
    number = (BillsData.of(t).listed or {}).get(picked[5:])
    bill = await t.tx.bill(number) if number else None
    if bill is None or not await t.tx.is_linked(t.channel, t.user_id, bill.contract):
        t.say("input.stale_button")
        return BILLS_START
    contract = await t.tx.contract(bill.contract)
    if contract is None:  # (a bill references its contract: never, but never act on a guess)
        t.say("input.stale_button")
        return BILLS_START
    t.say_text(explain(t, contract, bill))
    if not bill.estimated:
        usage.offer(t, contract)  # 📊 this meter's 13 months
    if bill.estimated and not contract.is_prepaid:
        BillsData.of(t).contract = contract.contract
        t.ask(t.tr("bills.estimated_offer", index=t.tr.ltr(bill.index_end)), t.yes_no())
        return BILLS_ESTIMATED
    return MENU_MAIN


def explain(t: Turn, contract: Contract, bill: Bill) -> str:
    """How a bill was computed, from its own figures and the profile's tariff."""
    unit = t.tr(f"unit.{contract.service}")
    lines = [
        t.tr(
            "bills.detail_header",
            number=t.tr.ltr(bill.bill_number),
            contract=contract_label(t, contract),
            start=t.tr.date(bill.period_start),
            end=t.tr.date(bill.period_end),
        ),
        t.tr(
            "bills.detail_index",
            start=t.tr.ltr(bill.index_start),
            end=t.tr.ltr(bill.index_end),
            kind=t.tr("bills.estimated") if bill.estimated else t.tr("bills.read"),
        ),
        t.tr("bills.detail_consumption", units=t.tr.number(bill.consumption), unit=unit),
    ]
    try:
        tariff = t.profile.tariff(contract.tariff)
    except KeyError:
        tariff = None
    if tariff is not None:
        computed = prebill(tariff, bill.period_start, bill.period_end, bill.consumption)
        lines.append(t.tr("bills.detail_tariff", tariff=tariff.name.get(t.lang)))
        lines += breakdown_lines(t, tariff, computed)
        lines.append(t.tr("bills.detail_computed", amount=t.tr.money(computed.total_ttc)))
    lines.append(
        t.tr(
            "bills.detail_billed",
            amount=t.tr.money(bill.amount),
            paid=t.tr.money(bill.paid_amount),
            due=t.tr.money(bill.due),
        )
    )
    if tariff is not None and computed.total_ttc != bill.amount:
        # Regularisations, local taxes or an older tariff are on the bill but not in the profile: say so.
        lines.append(
            t.tr(
                "bills.detail_differs",
                difference=t.tr.money(abs(bill.amount - computed.total_ttc)),
                phone=operator_phone(t),
            )
        )
    return "\n".join(lines)


@bills.handle("estimated")
async def on_estimated_offer(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "yes":
        contract = await linked_contract(t, BillsData.of(t).contract)
        if contract is None:
            return MENU_MAIN
        ReadingData.of(t).wanted = contract.contract  # reading.start takes it instead of asking
        BillsData.of(t).clear()
        return READING_START
    if picked == "no":
        BillsData.of(t).clear()
        t.say("bills.estimated_later")
        return MENU_MAIN
    if t.understood is not None and t.understood.entities.get("index") is not None:
        contract = await linked_contract(t, BillsData.of(t).contract)
        if contract is not None:  # the customer typed the index straight away
            ReadingData.of(t).wanted = contract.contract
            BillsData.of(t).clear()
            return READING_START
    t.say("common.answer_yes_no")
    return AGAIN
