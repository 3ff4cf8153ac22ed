"""Issue 20: the back office's review of flagged customer readings (outliers, rollovers,
readings that replace another of the cycle), and the message each outcome sends the customer.

`review` is the one way to decide, for the CLI (`addad readings review`) and the workspace: one
transaction, the outcome kept once (a second review is refused), an audit entry with the actor,
and the customer told on his channel, in his language, through the outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage import OutboxMessage, Tx
from storage.review_records import ReviewItem

from .i18n import translator
from .profile import Profile
from .tariff import prebill

OUTCOMES = ("accepted", "corrected", "rejected")
OUTBOX_KIND = "reading_review"


class ReviewError(Exception):
    """A review that cannot be made; the message says why in one line (English, for the
    operator; the workspace shows its own translation by `code`)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def parse_index(text: str) -> int:
    """An index typed by an agent: digits only (spaces allowed), else ReviewError."""
    cleaned = "".join(str(text).split())
    if not cleaned.isdigit() or not cleaned.isascii():
        raise ReviewError(f"the index must be digits only, not {str(text)[:20]!r}", "index_digits")
    return int(cleaned)


async def review(
    tx: Tx,
    reading_id: int,
    outcome: str,
    *,
    actor: str,
    profile: Profile,
    note: str | None = None,
    index: int | None = None,
    now: datetime | None = None,
) -> ReviewItem:
    """Accept, correct (to `index`) or reject (with a `note` for the customer) a customer reading."""
    if outcome not in OUTCOMES:
        raise ValueError(outcome)
    note = (note or "").strip() or None
    item = await tx.review_item(reading_id)
    if item is None:
        raise ReviewError(f"no customer reading {reading_id}", "unknown")
    r = item.reading
    if item.outcome is not None:
        when = profile.local(item.reviewed_at).strftime("%Y-%m-%d %H:%M") if item.reviewed_at else "?"
        raise ReviewError(
            f"reading {reading_id} was already reviewed ({item.outcome} by {item.reviewed_by} on {when})", "reviewed"
        )
    if r.status != "valid":
        raise ReviewError(f"reading {reading_id} was replaced by a later one: review that one", "replaced")
    if outcome == "rejected" and note is None:
        raise ReviewError("a rejection needs --note (the customer is told why)", "note_needed")
    now = now or tx.now()
    payload: dict[str, Any] = {"outcome": outcome, "reference": r.reference, "index": r.index_value, "note": note}
    consumption, rollover = r.consumption, r.rollover
    if outcome == "corrected":
        if index is None:
            raise ReviewError("a correction needs the index", "index_digits")
        limit = 10**item.meter_digits
        if not 0 <= index < limit:
            raise ReviewError(
                f"the meter has {item.meter_digits} dials: the index must be below {limit}", "index_range"
            )
        if index == r.index_value:
            raise ReviewError(f"the index is already {index}: accept the reading instead", "index_same")
        consumption, rollover = None, False
        if r.previous_index is not None:
            rollover = index < r.previous_index  # the dials went past zero, as the customer's own check reads it
            consumption = (index - r.previous_index) % limit
        payload.update(corrected=index, consumption=consumption, service=item.service)
        if consumption is not None and r.previous_date is not None and r.reading_date > r.previous_date:
            try:  # what the period would cost at this index (skipped if the profile lacks the tariff)
                bill = prebill(profile.tariff(item.tariff), r.previous_date, r.reading_date, consumption)
                payload["amount"] = bill.total_ttc
            except (KeyError, ValueError):
                pass
    await tx.record_review(
        reading_id,
        outcome,
        actor=actor,
        note=note,
        original_index=r.index_value,
        index=index if outcome == "corrected" else None,
        consumption=consumption,
        rollover=rollover,
        now=now,
    )
    if r.channel and r.user_id:
        lang = await _chat_lang(tx, r.channel, r.user_id)
        await tx.enqueue_outbox(
            channel=r.channel,
            user_id=r.user_id,
            lang=lang,
            kind=OUTBOX_KIND,
            payload=payload,
            dedupe_key=f"review:{reading_id}",
            now=now,
        )
    await tx.audit(
        f"reading_{outcome}",
        actor=actor,
        channel=r.channel,
        user_id=r.user_id,
        contract=r.contract,
        details={
            "reading": reading_id,
            "reference": r.reference,
            "index": r.index_value,
            "corrected": index,
            "note": note,
        },
        now=now,
    )
    done = await tx.review_item(reading_id)
    assert done is not None
    return done


async def _chat_lang(tx: Tx, channel: str, user_id: str) -> str:
    session = await tx.load_session(channel, user_id)
    return (session.lang if session else None) or "fr"


def render(msg: OutboxMessage, profile: Profile) -> str:
    """A review's outcome as the customer reads it."""
    t = translator(msg.lang)
    p = msg.payload
    note = t("review.note", note=p["note"]) if p.get("note") else ""
    reference, index = t.ltr(p["reference"]), t.ltr(p["index"])
    if p["outcome"] == "accepted":
        return t("review.accepted", reference=reference, index=index) + note
    if p["outcome"] == "corrected":
        text = t("review.corrected", reference=reference, index=index, corrected=t.ltr(p["corrected"]))
        if p.get("consumption") is not None:
            text += "\n" + t(
                "review.consumption", used=t.number(p["consumption"]), unit=t(f"unit.{p.get('service', 'electricity')}")
            )
        if p.get("amount") is not None:
            text += "\n" + t("review.amount", amount=t.money(p["amount"]))
        return text + note
    return t("review.rejected", reference=reference, index=index) + note + "\n" + t("review.send_again")
