"""Issue 20: a customer handed to a human. Asking for an adviser (the `agent` intent, the
menu's contact entry) puts the chat in the handoff queue; an agent takes it, reads its recent
conversation (masked), writes to the customer through the bot (the outbox) and hands it back.
While an agent has the chat the bot answers nothing there (the messages are kept for him); a
hand-back, or the agent's silence for `IDLE`, returns the chat to the bot, and the customer is
told both times. A waiting chat can also be closed without being taken (`dismiss`; the customer
is told). The timeout and the log's length are the profile's `[handoff]` settings (`IDLE` and
`KEEP_LINES` are their defaults). The functions below serve the engine, `addad handoff`
(bot/handoff_cli.py) and the workspace alike."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from storage import OutboxMessage, Tx
from storage.review_records import ChatLine, Handoff

from .i18n import translator
from .profile import HandoffPolicy, Profile

if TYPE_CHECKING:
    from .events import Inbound, Reply
    from .flow import Turn

_DEFAULT = HandoffPolicy()
IDLE = timedelta(minutes=_DEFAULT.agent_timeout_minutes)  # an agent silent this long gives the chat back
KEEP_LINES = _DEFAULT.chat_log_lines  # messages an agent reads per chat; the rest go at the daily prune
MAX_AGENT_TEXT = 2000
OUTBOX_KINDS = ("handoff", "agent_message")


class HandoffError(Exception):
    """An action on a handoff that cannot be done; the message says why in one line, `code`
    names it for the workspace's translation."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


# A Moroccan phone number in any usual spelling, and a long run of digits (a contract number).
_PHONE = re.compile(r"(?<!\d)(?:(?:\+|00)\s*212[\s.-]*0?|0)[5-7](?:[\s.-]*\d){8}(?!\d)")
_LONG = re.compile(r"(?<!\d)\d(?:[\s.-]?\d){6,}(?!\d)")


def _hide(text: str, keep: int, first: int = 0) -> str:
    """Every digit of `text` as •, but its first `first` and its last `keep`."""
    digits = sum(c.isdigit() for c in text)
    out, seen = [], 0
    for c in text:
        if c.isdigit():
            seen += 1
            out.append(c if seen <= first or seen > digits - keep else "•")
        else:
            out.append(c)
    return "".join(out)


def _hide_phone(text: str) -> str:
    """The prefix and the mobile's first digit (06, +212 6) and the last two digits shown."""
    digits = sum(c.isdigit() for c in text)
    return _hide(text, 2, first=digits - 9 + 1)


def mask(text: str) -> str:
    """A chat line as an agent may read it: phone numbers hidden but their prefix and last two
    digits, other numbers of seven digits or more (contracts, bills) but their last three."""
    text = _PHONE.sub(lambda m: _hide_phone(m.group(0)), text)
    return _LONG.sub(lambda m: _hide(m.group(0), 3), text)


def idle_after(profile: Profile | None) -> timedelta:
    """The profile's agent timeout (today's 30 minutes without one)."""
    return timedelta(minutes=profile.handoff.agent_timeout_minutes) if profile is not None else IDLE


def keep_lines(profile: Profile | None) -> int:
    return profile.handoff.chat_log_lines if profile is not None else KEEP_LINES


# ------------------------------------------------------------------ the customer's side (engine)
async def request(t: Turn) -> bool:
    """The chat joins the queue (once: True if it was not waiting already)."""
    linked = await t.tx.linked_contracts(t.channel, t.user_id)
    opened = await t.tx.open_handoff(
        t.channel, t.user_id, lang=t.lang, contract=linked[0].contract if linked else None, now=t.now
    )
    if opened is not None:
        await t.tx.audit("handoff_requested", channel=t.channel, user_id=t.user_id, now=t.now)
    return opened is not None


async def with_agent(t: Turn) -> bool:
    """True if an agent has this chat: the bot says nothing (the engine skips the turn; the
    message is in the chat's log for the agent). An agent silent for IDLE has given it back:
    the handoff closes, the customer is told, and the bot answers this message."""
    h = await t.tx.chat_handoff(t.channel, t.user_id)
    if h is None or h.status != "taken":
        return False
    if t.now - (h.last_agent_at or h.taken_at or h.requested_at) <= idle_after(t.profile):
        return True
    if await t.tx.update_handoff(
        h.id, expected="taken", status="closed", closed_at=t.now, closed_by="system", close_reason="timeout"
    ):
        await t.tx.audit("handoff_timeout", actor="system", channel=t.channel, user_id=t.user_id, now=t.now)
        t.say("handoff.timeout")
    return False


def _inbound_text(inbound: Inbound) -> str:
    if inbound.text:
        return inbound.text
    if inbound.photo_ref:
        return "[photo]"
    if inbound.contact_phone:
        return "[contact] " + inbound.contact_phone
    if inbound.payload:
        return f"[{inbound.payload}]"
    return "[?]"


async def log_turn(
    tx: Tx, inbound: Inbound, replies: Sequence[Reply], now: datetime, profile: Profile | None = None
) -> None:
    """The customer's message and the bot's replies (one line for the turn's replies) into the
    chat's recent log. This runs on every turn: the lines are masked when an agent reads them
    (`conversation`), not here."""
    lines: list[tuple[str, str | None, str]] = [("customer", None, _inbound_text(inbound)[:MAX_AGENT_TEXT])]
    said = "\n\n".join(r.text for r in replies if r.text)
    if said:
        lines.append(("bot", None, said[:MAX_AGENT_TEXT]))
    await tx.log_chat(inbound.channel, inbound.user_id, lines, now=now)


# ------------------------------------------------------------------ the agent's side
def idle(h: Handoff, now: datetime, profile: Profile | None = None) -> bool:
    """A taken chat whose agent has been silent for longer than the profile's timeout."""
    return h.status == "taken" and now - (h.last_agent_at or h.taken_at or h.requested_at) > idle_after(profile)


async def expire(tx: Tx, now: datetime, profile: Profile | None = None) -> int:
    """Close the taken handoffs whose agent has been silent too long, telling each customer."""
    closed = 0
    for h in await tx.handoffs(statuses=("taken",)):
        if idle(h, now, profile) and await tx.update_handoff(
            h.id, expected="taken", status="closed", closed_at=now, closed_by="system", close_reason="timeout"
        ):
            await _tell(tx, h, "timeout", now)
            await tx.audit("handoff_timeout", actor="system", channel=h.channel, user_id=h.user_id, now=now)
            closed += 1
    return closed


async def queue(tx: Tx, now: datetime, profile: Profile | None = None) -> list[Handoff]:
    """The open handoffs, oldest first, after closing those timed out."""
    await expire(tx, now, profile)
    return await tx.handoffs()


async def _open(tx: Tx, handoff_id: int) -> Handoff:
    h = await tx.handoff(handoff_id)
    if h is None:
        raise HandoffError(f"no handoff {handoff_id}", "unknown")
    return h


async def take(tx: Tx, handoff_id: int, *, actor: str, now: datetime, profile: Profile | None = None) -> Handoff:
    """The agent takes the chat: the bot goes quiet on it; the customer is told."""
    await expire(tx, now, profile)
    h = await _open(tx, handoff_id)
    if h.status == "taken" and h.taken_by == actor:
        return h
    if h.status != "waiting":
        who = f" by {h.taken_by}" if h.status == "taken" else ""
        raise HandoffError(f"handoff {handoff_id} is {h.status}{who}", h.status)
    if not await tx.update_handoff(h.id, expected="waiting", status="taken", taken_by=actor, taken_at=now):
        raise HandoffError(f"handoff {handoff_id} was taken meanwhile", "taken")
    await _tell(tx, h, "taken", now)
    await tx.audit("handoff_taken", actor=actor, channel=h.channel, user_id=h.user_id, contract=h.contract, now=now)
    return await _open(tx, handoff_id)


async def _held_by(tx: Tx, handoff_id: int, actor: str, now: datetime, profile: Profile | None) -> Handoff:
    await expire(tx, now, profile)
    h = await _open(tx, handoff_id)
    if h.status != "taken" or h.taken_by != actor:
        state = "closed" if h.status == "closed" else ("taken" if h.status == "taken" else "not_taken")
        raise HandoffError(f"handoff {handoff_id} is not yours (it is {h.status})", state)
    return h


async def say(
    tx: Tx, handoff_id: int, text: str, *, actor: str, now: datetime, profile: Profile | None = None
) -> Handoff:
    """The agent's message, sent to the customer by the bot's channel (the outbox)."""
    text = (text or "").strip()
    if not text:
        raise HandoffError("an empty message is not sent", "empty")
    if len(text) > MAX_AGENT_TEXT:
        raise HandoffError(f"a message is at most {MAX_AGENT_TEXT} characters", "too_long")
    h = await _held_by(tx, handoff_id, actor, now, profile)
    await tx.update_handoff(h.id, expected="taken", last_agent_at=now)
    await tx.enqueue_outbox(
        channel=h.channel,
        user_id=h.user_id,
        lang=await _lang(tx, h),
        kind="agent_message",
        payload={"text": text},
        now=now,
    )
    await tx.log_chat(h.channel, h.user_id, [("agent", actor, text)], now=now)
    await tx.audit("handoff_message", actor=actor, channel=h.channel, user_id=h.user_id, now=now)
    return await _open(tx, handoff_id)


async def hand_back(tx: Tx, handoff_id: int, *, actor: str, now: datetime) -> Handoff:
    """The chat returns to the bot; the customer is told. A chat nobody took is dismissed."""
    h = await _open(tx, handoff_id)
    if h.status == "closed":
        raise HandoffError(f"handoff {handoff_id} is closed already", "closed")
    if h.status == "waiting":
        return await dismiss(tx, handoff_id, actor=actor, now=now)
    if h.status == "taken" and h.taken_by != actor:
        raise HandoffError(f"handoff {handoff_id} is taken by {h.taken_by}", "taken")
    await tx.update_handoff(
        h.id, expected=h.status, status="closed", closed_at=now, closed_by=actor, close_reason="returned"
    )
    if h.status == "taken":
        await _tell(tx, h, "returned", now)
    await tx.audit("handoff_returned", actor=actor, channel=h.channel, user_id=h.user_id, now=now)
    return await _open(tx, handoff_id)


async def dismiss(tx: Tx, handoff_id: int, *, actor: str, now: datetime) -> Handoff:
    """A waiting chat closed without being taken (answered by phone, asked twice, a test): the
    customer is told the bot goes on and he may ask again. Stored as closed `returned` with no
    `taken_at` (the table's close reasons are returned and timeout)."""
    h = await _open(tx, handoff_id)
    if h.status != "waiting":
        who = f" by {h.taken_by}" if h.status == "taken" else ""
        raise HandoffError(f"handoff {handoff_id} is {h.status}{who}: only a waiting one is closed so", h.status)
    if not await tx.update_handoff(
        h.id, expected="waiting", status="closed", closed_at=now, closed_by=actor, close_reason="returned"
    ):
        raise HandoffError(f"handoff {handoff_id} was taken meanwhile", "taken")
    await _tell(tx, h, "dismissed", now)
    await tx.audit("handoff_dismissed", actor=actor, channel=h.channel, user_id=h.user_id, contract=h.contract, now=now)
    return await _open(tx, handoff_id)


def dismissed(h: Handoff) -> bool:
    """Closed without ever being taken."""
    return h.status == "closed" and h.taken_at is None and h.close_reason == "returned"


async def conversation(
    tx: Tx, h: Handoff, *, limit: int | None = None, profile: Profile | None = None
) -> list[ChatLine]:
    """The chat's last lines, masked as an agent may read them."""
    lines = await tx.chat_log(h.channel, h.user_id, limit=limit if limit is not None else keep_lines(profile))
    return [replace(line, text=mask(line.text)) for line in lines]


async def _tell(tx: Tx, h: Handoff, event: str, now: datetime) -> None:
    await tx.enqueue_outbox(
        channel=h.channel,
        user_id=h.user_id,
        lang=await _lang(tx, h),
        kind="handoff",
        payload={"event": event},
        dedupe_key=f"handoff:{h.id}:{event}",
        now=now,
    )


async def _lang(tx: Tx, h: Handoff) -> str:
    session = await tx.load_session(h.channel, h.user_id)
    return (session.lang if session else None) or h.lang


def render(msg: OutboxMessage, profile: Profile) -> str:
    t = translator(msg.lang)
    if msg.kind == "agent_message":
        return t("handoff.agent_says", text=msg.payload["text"])
    return t(f"handoff.{msg.payload['event']}")
