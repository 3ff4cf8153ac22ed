"""Bills and balance. Diagram: docs/flows/bills.md"""
from __future__ import annotations

from ..flow import Flow, Turn
from .common import contract_label

bills = Flow("bills")


@bills.prompt("start", needs_link=True)
async def balance(t: Turn) -> str | None:
    """Every linked contract's unpaid bills and the total due."""
    total = 0
    for c in await t.tx.linked_contracts(t.channel, t.user_id):
        unpaid = await t.tx.bills(c.contract, unpaid_only=True)
        if not unpaid:
            t.say("bills.none_due", contract=contract_label(t, c))
            continue
        lines = []
        for b in sorted(unpaid, key=lambda b: b.period_end):
            overdue = b.due_date < t.today
            lines.append(t.t("bills.line_overdue" if overdue else "bills.line",
                             period=t.t.month(b.period_end), amount=t.t.money(b.due),
                             due=t.t.date(b.due_date),
                             estimated=t.t("bills.estimated") if b.estimated else t.t("bills.read")))
        subtotal = sum(b.due for b in unpaid)
        total += subtotal
        t.say_text(t.t.n("bills.unpaid_header", len(unpaid), contract=contract_label(t, c)) + "\n" +
                   "\n".join(lines) + "\n" + t.t("bills.subtotal", amount=t.t.money(subtotal)))
    if total:
        t.say("bills.total", amount=t.t.money(total))
        channels = "\n".join(t.t("bills.pay_channel", name=c.name.get(t.lang), how=c.how.get(t.lang))
                             for c in t.profile.payment_channels)
        t.say("bills.where_to_pay", channels=channels)
    return "menu.main"
