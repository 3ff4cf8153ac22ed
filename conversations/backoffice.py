"""Back-office decisions on requests, and the customer message each decision produces."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from storage import OutboxMessage, Request, Tx

from . import handoff, review
from .i18n import translator
from .profile import Profile


class BackOfficeError(Exception):
    """A decision that cannot be taken; the message says why in one line."""


async def decide(
    tx: Tx, reference: str, decision: str, *, note: str | None, actor: str, now: datetime | None = None
) -> Request:
    """Approve or reject a pending request and queue the customer's message, in one transaction.
    The outbox dedupe key makes a repeated decision queue nothing twice."""
    if decision not in ("approved", "rejected"):
        raise ValueError(decision)
    reference = reference.strip().upper()
    req = await tx.request(reference)
    if req is None:
        raise BackOfficeError(f"no request {reference}")
    if req.status != "pending":
        raise BackOfficeError(f"{reference} is {req.status}: only pending requests can be decided")
    if decision == "rejected" and not (note and note.strip()):
        raise BackOfficeError("a rejection needs --note (the customer is told why)")
    now = now or tx.now()
    await tx.set_request_status(reference, decision, expected="pending", decided_by=actor, note=note, now=now)
    payload: dict[str, Any] = {"decision": decision, "reference": reference, "kind": req.kind, "note": note}
    if decision == "approved":
        # What was granted travels with the message: the customer is told the dates to pay.
        if req.lines:
            payload["lines"] = [[line.seq, line.due_date.isoformat(), line.amount] for line in req.lines]
        if req.defer_until:
            payload["defer_until"] = req.defer_until.isoformat()
    await tx.enqueue_outbox(
        channel=req.channel,
        user_id=req.user_id,
        lang=req.lang,
        kind="request_decision",
        payload=payload,
        dedupe_key=f"decision:{reference}",
        now=now,
    )
    await tx.audit(
        f"request_{decision}",
        actor=actor,
        contract=req.contract,
        details={"reference": reference, "note": note},
        now=now,
    )
    decided = await tx.request(reference)
    if decided is None:  # (read back in the same transaction: only a store that lost it)
        raise BackOfficeError(f"{reference}: not found after the decision")
    return decided


def render_outbox(msg: OutboxMessage, profile: Profile) -> str:
    """An outbox message as text in the customer's language."""
    t = translator(msg.lang)
    p = msg.payload
    if msg.kind == "request_decision":
        granted = ""
        if p.get("lines"):
            # Schedule lines are bulleted, never "1." : a channel without buttons numbers its choices.
            granted = (
                "\n"
                + t("decision.schedule")
                + "".join(
                    "\n"
                    + t(
                        "facilities.schedule_line",
                        seq=t.number(seq),
                        date=t.date(date.fromisoformat(day)),
                        amount=t.money(amount),
                    )
                    for seq, day, amount in p["lines"]
                )
            )
        elif p.get("defer_until"):
            granted = "\n" + t("decision.deferral_until", date=t.date(date.fromisoformat(p["defer_until"])))
        elif p["decision"] == "approved" and p["kind"] == "prepaid_advance" and profile.prepaid_advance.delivery:
            granted = "\n" + t("prepaid.advance_how", delivery=profile.prepaid_advance.delivery.get(t.lang))
        note = granted + (t("decision.note", note=p["note"]) if p.get("note") else "")
        return t(
            f"decision.{p['decision']}",
            reference=t.ltr(p["reference"]),
            kind=t(f"request.kind_{p['kind']}"),
            note=note,
            phone=t.ltr(profile.contact.phones[0]),
        )
    if msg.kind == "reply":
        return p["text"]  # a conversation reply the channel failed to send at once
    if msg.kind == review.OUTBOX_KIND:
        return review.render(msg, profile)
    if msg.kind in handoff.OUTBOX_KINDS:
        return handoff.render(msg, profile)
    if msg.kind in ("reminder", "notice"):
        from .reminders import render  # (reminders import this module's neighbours)

        return render(msg, profile)
    raise ValueError(f"unknown outbox kind {msg.kind!r}")
