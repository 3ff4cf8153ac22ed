"""Proactive messages with consent (issue 22): the reading window, bills and instalments coming
due, service notices. See README "Reminders" and docs/reminders.md.

- Consent is per chat (this channel, this person): asked once, right after a first link, with
  three buttons (all, bills only, none) or a typed answer; every answer is stored with its time
  and audited (law 09-08). "stop", "arrêt", "توقف", "bla rappel"… anywhere turn them off; the
  menu's "Rappels" item turns them back on.
- `queue_day` finds what is due on a day and queues it: one outbox row per contract and occasion,
  with its key (`reminders_sent`) in the same transaction, so nothing is queued twice whatever
  crashes or runs again. Only chats that agreed to that kind and still hold the contract; the
  dispatcher checks both again before sending (a "stop" after queueing wins).
- Quiet hours (local): a proactive message is queued, and re-timed at send, for their end.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from storage import Clock, OutboxMessage, ReminderTarget, Store, Tx

from .events import Button
from .i18n import translator
from .places import city_label, places_of
from .profile import Profile
from .understanding import normalize

log = logging.getLogger(__name__)

KINDS = ("reading", "due", "instalment", "consumption", "notice")
OPTIONS: dict[str, tuple[str, ...]] = {
    "remind:all": KINDS,
    "remind:bills": ("due", "instalment"),
    "remind:none": (),
}
PROACTIVE = frozenset({"reminder", "notice"})  # outbox kinds written first, by the bot
READ_PREFIX = "remind:read:"  # the reading reminder's button: the reading journey on that contract

# Typed answers, on understanding.normalize()d text (accents dropped, arabizi digits read).
_REMINDER_WORD = (
    r"(?:les |des |l |el |le )?(?:rappels?|rapp?el|tdkir|tadkir|tedkir|tadkirat|tdkirat|notifications?|"
    r"التذكير|تذكير|التذكيرات|تذكيرات|الاشعارات|اشعارات|الرسائل)"
)
STOP_WORDS = re.compile(
    r"(?<!\w)(?:stop|arret\w*|bla|sans|pas de|plus de|ma ?bghit(?:ch|sh)?|ma ?n?bghich|ma ?bghitch|"
    r"non|no|la|بلا|ما بغيتش|مابغيتش|ما بغيتش|وقف|توقف|اوقف|حبس|لا)\s+" + _REMINDER_WORD + r"(?!\w)"
)
ON_WORDS = re.compile(
    r"(?<!\w)(?:oui|ok|wakha|bghit|activer?|reactiver?|remettre|نعم|بغيت|واخا|ايه|شغل|فعل)\s+"
    + _REMINDER_WORD
    + r"(?!\w)"
    r"|(?<!\w)" + _REMINDER_WORD.replace("(?:les |des |l |el |le )?", "") + r"\s+(?:oui|ok|wakha|نعم|واخا)(?!\w)"
)


def _worded(text: str) -> str | None:
    """The text normalised, if it may hold a reminder word (letters, under 80 characters); the
    engine asks both phrases of one typed text in a row: normalised once (an index typed has no
    letter and is not normalised at all)."""
    if not text or len(text) >= 80 or not any(c.isalpha() for c in text):
        return None
    return _normalized(text)


@functools.lru_cache(maxsize=64)
def _normalized(text: str) -> str:
    return normalize(text)


def stop_phrase(text: str) -> bool:
    """ "bla rappel", "stop rappels", "ma bghitch tdkir", "بلا تذكير": reminders off, in any state."""
    norm = _worded(text)
    return norm is not None and bool(STOP_WORDS.search(norm))


def on_phrase(text: str) -> bool:
    norm = _worded(text)
    return norm is not None and bool(ON_WORDS.search(norm))


# ---------------------------------------------------------------------- consent
def consent_buttons(lang: str) -> tuple[Button, ...]:
    t = translator(lang)
    return (
        Button("remind:all", t("remind.opt_all")),
        Button("remind:bills", t("remind.opt_bills")),
        Button("remind:none", t("remind.opt_none")),
    )


async def offer_consent(t: Any) -> None:
    """After a link: the one question is owed, unless this chat was ever asked. It is put when the
    journey the customer came for has ended (`consent_due`, at the next menu), never beside that
    journey's next question, where a typed "1" or "oui" would answer both."""
    if await t.tx.reminder_consent(t.channel, t.user_id) is not None:
        return
    if str(t.data.get("after_link", "")).startswith("remind."):
        return  # linking to set reminders: the settings ask it
    await t.tx.set_reminder_consent(t.channel, t.user_id, (), how="asked", now=t.now)


# A question left unanswered (the customer wrote about something else) is put once more, in a
# later conversation (the engine's idle time: a session that would have expired), then never:
# he may have missed it while busy, but a third time would be nagging. The menu's "Rappels"
# item stays there for him.
ASK_AGAIN_AFTER = timedelta(minutes=30)


async def consent_due(t: Any) -> bool:
    """Whether the chat, arriving at the menu, is to be asked about reminders instead."""
    if not await t.tx.linked_contracts(t.channel, t.user_id):
        return False
    consent = await t.tx.reminder_consent(t.channel, t.user_id)
    if consent is None or consent.answered_at is not None:
        return False
    if consent.how is None:  # owed since the link (or asked by the code before, beside a question)
        return True
    return consent.how == "shown" and t.now - consent.asked_at >= ASK_AGAIN_AFTER


async def ask_consent(t: Any) -> None:
    """The question, alone at the end of the turn (its own state: a typed number answers it)."""
    consent = await t.tx.reminder_consent(t.channel, t.user_id)
    if consent is not None and consent.answered_at is None:
        shown = consent.how in ("shown", "shown_twice")
        if not shown or t.now - consent.asked_at >= ASK_AGAIN_AFTER:
            how = "shown_twice" if shown else "shown"
            await t.tx.set_reminder_consent(t.channel, t.user_id, (), how=how, now=t.now)
        # else the same question again in this conversation (after "aide", a language change)
    t.ask(t.tr("remind.ask"), consent_buttons(t.lang))


def consent_answer(t: Any) -> str | None:
    """The consent payload a message at the question stands for: a button, its number or label
    typed, a yes ("oui", "ah", "نعم", "wakha") or a no ("non", "la", "لا", "stop")."""
    from .understanding import parse_yes_no

    picked = t.choice()
    if picked in OPTIONS:
        return picked
    text = t.inbound.text or ""
    if t.inbound.payload is not None or not text.strip():
        return None
    if t.typed() in ("stop", "arrêt", "arret", "arrête", "arrete", "arrêtez", "توقف", "وقف", "bla", "بلا"):
        return "remind:none"
    yes = parse_yes_no(text)
    if yes is None:
        return None
    return "remind:all" if yes else "remind:none"


async def set_consent(t: Any, kinds: tuple[str, ...], how: str) -> None:
    await t.tx.set_reminder_consent(t.channel, t.user_id, kinds, how=how, now=t.now)
    await t.tx.audit(
        "reminders_consent",
        channel=t.channel,
        user_id=t.user_id,
        details={"kinds": list(kinds), "how": how},
        now=t.now,
    )


def say_consent(t: Any, kinds: tuple[str, ...]) -> None:
    if not kinds:
        t.say("remind.stopped")
    elif set(kinds) == set(KINDS):
        t.say("remind.on_all")
    else:
        t.say("remind.on_bills")


def typed_consent(t: Any) -> str | None:
    """The consent payload a typed message stands for in any state: "oui rappels", "bghit
    tdkir". (A plain yes or no answers only the question itself: `consent_answer`.)"""
    t.data.pop("_consent", None)  # the mark of the question put by the code before (a bare yes at the menu)
    text = t.inbound.text or ""
    if t.inbound.payload is not None or not text:
        return None
    if on_phrase(text):
        return "remind:all"
    return None


async def stop(t: Any, *, explicit: bool) -> bool:
    """Reminders off for this chat; True if some were on. A bare "stop" records a refusal only if
    reminders were on (it also cancels a journey, and must not answer a question never asked)."""
    consent = await t.tx.reminder_consent(t.channel, t.user_id)
    was_on = consent is not None and bool(consent.kinds)
    if was_on or explicit:
        await set_consent(t, (), "stop")
    return was_on


# ---------------------------------------------------------------------- quiet hours
def _hm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def quiet_end(profile: Profile, instant: datetime) -> datetime | None:
    """The end of the quiet hours `instant` falls in (UTC), or None outside them."""
    policy = profile.reminders
    start, end = _hm(policy.quiet_start), _hm(policy.quiet_end)
    if start == end:
        return None
    local = profile.local(instant)
    now = local.time()
    inside = (start <= now or now < end) if start > end else (start <= now < end)
    if not inside:
        return None
    day = local.date() if now < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=profile.zone).astimezone(UTC)


def not_before(profile: Profile, instant: datetime) -> datetime:
    return quiet_end(profile, instant) or instant


# ---------------------------------------------------------------------- what is due on a day
@dataclass(frozen=True, slots=True)
class Planned:
    target: ReminderTarget
    kind: str
    occasion: str
    payload: dict[str, Any]


def _one_chat_per_contract(targets: list[ReminderTarget]) -> list[ReminderTarget]:
    """Once per contract and occasion: to the chat that linked it last (targets come newest first)."""
    seen: set[str] = set()
    out = []
    for target in targets:
        if target.contract not in seen:
            seen.add(target.contract)
            out.append(target)
    return out


PAGE = 1000  # contracts planned and queued at a time: memory follows the page, not the campaign
WRITE_CHUNK = 100  # reminders queued per transaction
PLANNED = ("reading", "due", "instalment", "consumption")  # the kinds a day plans (notices are sent by hand)
RECENT_READING = timedelta(days=7)  # a reading newer than this "shows" a consumption above the usual


async def plan_day(tx: Tx, profile: Profile, day: date) -> list[Planned]:
    """Every reminder due on `day` (the operator's date) for the chats that agreed (all pages)."""
    return [p for kind in PLANNED async for p in _pages(tx, profile, day, kind)]


async def _pages(tx: Tx, profile: Profile, day: date, kind: str, after: str | None = None):
    while True:
        targets = await tx.reminder_targets(kind, after=after, limit=PAGE)
        if not targets:
            return
        for target in _one_chat_per_contract(targets):
            for p in await _due(tx, profile, day, kind, target):
                yield p
        after = targets[-1].contract


async def _due(tx: Tx, profile: Profile, day: date, kind: str, target: ReminderTarget) -> list[Planned]:
    """What `target`'s contract is due for `kind` on `day`."""
    window = profile.reading_window
    horizon = day + timedelta(days=profile.reminders.days_before_due)
    if kind == "reading":
        if not window.first_day <= day.day <= window.last_day:
            return []
        contract = await tx.contract(target.contract)
        if contract is None or contract.is_prepaid:
            return []
        sent = await tx.readings(target.contract, newest=1, sources=("customer",))
        if sent and sent[0].reading_date >= day.replace(day=window.first_day):
            return []  # already read this cycle
        last = day.replace(day=min(window.last_day, _month_days(day)))
        payload = {"meter": contract.meter_number, "last_day": last.isoformat(), "service": contract.service}
        return [Planned(target, "reading", f"reading:{day:%Y-%m}", payload)]
    if kind == "due":
        return [
            Planned(
                target,
                "due",
                f"due:{bill.bill_number}",
                {"bill": bill.bill_number, "amount": bill.due, "due_date": bill.due_date.isoformat()},
            )
            for bill in await tx.bills(target.contract, unpaid_only=True)
            if day <= bill.due_date <= horizon and bill.due > 0
        ]
    if kind == "consumption":
        return await _consumption(tx, profile, day, target)
    planned = []
    for req in await tx.requests(contract=target.contract, status="approved", kinds=["instalment"]):
        for line in req.lines:
            if day <= line.due_date <= horizon:
                left = sum(later.amount for later in req.lines if later.seq > line.seq)
                planned.append(
                    Planned(
                        target,
                        "instalment",
                        f"instalment:{req.reference}:{line.seq}",
                        {
                            "reference": req.reference,
                            "seq": line.seq,
                            "count": len(req.lines),
                            "amount": line.amount,
                            "due_date": line.due_date.isoformat(),
                            "left": left,
                        },
                    )
                )
    return planned


async def _consumption(tx: Tx, profile: Profile, day: date, target: ReminderTarget) -> list[Planned]:
    """A real reading of the last days whose period's daily use is `consumption_above` times the
    usual one (the earlier periods' median; else the bills that were read): told once per reading."""
    from . import consumption

    contract = await tx.contract(target.contract)
    if contract is None or contract.is_prepaid:
        return []
    real = [
        r
        for r in await consumption.recent_readings(tx, contract)
        if r.source == "actual" or (r.source == "customer" and not r.review and r.status == "valid")
    ]
    if len(real) < 2 or not day - RECENT_READING <= real[-1].reading_date <= day:
        return []
    before, last = real[-2], real[-1]
    days, used = (last.reading_date - before.reading_date).days, last.index_value - before.index_value
    if days < 1 or used < 10:
        return []  # a handful of units, or a rollover, says nothing
    rates = consumption._real_rates((r.reading_date, r.index_value, r.source, r.review) for r in real[:-1])
    if len(rates) < 2:
        bills = await tx.bills(contract.contract, limit=consumption.BILLS_FOR_USE)
        rates += consumption._bill_rates((b.period_start, b.period_end, b.consumption, b.estimated) for b in bills)
    usual = consumption._usual(rates)
    if not usual or used / days < usual * profile.reminders.consumption_above:
        return []
    payload = {
        "service": contract.service,
        "since": before.reading_date.isoformat(),
        "units": used,
        "percent": round((used / days / usual - 1) * 100),
    }
    return [Planned(target, "consumption", f"consumption:{last.reading_date.isoformat()}", payload)]


def _month_days(day: date) -> int:
    return ((day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day


async def queue_day(store: Store, profile: Profile, day: date, *, dry_run: bool = False) -> list[Planned]:
    """Queue what is due on `day`; returns what was queued now (already queued ones are not).
    With `dry_run`, what would be queued, and nothing is written."""
    return [p async for p in each_due(store, profile, day, dry_run=dry_run)]


async def each_due(store: Store, profile: Profile, day: date, *, dry_run: bool = False) -> AsyncIterator[Planned]:
    """`queue_day` a page at a time (a page of contracts read, then queued in one transaction,
    the bot answering between them), yielding what it queued: memory follows the page."""
    now = store.clock()
    start = not_before(profile, now)
    for kind in PLANNED:
        after: str | None = None
        while True:
            async with store.snapshot() as tx:
                targets = await tx.reminder_targets(kind, after=after, limit=PAGE)
                planned = [
                    p for target in _one_chat_per_contract(targets) for p in await _due(tx, profile, day, kind, target)
                ]
                # Those queued before are left out here, read-only: a second run (the bot's daily one
                # after `addad remind`) takes no write lock at all. The key decides anyway.
                planned = [p for p in planned if not await _already(tx, p)]
            if not targets:
                break
            after = targets[-1].contract
            if dry_run:
                for p in planned:
                    yield p
                continue
            queued = []
            for chunk in range(0, len(planned), WRITE_CHUNK):
                async with store.transaction() as tx:  # short: the bot's turns wait for no long write
                    for p in planned[chunk : chunk + WRITE_CHUNK]:
                        outbox_id = await tx.queue_reminder(
                            contract=p.target.contract,
                            occasion=p.occasion,
                            target=p.target,
                            kind=p.kind,
                            payload=p.payload,
                            not_before=start,
                            now=now,
                        )
                        if outbox_id is not None:
                            queued.append(p)
            for p in queued:
                yield p


async def _already(tx: Tx, p: Planned) -> bool:
    return await tx.reminder_queued(p.target.contract, p.occasion)


# ---------------------------------------------------------------------- notices
def notice_key(city: str, service: str | None, text_ar: str, text_fr: str) -> str:
    return hashlib.sha256("\x1f".join((city, service or "", text_ar, text_fr)).encode()).hexdigest()


async def queue_notice(
    store: Store,
    profile: Profile,
    *,
    city: str,
    service: str | None,
    text_ar: str,
    text_fr: str,
    dry_run: bool = False,
) -> list[ReminderTarget]:
    """A service notice to every chat that agreed to notices and holds a contract in `city`, once
    per chat (the same notice again queues nothing)."""
    now = store.clock()
    places = places_of(profile)
    place = places.named(city)
    wanted = place.name if place is not None else city
    targets: list[ReminderTarget] = []
    seen: set[tuple[str, str]] = set()
    async with store.snapshot() as tx:
        for target in await tx.notice_targets(service):
            held = places.named(target.city)
            if (held.name if held is not None else target.city) != wanted or (target.channel, target.user_id) in seen:
                continue  # another city, or a chat already counted (once per customer)
            seen.add((target.channel, target.user_id))
            targets.append(target)
    if dry_run:
        return targets
    start = not_before(profile, now)
    key = notice_key(wanted, service, text_ar, text_fr)
    queued = []
    payload = {"city": wanted, "service": service, "ar": text_ar, "fr": text_fr}
    for chunk in range(0, len(targets), 500):
        async with store.transaction() as tx:
            notice_id = await tx.add_notice(
                key=key, city=wanted, service=service, text_ar=text_ar, text_fr=text_fr, now=now
            )
            for target in targets[chunk : chunk + 500]:
                if await tx.queue_notice(notice_id, target, payload=payload, not_before=start, now=now) is not None:
                    queued.append(target)
    return queued


# ---------------------------------------------------------------------- rendering
def render(msg: OutboxMessage, profile: Profile) -> str:
    """A reminder or a notice as text in the chat's language."""
    t = translator(msg.lang)
    p = msg.payload
    footer = "\n" + t("remind.footer")
    if msg.kind == "notice":
        text = p.get(msg.lang) or p.get("fr") or ""
        return (
            t(
                "remind.notice",
                operator=profile.operator.short_name.get(t.lang),
                city=city_label(profile, t, p["city"]),
                text=text,
            )
            + footer
        )
    kind, contract = p["kind"], t.ltr(p["contract"])
    if kind == "reading":
        return (
            t(
                "remind.reading",
                number=contract,
                meter=t.ltr(p["meter"]),
                service=t(f"service.{p['service']}"),
                last=t.date(date.fromisoformat(p["last_day"])),
            )
            + footer
        )
    if kind == "due":
        return (
            t(
                "remind.due",
                number=contract,
                bill=t.ltr(p["bill"]),
                amount=t.money(p["amount"]),
                date=t.date(date.fromisoformat(p["due_date"])),
            )
            + footer
        )
    if kind == "consumption":
        return (
            t(
                "remind.consumption",
                number=contract,
                since=t.date(date.fromisoformat(p["since"])),
                units=t.number(p["units"]),
                unit=t(f"unit.{p['service']}"),
                percent=t.number(p["percent"]),
            )
            + footer
        )
    if kind == "instalment":
        left = t("remind.left", amount=t.money(p["left"])) if p["left"] else t("remind.last")
        return (
            t(
                "remind.instalment",
                reference=t.ltr(p["reference"]),
                seq=t.number(p["seq"]),
                count=t.number(p["count"]),
                amount=t.money(p["amount"]),
                date=t.date(date.fromisoformat(p["due_date"])),
                left=left,
            )
            + footer
        )
    raise ValueError(f"unknown reminder kind {kind!r}")


def buttons(msg: OutboxMessage) -> list[Button]:
    """The reading reminder's one tap: "send my index" on that contract."""
    if msg.kind == "reminder" and msg.payload.get("kind") == "reading":
        return [Button(READ_PREFIX + msg.payload["contract"], translator(msg.lang)("remind.send_index"))]
    return []


def template_parameters(msg: OutboxMessage) -> tuple[str, list[str]] | None:
    """(kind, body parameters) of a proactive message's WhatsApp template, in the chat's language."""
    t = translator(msg.lang)
    p = msg.payload
    if msg.kind == "notice":
        # A template parameter may hold no newline, tab or run of spaces (Meta refuses it).
        return "notice", [" ".join((p.get(msg.lang) or p.get("fr") or "").split())]
    kind = p.get("kind")
    if kind == "reading":
        return kind, [p["contract"], p["meter"], t.date(date.fromisoformat(p["last_day"]))]
    if kind == "due":
        return kind, [p["bill"], t.money(p["amount"]), t.date(date.fromisoformat(p["due_date"]))]
    if kind == "consumption":
        return kind, [p["contract"], t.number(p["percent"]) + " %"]
    if kind == "instalment":
        return kind, [
            p["reference"],
            t.money(p["amount"]),
            t.date(date.fromisoformat(p["due_date"])),
            t.money(p["left"]),
        ]
    return None


# ---------------------------------------------------------------------- the dispatcher's side
class Lane:
    """The proactive messages' share of a channel: at most `rate` a second per channel and one a
    second per chat, so a campaign leaves the rest of the channel's rate to customers' replies
    (which never wait here).

    A chat is remembered only while its second runs, so the lane holds about `rate x per_chat`
    chats per channel (250 at 250/s) however many distinct customers a campaign reaches: a
    channel's slots only grow (each is at least the channel's next one, which then moves past
    it) and each chat is held `per_chat` after its slot, so a channel's chats, kept in the order
    their slots were given, end in that order: the ones over are dropped from the front."""

    def __init__(self, rate: float, per_chat: float = 1.0) -> None:
        self.gap, self.per_chat = 1.0 / rate, per_chat
        self._next: dict[str, float] = {}  # per channel: its next free slot
        self._chats: dict[str, dict[str, float]] = {}  # per channel: chat -> the end of its second

    async def wait(self, channel: str, user_id: str) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        chats = self._chats.setdefault(channel, {})
        while chats:  # forget the chats whose second is over (the oldest slots come first)
            first = next(iter(chats))
            if chats[first] > now:
                break
            del chats[first]
        slot = max(now, self._next.get(channel, now))
        slot = max(slot, chats.pop(user_id, slot))  # popped: set again below, at the end
        self._next[channel] = slot + self.gap
        chats[user_id] = slot + self.per_chat
        if slot > now:
            await asyncio.sleep(slot - now)

    def __len__(self) -> int:
        """The chats remembered now, all channels."""
        return sum(len(chats) for chats in self._chats.values())


async def still_wanted(tx: Tx, msg: OutboxMessage) -> bool:
    """At send time: the chat still agrees to this kind and still holds the contract."""
    kind = "notice" if msg.kind == "notice" else str(msg.payload.get("kind"))
    contract = None if msg.kind == "notice" else msg.payload.get("contract")
    return await tx.reminder_allowed(msg.channel, msg.user_id, contract, kind)


# ---------------------------------------------------------------------- daily, in the bot
class DailyReminders:
    """`queue_day` once a day at the profile's local time, by the store's clock."""

    def __init__(self, store: Store, profile: Profile, clock: Clock | None = None, on_queued=None) -> None:
        self.store, self.profile = store, profile
        self.clock = clock or store.clock
        self.on_queued = on_queued
        self.done: date | None = None

    async def due(self) -> int:
        now = self.clock()
        local = self.profile.local(now)
        if local.time() < _hm(self.profile.reminders.time) or self.done == local.date():
            return 0
        queued = await queue_day(self.store, self.profile, local.date())
        self.done = local.date()
        if queued:
            log.info("reminders: %d queued for %s", len(queued), local.date())
            if self.on_queued is not None:
                self.on_queued()
        return len(queued)

    async def run(self, stop: asyncio.Event, every: float = 30.0) -> None:
        while not stop.is_set():
            try:
                await self.due()
            except Exception:
                log.exception("reminders: could not queue the day's reminders (tried again later)")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
