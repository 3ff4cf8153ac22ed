"""The conversation engine: one inbound event in, replies out.

Per turn, under a per-(channel, user) lock: claim the message id (a redelivery does nothing),
load the session, run the state machine, save the new state, all in ONE transaction with any
reading or request the turn produced. So a crash either keeps the whole turn or none of it,
and the customer is only answered after the commit.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from dataclasses import replace
from datetime import date, datetime, timedelta

from storage import Clock, ConcurrentUpdate, ConnectionLost, SessionRecord, Store

from . import handoff, journeys, learning, reminders
from .backoffice import render_outbox
from .events import Inbound, Outcome, Reply, replies_from_json, replies_to_json
from .flow import AGAIN, DIGRESSION_CONFIDENCE, FLOWS, GIVEN, REGISTRY, Turn, legacy_data, ref
from .i18n import translator
from .journeys import ENTRY_STATES, PAUSABLE, menu
from .journeys.reading import ReadingData
from .media import KeptPhoto, MediaFetcher, MediaKeeper
from .ocr import meter_digits
from .profile import Profile
from .understanding import LETTER, detect_lang, parse_yes_no, understand, written_language

log = logging.getLogger(__name__)

MAX_TEXT = 4000  # longer messages are answered, not analysed
MAX_HOPS = 8  # state redirects in one turn (a loop guard)
START_STATE = ref("menu.main")
# Inbound.other kinds the channels set themselves, and what the chat is told.
CHANNEL_NOTICES = {"unreadable": "input.unreadable", "flood": "input.flood"}
LINK_CONTRACT = ref("link.contract")
LANG_CHOOSE = ref("lang.choose")
READING_START = ref("reading.start")
REMIND_SETTINGS = ref("remind.settings")
REMIND_CONSENT = ref("remind.consent")

COMMANDS = {
    "/start": "start",
    "/menu": "menu",
    "/cancel": "cancel",
    "/annuler": "cancel",
    "/help": "help",
    "/aide": "help",
    "/language": "language",
    "/langue": "language",
    "/lang": "language",
}
PAYLOAD_COMMANDS = {
    "cmd:menu": "menu",
    "cmd:cancel": "cancel",
    "cmd:help": "help",
    "cmd:lang": "language",
    "resume": "resume",
}
# Words that mean "menu" or "cancel" in every state, matched on the whole message (as flow._norm
# folds it: casefold, no hamza or diacritics, no punctuation). Understanding alone reads "menu" as
# a request for help, and "safi" / "bla" ("enough", "never mind") as nothing.
GLOBAL_WORDS = {
    **dict.fromkeys(
        (
            "menu",
            "le menu",
            "lmenu",
            "l menu",
            "el menu",
            "menu principal",
            "accueil",
            "retour",
            "revenir",
            "القائمه",
            "القائمة",
            "المنيو",
            "لمنيو",
            "رجوع",
            "الرجوع",
            "ارجع",
            "رجع",
            "rjou3",
            "rje3",
            "main menu",
            "back",
        ),
        "menu",
    ),
    **dict.fromkeys(
        (
            "annuler",
            "annule",
            "annulez",
            "laisse tomber",
            "الغاء",
            "الغي",
            "safi",
            "صافي",
            "bla",
            "بلا",
            "khlas",
            "خلاص",
            "cancel",
            "baraka",
            "باراكا",
        ),
        "cancel",
    ),
    # "stop" cancels as before and also ends reminders, if any were on (conversations/reminders.py).
    **dict.fromkeys(("stop", "arrêt", "arret", "arrête", "arrete", "arrêtez", "توقف", "وقف"), "stop"),
}


class Engine:
    def __init__(
        self,
        store: Store,
        profile: Profile,
        *,
        idle_minutes: int = 30,
        clock: Clock | None = None,
        pull_channels: frozenset[str] = frozenset(),
        media: MediaKeeper | None = None,
    ) -> None:
        self.store = store
        # Where meter photos are kept (None: a photo is known by its channel id only, as in the
        # console and the conversation tests); each channel's adapter hands its own fetcher.
        self.media = media
        # Channels with no push dispatcher (each channel says so; the runtime passes them in):
        # their queued messages are shown at the next turn.
        self.pull_channels = pull_channels
        self.profile = profile
        self.idle = timedelta(minutes=idle_minutes)
        self.clock = clock or store.clock  # one clock per process: the store's unless told
        self._locks: dict[tuple[str, str], list] = {}

    async def handle(self, inbound: Inbound, *, resend: bool = False) -> list[Reply]:
        """The replies to one inbound message (`respond` without the language)."""
        return (await self.respond(inbound, resend=resend)).replies

    async def respond(self, inbound: Inbound, *, resend: bool = False, media: MediaFetcher | None = None) -> Outcome:
        """The replies to one inbound message and the chat's language. A message already handled
        gets none, or with `resend` (an adapter replaying what it may not have answered before a
        crash) the replies its turn produced. `media`: how this channel downloads a photo, asked
        only when the chat is at a step that takes one."""
        text = (inbound.text or "")[:MAX_TEXT]
        now = inbound.received_at or self.clock()
        understood = _LazyUnderstanding(text, inbound.lang_hint, self.profile.today(now))
        # One chat's messages run one at a time, in arrival order (asyncio.Lock wakes waiters
        # first in, first out); the lock exists only while the chat has a message in flight.
        key = (inbound.channel, inbound.user_id)
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                photo = None
                if inbound.photo_ref and media is not None and self.media is not None:
                    photo = await self._fetch_photo(inbound, media, now)
                for attempt in range(3):
                    try:
                        return await _drawn(await self._turn(inbound, understood, now, resend, photo))
                    except ConcurrentUpdate:
                        # Another process wrote this chat's session: the transaction rolled back; run again.
                        if attempt == 2:
                            raise
                    except ConnectionLost:
                        # The database server went away mid-turn (storage/postgres): the turn was rolled
                        # back whole; run it again on a new connection, else say so.
                        if attempt == 2:
                            log.warning("turn failed on %s: the database connection broke", inbound.channel)
                            return await self._failed_turn(inbound, now)
                    except Exception:
                        log.exception("turn failed on %s (state kept, message marked handled)", inbound.channel)
                        return await self._failed_turn(inbound, now)
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[key]
        raise AssertionError("unreachable")

    async def _fetch_photo(self, inbound: Inbound, media: MediaFetcher, now: datetime) -> KeptPhoto | None:
        """The photo downloaded and kept, if the chat is at a step that takes one (a linked chat
        in a live session, at a `photo=True` state); else None and nothing is downloaded. Done
        before the turn's transaction (a download must not hold the database) and under the
        chat's lock, so the state looked at is the one the turn starts from."""
        assert self.media is not None and inbound.photo_ref
        async with self.store.snapshot() as tx:
            s = await tx.load_session(inbound.channel, inbound.user_id)
            here = REGISTRY.get(s.state) if s is not None else None
            if s is None or here is None or not here.photo or "_digress" in s.data:
                return None
            if (s.updated_at and now - s.updated_at > self.idle) or _legacy_session(s.data):
                return None  # the turn will start again at the menu
            linked = await tx.linked_contracts(inbound.channel, inbound.user_id)
            if not linked:
                return None
        digits = meter_digits(s.state, s.data, linked) if self.media.ocr is not None else None
        return await self.media.keep(media, inbound.photo_ref, self.store, now, digits=digits)

    async def _turn(
        self, inbound: Inbound, understood, now: datetime, resend: bool = False, photo: KeptPhoto | None = None
    ) -> Outcome:
        try:
            async with self.store.transaction() as tx:
                session = await tx.load_session(inbound.channel, inbound.user_id)
                fresh = session is None
                if session is None:
                    session = SessionRecord(inbound.channel, inbound.user_id, START_STATE, {}, None, 0, None)
                turn = Turn(inbound, understood, session, tx, self.profile, now, photo=photo)
                at_menu = fresh or session.state == START_STATE
                await self._step(turn, fresh)
                if at_menu and inbound.payload is None and understood.done:
                    # A request typed freely that the bot could not place: kept masked for the
                    # operator to label (conversations/learning.py), never an answer to a question.
                    await learning.keep_if_unrecognised(
                        tx,
                        self.profile,
                        text=understood.text,
                        understood=understood.result,
                        channel=inbound.channel,
                        state=str(START_STATE),
                        now=now,
                    )
                _offer_resume(turn)
                notices = await self._queued_notices(turn)  # after the step: in the language it ended in
                await tx.save_session(session, now=now)
                replies = notices + turn.replies
                await handoff.log_turn(tx, inbound, replies, now, self.profile)  # the recent conversation, for an agent
                outcome = Outcome(replies, session.lang or "fr")
                # The message is claimed last, with its replies, in one statement. A redelivery
                # (rare) finds the claim there and its turn is rolled back, as if never run.
                if not await tx.record_turn(inbound.channel, inbound.message_id, replies_to_json(replies), now=now):
                    raise _Redelivered()
        except _Redelivered:
            return await self._kept_replies(inbound, resend)
        return outcome

    async def _kept_replies(self, inbound: Inbound, resend: bool) -> Outcome:
        async with self.store.snapshot() as tx:
            session = await tx.load_session(inbound.channel, inbound.user_id)
            kept = await tx.kept_replies(inbound.channel, inbound.message_id) if resend else None
        return Outcome(replies_from_json(kept), (session.lang if session else None) or "fr")

    async def _queued_notices(self, turn: Turn) -> list[Reply]:
        """Messages waiting for this chat (held outside a channel's window, or a pull channel's),
        marked sent in the turn's own transaction so they are shown exactly once."""
        statuses = ("pending", "held") if turn.channel in self.pull_channels else ("held",)
        notices = []
        for msg in await turn.tx.outbox_for_chat(turn.channel, turn.user_id, statuses=statuses):
            if msg.kind in reminders.PROACTIVE and not await reminders.still_wanted(turn.tx, msg):
                await turn.tx.settle_outbox(msg.id, "failed", error="not shown: reminders stopped or contract unlinked")
                continue
            # In the chat's language now, not the one the request was filed in.
            notices.append(Reply(render_outbox(replace(msg, lang=turn.lang), self.profile)))
            await turn.tx.mark_outbox_sent(msg.id, now=turn.now)
        return notices

    async def _failed_turn(self, inbound: Inbound, now: datetime) -> Outcome:
        def sorry(lang: str, state: str | None = None) -> list[Reply]:
            # The turn rolled back: at a step that records what the customer confirms (a
            # reading, a request), that is what was lost; they stay at that step to send it again.
            here = REGISTRY.get(state) if state else None
            key = "error.not_recorded" if here is not None and here.records else "error.internal"
            t = translator(lang)
            return [Reply(t(key, phone=t.ltr(self.profile.contact.phones[0])))]

        lang = "fr"
        replies = sorry(lang)
        try:
            async with self.store.transaction() as tx:
                session = await tx.load_session(inbound.channel, inbound.user_id)
                lang = (session.lang if session and session.lang else None) or detect_lang(
                    inbound.text or "", inbound.lang_hint
                )
                replies = sorry(lang, session.state if session else None)
                await tx.audit("turn_failed", actor="system", channel=inbound.channel, user_id=inbound.user_id)
                if not await tx.record_turn(inbound.channel, inbound.message_id, replies_to_json(replies), now=now):
                    raise _Redelivered()
        except _Redelivered:
            return Outcome([], lang)
        except Exception:
            log.exception("could not record a failed turn")
        return Outcome(replies, lang)

    # ------------------------------------------------------------------ the state machine
    async def _step(self, turn: Turn, fresh: bool) -> None:
        s = turn.session
        inbound = turn.inbound
        if inbound.lang_choice in ("ar", "fr"):
            s.lang = inbound.lang_choice
        elif s.lang is None:
            s.lang = _first_language(inbound)
        elif inbound.text and inbound.payload is None and (other := written_language(inbound.text, s.lang)):
            s.lang = other  # a message plainly in the other language: the chat follows the customer
        if not fresh and await handoff.with_agent(turn):
            return  # an agent has this chat: the bot stays quiet (conversations/handoff.py)
        if inbound.other in CHANNEL_NOTICES:
            # A message the channel could not read, or one of a flood (bot/channels): said in the
            # chat's language; the session stays where it was.
            turn.say(CHANNEL_NOTICES[inbound.other])
            return
        if fresh:
            turn.say("welcome.hello", operator=self.profile.operator.of(turn.lang))
        elif s.state != START_STATE and (
            (s.updated_at and turn.now - s.updated_at > self.idle) or _legacy_session(s.data)
        ):
            # The message answers a question asked long ago (or saved by the code before this
            # deploy, in another shape): don't guess, start again at the menu.
            _reset(turn)
            turn.say("session.expired")
            if _command(turn) is None:
                await self.goto(turn, START_STATE)
                return

        elif _legacy_session(s.data):
            _reset(turn)  # at the menu already: only a journey left midway (old shape) is dropped
        command = _command(turn)
        if command is not None and GLOBAL_WORDS.get(turn.typed()) == command and turn.inbound.payload is None:
            # A global word the current question reads as an answer ("safi" is a city, asked which).
            here = REGISTRY.get(s.state)
            if here is not None and here.answers is not None and await here.answers(turn):
                command = None
        if command is not None:
            await self._command(turn, command)
            return
        if fresh:
            # The first message may already say what the customer wants.
            intent = turn.understood.intent if turn.understood else None
            if (target := await menu.number_before_linking(turn)) is not None:
                await self.goto(turn, target)  # "1000001" or "contrat 1000001" and nothing else
            elif intent in journeys.INTENT_ENTRY and menu.competing(turn):
                await self.goto(turn, menu.MENU_CLARIFY)
            elif intent in journeys.INTENT_ENTRY and intent not in ("greeting", "help"):
                await self.goto(turn, journeys.INTENT_ENTRY[intent])
            else:
                await self.goto(turn, START_STATE)
            return
        if len(inbound.text or "") > MAX_TEXT:
            turn.say("input.too_long")
            await self.goto(turn, AGAIN)
            return

        state = REGISTRY.get(s.state)
        if state is None or state.handle is None:
            _reset(turn)
            await self.goto(turn, START_STATE)
            return
        if "_digress" in s.data:
            await self._digress_answer(turn, state)
            return
        if turn.stale_payload() and not (inbound.payload or "").startswith("go:"):
            turn.say("input.stale_button")
            await self.goto(turn, AGAIN)
            return
        if _emoji_only(inbound) and turn.choice() is None:
            # 👍 or 🙏 at a question it does not answer (a yes where yes/no is asked is read as
            # such by `choice`): the question again, kindly, not "type only the digits".
            turn.say("input.emoji_only")
            await self.goto(turn, AGAIN)
            return
        if turn.photo is not None and turn.photo.refused and state.photo:
            # Too big, not an image, or not to be had: why, and the question again (the index
            # typed is enough; a photo step offers to go on without one).
            media = self.media
            turn.say(f"photo.{turn.photo.refused}", max=turn.tr.number(media.max_mb if media else 0))
            await self.goto(turn, AGAIN)
            return
        await self._answer(turn, state)

    async def _answer(self, turn: Turn, state) -> None:
        """The message at a journey's question: a request for something else leaves the journey
        (kept for later); otherwise the state's handler reads it."""
        target = await _digression(turn, state)
        if target is not None:
            if state.expects == "text":
                # A free answer that reads as a request: ask which it is rather than file it.
                _ask_digression(turn, target)
                return
            _pause(turn)
            await self.goto(turn, target)
            return
        await self.goto(turn, await state.handle(turn))

    async def _digress_answer(self, turn: Turn, state) -> None:
        """The answer to "is this your answer, or another request?" (free-text states)."""
        asked = turn.session.data.pop("_digress")
        picked = turn.choice()
        turn.session.data["_choices"] = asked["choices"]
        if picked in ("dg:answer", asked["go"]):
            # Either way, what follows reads the text the customer typed, as if just typed.
            redo = Turn(
                replace(turn.inbound, text=asked["text"], payload=None),
                _LazyUnderstanding(asked["text"], turn.inbound.lang_hint, turn.now),
                turn.session,
                turn.tx,
                turn.profile,
                turn.now,
                turn.replies,
            )
            if picked == "dg:answer":
                await self.goto(redo, await state.handle(redo))
            else:
                _pause(redo)
                await self.goto(redo, journeys.GO_ENTRY[asked["go"]])
        elif turn.inbound.payload is not None:
            turn.say("input.stale_button")
            await self.goto(turn, AGAIN)
        else:
            await self._answer(turn, state)  # something new: read it as such

    async def goto(self, turn: Turn, target: str | None, *, consent: bool = True) -> None:
        """Enter `target` and run prompts until one asks; `consent`: at the menu, the reminders
        question owed since a link comes first (not when the customer asked for the menu)."""
        for _ in range(MAX_HOPS):
            if target is None:
                return
            if target == AGAIN:
                target = turn.session.state
            state = REGISTRY.get(target)
            if state is None:
                raise KeyError(f"no state {target!r}")
            if target in ENTRY_STATES and target != turn.session.state:
                turn.keep_given()
                paused = turn.data.get("_paused")
                if paused and paused["state"].split(".")[0] == target.split(".")[0]:
                    del turn.data["_paused"]  # started again: the journey left earlier is superseded
            if state.needs_link and not await turn.tx.linked_contracts(turn.channel, turn.user_id):
                turn.data["after_link"] = target
                target = LINK_CONTRACT
                continue
            if target == START_STATE and consent and await reminders.consent_due(turn):
                target = REMIND_CONSENT  # the journey that linked a contract is over: the reminders question, alone
                continue
            turn.session.state = target
            target = await state.prompt(turn) if state.prompt else None
        raise RuntimeError(f"state redirect loop near {turn.session.state!r}")

    async def _command(self, turn: Turn, command: str) -> None:
        if command == "cancel":
            busy = turn.session.state != START_STATE
            _reset(turn)
            turn.say("cancel.done" if busy else "cancel.nothing")
            await self.goto(turn, START_STATE, consent=False)
        elif command == "menu":
            # Back to the menu: what the journey had gathered is kept a while and offered back.
            _pause(turn)
            await self.goto(turn, START_STATE, consent=False)
        elif command == "start":
            _reset(turn)
            await self.goto(turn, START_STATE)
        elif command == "resume":
            paused = _live_paused(turn)
            if paused is None:
                turn.say("input.stale_button")
                await self.goto(turn, AGAIN)
                return
            del turn.data["_paused"]
            turn.data.clear()
            turn.data.update(paused["data"])
            await self.goto(turn, paused["state"])
        elif command == "help":
            if turn.understood is not None and turn.understood.entities.get("topic") == "transition":
                menu.say_transition(turn)  # "wach lydec mazal?" (issue 24), in any state
            else:
                turn.say("help.text", phone=turn.tr.ltr(self.profile.contact.phones[0]))
            await self.goto(turn, AGAIN if turn.session.state != START_STATE else START_STATE)
        elif command in ("stop", "stop_reminders"):
            await self._stop(turn, explicit=command == "stop_reminders")
        elif command.startswith("remind:"):
            await self._remind(turn, command)
        elif command == "language":
            # The journey waits: once the language is chosen, its question is asked again in it.
            if turn.session.state not in (START_STATE, LANG_CHOOSE):
                turn.data["_lang_return"] = turn.session.state
            await self.goto(turn, LANG_CHOOSE)

    async def _stop(self, turn: Turn, *, explicit: bool) -> None:
        """ "stop" anywhere: reminders off. A bare "stop" also cancels the journey in progress;
        "bla rappel" keeps it (its question again)."""
        busy = turn.session.state not in (START_STATE, REMIND_CONSENT)  # at the question itself: answered
        was_on = await reminders.stop(turn, explicit=explicit)
        if was_on or explicit:
            turn.say("remind.stopped")
        if explicit or (was_on and not busy):
            await self.goto(turn, AGAIN if busy else START_STATE)
        else:
            await self._command(turn, "cancel")

    async def _remind(self, turn: Turn, command: str) -> None:
        """A consent answer (a button of the question after linking or of the menu's settings, or
        typed), or a reminder's "send my index" (the reading journey on that contract)."""
        if command.startswith(reminders.READ_PREFIX):
            _pause(turn)
            ReadingData.of(turn).wanted = command[len(reminders.READ_PREFIX) :]
            await self.goto(turn, READING_START)
            return
        kinds = reminders.OPTIONS.get(command)
        if kinds is None:
            turn.say("input.stale_button")
            await self.goto(turn, AGAIN)
            return
        turn.data.pop("_consent", None)
        await reminders.set_consent(turn, kinds, "button" if turn.inbound.payload else "typed")
        reminders.say_consent(turn, kinds)
        here = turn.session.state
        await self.goto(turn, AGAIN if here not in (START_STATE, REMIND_SETTINGS, REMIND_CONSENT) else START_STATE)


async def _drawn(outcome: Outcome) -> Outcome:
    """Pictures are drawn after the commit (their inputs are what the turn kept), outside the
    event loop; a turn without one (almost all) costs a scan of its replies."""
    if not any(r.image is not None for r in outcome.replies):
        return outcome
    from .chart import drawn

    return Outcome(await drawn(outcome.replies), outcome.lang)


class _Redelivered(Exception):
    """The message was handled before: its turn's writes are rolled back."""


def _legacy_session(data: dict) -> bool:
    """Session data written by the code before typed journey data (prefixed keys)."""
    paused = data.get("_paused")
    return legacy_data(data) or (isinstance(paused, dict) and legacy_data(paused.get("data", {})))


def _reset(turn: Turn) -> None:
    """Back to the menu, forgetting the journey in progress (never confirmed records)."""
    turn.session.state = START_STATE
    turn.session.data.clear()


_ENGINE_KEYS = ("_choices", "_paused", "_digress", GIVEN)


def _pause(turn: Turn) -> None:
    """Leave the current journey for another request: its state and answers are kept (one
    journey at a time, for a while) so the menu can offer to finish it; the new journey starts
    clean. Only journeys that file something (PAUSABLE) are kept; another one is simply left."""
    s = turn.session
    journey = s.state.split(".")[0]
    kept = {k: v for k, v in s.data.items() if k not in _ENGINE_KEYS}
    given = s.data.get(GIVEN)
    paused = s.data.get("_paused")
    s.data.clear()
    if journey in PAUSABLE and s.state != START_STATE:
        if given:
            kept[GIVEN] = given
        paused = {"state": s.state, "data": kept, "at": turn.now.isoformat()}
    if paused:
        s.data["_paused"] = paused


PAUSED_FOR = timedelta(minutes=30)  # how long a left journey is offered back
# Where a journey ends and the customer is free to start another: the left journey is offered there.
RESTING = frozenset({START_STATE, ref("bills.start")})


def _live_paused(turn: Turn) -> dict | None:
    paused = turn.data.get("_paused")
    if paused is not None and turn.now - datetime.fromisoformat(paused["at"]) > PAUSED_FOR:
        del turn.data["_paused"]
        return None
    return paused


def _offer_resume(turn: Turn) -> None:
    """At a resting point after a digression, the journey left midway is offered back: a line
    saying what is not sent yet, and a button to finish it."""
    paused = _live_paused(turn)
    if paused is None or turn.session.state not in RESTING or not turn.replies or not turn.replies[-1].buttons:
        return
    journey = paused["state"].split(".")[0]
    index = paused["data"].get(ReadingData.key, {}).get("index") or paused["data"].get(GIVEN, {}).get("index")
    if journey == "reading" and index is not None:
        offer = turn.tr("resume.reading_index", index=turn.tr.ltr(index))
    else:
        offer = turn.tr(f"resume.{journey}")
    last = turn.replies[-1]
    buttons = (turn.button("resume", "resume.button"), *last.buttons)
    turn.replies[-1] = replace(last, text=offer + "\n\n" + last.text, buttons=buttons)
    turn.data["_choices"] = [[b.payload, b.label] for b in buttons]


async def _digression(turn: Turn, state) -> str | None:
    """The entry state of another request, when the message clearly asks for one instead of
    answering the current question: not a pressed or typed choice, not a number where a number
    is expected, a confident intent of another journey."""
    if turn.inbound.payload is not None or not turn.text or state.name == START_STATE:
        return None
    if (state.expects == "number" and _NUMBER.search(turn.typed())) or not LETTER.search(turn.typed()):
        return None  # a number alone answers whatever was asked; it asks for nothing
    if turn.choice() is not None:
        return None
    u = turn.understood
    if u is None or u.intent not in ENTRY_INTENTS or u.confidence < DIGRESSION_CONFIDENCE:
        return None
    if u.source != "rules" and not await _model_may_digress(turn, state, u.confidence):
        return None  # a guess of the trained model does not pull the customer away
    target = journeys.INTENT_ENTRY[u.intent]
    here = {state.name.split(".")[0], str(turn.data.get("after_link", "")).split(".")[0]}
    return None if target.split(".")[0] in here else target


MODEL_DIGRESSION = 0.9


async def _model_may_digress(turn: Turn, state, confidence: float) -> bool:
    """Where a sure reading of the trained model alone may take the customer elsewhere: a
    sentence (four words or more: "lma" at the meter list stays the water meter) that the
    question's own reader does not take ("bghit ntkelem m3a chi wahed" asked for a city), or a
    free-text question, where the customer is asked which it is rather than moved."""
    if confidence < MODEL_DIGRESSION or len(turn.text.split()) < 4:
        return False
    if state.expects == "text":
        return True
    return state.answers is not None and not await state.answers(turn)


ENTRY_INTENTS = frozenset(k for k in journeys.INTENT_ENTRY if k not in ("greeting", "help"))


def _emoji_only(inbound: Inbound) -> bool:
    """A typed message of emoji alone (with their joiners, variation selectors, skin tones)."""
    text = (inbound.text or "").strip()
    if not text or inbound.payload is not None or inbound.photo_ref or len(text) > 40 or text.isascii():
        return False
    kinds = {unicodedata.category(c) for c in text if not c.isspace()}
    return "So" in kinds and kinds <= {"So", "Sk", "Mn", "Cf"}


_NUMBER = re.compile(r"\d{2,}")


def _ask_digression(turn: Turn, target: str) -> None:
    go = next(p for p, entry in journeys.GO_ENTRY.items() if entry == target)
    turn.data["_digress"] = {"text": turn.text, "go": go, "choices": turn.data.get("_choices", [])}
    item = FLOWS[target.split(".")[0]].menu  # the journey's own menu label, where it has one
    label = item.label if item is not None else "menu.prompt"
    turn.ask(
        turn.tr("digress.ask", text=turn.text[:80]),
        [turn.button(go, label), turn.button("dg:answer", "digress.answer")],
    )


class _LazyUnderstanding:
    """Understanding for a turn that asks for it: a pressed button or a typed button label
    (most turns inside a journey) never needs it. Once per message, even if its turn runs again.
    (A class: functools.cache on a closure made per message is several times dearer.)"""

    __slots__ = ("done", "lang_hint", "result", "text", "today")

    def __init__(self, text: str, lang_hint: str | None, today: date) -> None:
        self.text, self.lang_hint, self.today = text, lang_hint, today
        self.result: object = None
        self.done = False

    def __call__(self) -> object:
        if not self.done:
            self.result = understand(self.text, self.lang_hint, today=self.today) if self.text.strip() else None
            self.done = True
        return self.result


def _first_language(inbound: Inbound) -> str:
    """The language a new chat is answered in: the one its first message is written in, the
    channel's hint (Telegram's language_code: the phone's settings, French on many Moroccan phones
    whose owners write Arabic) only where the text does not tell ("/start", "ok", a number)."""
    return detect_lang(inbound.text or "", inbound.lang_hint)


def _command(turn: Turn) -> str | None:
    payload = turn.inbound.payload
    if payload is not None:
        return payload if payload.startswith("remind:") else PAYLOAD_COMMANDS.get(payload)
    text = turn.text
    if text.startswith("/"):
        word = text.split()[0].split("@")[0].lower()
        return COMMANDS.get(word, "menu")
    picked = turn.typed_label()
    if picked is not None:  # a button's label typed back: as if pressed
        return PAYLOAD_COMMANDS.get(picked)
    if reminders.stop_phrase(text):
        return "stop_reminders"  # "bla rappel", "ma bghitch tdkir": reminders off, the journey kept
    consent = reminders.typed_consent(turn)
    if consent is not None:
        return consent
    said = GLOBAL_WORDS.get(turn.typed())
    if said is not None:
        return said
    if turn.session.state in RESTING and "_paused" in turn.data and (turn.choice() == "resume" or parse_yes_no(text)):
        return "resume"  # "nkemmel", "oui", "wakha" to the offer to finish what was left
    u = turn.understood
    if u is None or u.source != "rules":
        return None  # a guess of the trained model is no command
    # Typed "annuler" / "الغاء" works in every state; so does asking for the menu.
    if u.intent == "cancel" and u.confidence >= 0.6:
        return "cancel"
    if u.intent == "help" and ((u.confidence >= 0.8 and len(text) < 25) or u.entities.get("topic") == "transition"):
        return "help"
    return None
