"""The Telegram channel: python-telegram-bot carries updates in and messages out; the
conversation core decides.

- Updates of one chat are processed in arrival order, different chats concurrently
  (`PerChatUpdateProcessor`); the engine's per-chat lock and its update_id claim make a
  redelivered update (after a crash, or a webhook retry) do nothing.
- A turn's replies are merged into as few messages as possible (Telegram allows about one
  message per second per chat): texts are joined, a message ends where buttons are offered.
- Choices are inline keyboards (callback data = the core's ASCII payloads); a pressed keyboard is
  edited away and the choice written under it, so an old button cannot be pressed twice by
  mistake. Every callback query is answered, stale ones included.
- "Share my number" is a reply keyboard with `request_contact`; a contact counts as the
  sender's own only if its user_id is the sender's.
- A reply that could not be sent goes to the outbox; the dispatcher retries it.
- `TelegramChannel` is the channel as the runtime runs it: polling or a webhook, both with the
  inbox (an update is kept before Telegram is told it was received, replayed at start if it was
  not answered; conversations/inbox.py).
- One chat flooding the bot gets its first messages answered and one notice; the rest are kept,
  marked answered, not run (bot/channels/flood.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import warnings
from collections.abc import Awaitable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlparse

# Opt in to PTB 23's timedelta `retry_after` now (no deprecation warning on every 429).
os.environ.setdefault("PTB_TIMEDELTA", "1")

import aiohttp
from telegram import BotCommand, InputFile, Update
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, BaseUpdateProcessor, ContextTypes, TypeHandler
from telegram.warnings import PTBUserWarning

from bot.errors import ConfigError
from conversations import reminders
from conversations.dispatch import DeliveryUnknown, Dispatcher, RetryLater, Undeliverable
from conversations.engine import Engine
from conversations.events import Button, Inbound, Reply
from conversations.i18n import translator
from conversations.inbox import Inbox
from conversations.media import TooLarge, Unavailable
from conversations.workers import SharedChats, chat_locks
from storage import OutboxMessage

from .base import Limits, Outgoing, mask, plan, units
from .base import split_text as _split_text
from .flood import FloodGuard
from .media import read_capped
from .ordering import ChatSequencer
from .payloads import OTHER_KINDS, UNREADABLE, Checked, check_telegram
from .telegram_text import TextUpdate, text_update
from .telegram_transport import AiohttpRequest
from .webhook import BodyGate, as_bytes, json_object

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

CHANNEL = "telegram"
MAX_TEXT = 4096  # UTF-16 code units, as Telegram counts
MAX_CALLBACK = 64  # bytes
MAX_CAPTION = 1024  # characters of a photo's caption
# Inline keyboards take many buttons; a label longer than 16 units gets a row of its own.
LIMITS = Limits(MAX_TEXT, buttons=100, label=None)
COMMANDS = ("start", "menu", "cancel", "help", "language")
ALLOWED_UPDATES = ["message", "callback_query"]


# ---------------------------------------------------------------------- inbound
def to_inbound(update: Update) -> Inbound | None:
    """A Telegram update as the core's event; None for updates the bot ignores."""
    if update.callback_query is not None:
        cq = update.callback_query
        chat = cq.message.chat if cq.message else None
        return Inbound(
            channel=CHANNEL,
            user_id=str(chat.id if chat else cq.from_user.id),
            message_id=str(update.update_id),
            payload=cq.data or "",
            lang_hint=cq.from_user.language_code,
            contact_request_supported=True,
        )
    msg = update.message
    kind = msg.api_kwargs.get("addad_kind") if msg is not None else None  # set by payloads.check_telegram
    if msg is None or (msg.from_user is None and kind != UNREADABLE):
        return None  # edited messages, channel posts, membership changes
    common: dict[str, Any] = dict(
        channel=CHANNEL,
        user_id=str(msg.chat.id),
        message_id=str(update.update_id),
        lang_hint=msg.from_user.language_code if msg.from_user else None,
        contact_request_supported=True,
        received_at=None,
    )
    if kind == UNREADABLE or msg.from_user is None:
        return Inbound(**common, other=UNREADABLE)
    text = msg.text or msg.caption
    if msg.contact is not None:
        return Inbound(
            **common, contact_phone=msg.contact.phone_number, contact_is_own=msg.contact.user_id == msg.from_user.id
        )
    if msg.photo:
        return Inbound(**common, text=text, photo_ref=msg.photo[-1].file_id)
    if msg.document is not None:
        if (msg.document.mime_type or "").startswith("image/"):
            return Inbound(**common, text=text, photo_ref=msg.document.file_id)
        return Inbound(**common, other="document")
    if msg.location is not None:
        return Inbound(**common, location=(msg.location.latitude, msg.location.longitude))
    if text is not None:
        return Inbound(**common, text=text)
    if isinstance(kind, str):  # a sticker, a voice message…: named, not read
        return Inbound(**common, other=kind)
    for other in OTHER_KINDS:
        if getattr(msg, other, None):
            return Inbound(**common, other=other)
    return Inbound(**common, other="unknown")


# ---------------------------------------------------------------------- outbound
def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Pieces of at most `limit` UTF-16 units (base.split_text at Telegram's limit)."""
    return _split_text(text, limit)


def _rows(buttons: list[Button]) -> list[list[Button]]:
    if all(units(b.label) <= 16 for b in buttons) and len(buttons) > 2:
        return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    if len(buttons) == 2 and all(units(b.label) <= 16 for b in buttons):
        return [buttons]
    return [[b] for b in buttons]


_UNPARSED = ("sendMessage", "editMessageText", "answerCallbackQuery", "getUpdates", "sendPhoto")
warnings.filterwarnings("ignore", message=rf"Please use 'Bot\.({'|'.join(_UNPARSED)})'", category=PTBUserWarning)


async def _call(bot, method: str, **params: Any) -> None:
    """A Bot API call through PTB (request class, rate limiter, errors) whose answer is not
    turned into objects: nothing reads it, and parsing a message with its keyboard back costs
    more than building it (bench/README.md). Through `Bot._post`, under `do_api_request`, which
    would first raise (and filter) a warning on every call for a method PTB also names (~3 µs)."""
    post = getattr(bot, "_post", None)  # (PTB's internal; its public wrapper where a release drops it)
    kwargs = {k: v for k, v in params.items() if v is not None}
    if post is None:
        await bot.do_api_request(method, api_kwargs=kwargs)
    else:
        await post(method, api_kwargs=kwargs)


async def _send_message(bot, chat_id: int, text: str, markup: Markup | None) -> None:
    await _call(bot, "sendMessage", chat_id=chat_id, text=text, reply_markup=markup.json if markup else None)


class Markup(dict):
    """A reply_markup as the Bot API's JSON object, with its JSON text (PTB sends a string
    parameter as it is). Shared between messages: read only."""

    __slots__ = ("json",)

    def __init__(self, value: dict) -> None:
        super().__init__(value)
        self.json = json.dumps(value, ensure_ascii=False, separators=(",", ":"))


REMOVE_KEYBOARD = Markup({"remove_keyboard": True})


def _offer(out: Outgoing) -> bool:
    """A message whose choices are only `go:` buttons (the 📊 chart after a reading or a bill):
    they start a journey from wherever the chat is, so they can ride on the next question."""
    return out.image is None and bool(out.buttons) and all(b.payload.startswith("go:") for b in out.buttons)


_NAVIGATION = ("go:", "cmd:")


def _offered(payload: str | None) -> bool:
    """A button an offer carries (`go:` with its argument: "go:usage:1000001", a journey for
    one contract), as opposed to the menu's entries ("go:reading", "cmd:lang")."""
    return bool(payload) and payload.startswith("go:") and payload.count(":") >= 2  # type: ignore[union-attr]


@lru_cache(maxsize=256)
def _markup_kept(rows: tuple[tuple[tuple[tuple[str, str], ...], ...], ...]) -> str:
    return json.dumps({"inline_keyboard": [[dict(b) for b in row] for row in rows]}, ensure_ascii=False)


def offers_joined(messages: list[Outgoing]) -> list[Outgoing]:
    """On Telegram an offer's buttons join the inline keyboard of the question that follows
    (one message, one sendMessage, instead of two); its text stays above the question's. Not
    when the result would not fit one message, or the question needs a reply keyboard.
    (WhatsApp renders its own way: its lists hold 10 rows.)"""
    out: list[Outgoing] = []
    for m in messages:
        prev = out[-1] if out else None
        if (
            prev is not None
            and _offer(prev)
            and m.image is None
            and m.buttons
            and not any(b.request for b in m.buttons)
            # Only a menu's keyboard (where to go next), never a question's answers: with the
            # chart button among them, a typed "1" would no longer mean the question's first.
            and all(b.payload.startswith(_NAVIGATION) for b in m.buttons)
            and len(prev.buttons) + len(m.buttons) <= (LIMITS.buttons or 0)
            and 2 * (len(prev.text) + 2 + len(m.text)) <= MAX_TEXT  # fits in UTF-16 units, surely
        ):
            out[-1] = Outgoing(prev.text + "\n\n" + m.text, [*prev.buttons, *m.buttons])
        else:
            out.append(m)
    return out


def markup_for(buttons: list[Button] | tuple[Button, ...]) -> Markup | None:
    """The reply_markup for these choices. Built as plain data, once per set of choices: PTB's
    keyboard objects cost more to build and serialise than the rest of a send (bench/README.md),
    and the same menus recur."""
    return _markup(tuple(buttons)) if buttons else None


@lru_cache(maxsize=1024)
def _markup(buttons: tuple[Button, ...]) -> Markup:
    if any(b.request == "contact" for b in buttons):
        # Telegram can only ask for the contact from a reply keyboard; the other choices go
        # there as text buttons (their labels typed back are understood as the choice).
        return Markup(
            {
                "keyboard": [
                    [{"text": b.label, "request_contact": True} if b.request == "contact" else {"text": b.label}]
                    for b in buttons
                ],
                "resize_keyboard": True,
                "one_time_keyboard": True,
            }
        )
    for b in buttons:
        if not b.payload.isascii() or len(b.payload.encode()) > MAX_CALLBACK:
            raise ValueError(f"callback data not ASCII within {MAX_CALLBACK} bytes: {b.payload!r}")
    return Markup(
        {
            "inline_keyboard": [
                [{"text": b.label, "callback_data": b.payload} for b in row] for row in _rows(list(buttons))
            ]
        }
    )


class UnsentReply(Exception):
    """Telegram did not take a reply; it was queued for the dispatcher."""


class TelegramAdapter:
    """Updates in, replies out (base.Channel)."""

    name: ClassVar[str] = CHANNEL
    limits: ClassVar[Limits] = LIMITS
    pull: ClassVar[bool] = False

    def __init__(
        self,
        engine: Engine,
        *,
        dispatcher: Dispatcher | None = None,
        answered: Inbox | None = None,
        flood: FloodGuard | None = None,
    ) -> None:
        self.engine = engine
        self.flood = flood  # the per-chat flood limit (bot/channels/flood.py); None: none
        self.replayed: set[str] = set()  # update ids accepted before the last stop: not counted in a flood
        # Where unsent replies go (a bare one, without senders, for a benchmark's adapter).
        self.dispatcher = dispatcher or Dispatcher(engine.store, engine.profile, [])
        self.answered = answered  # polling: inbox rows to mark once answered
        self.replaying: set[str] = set()  # update ids whose turn ran but maybe not its replies
        self._reply_keyboard: set[int] = set()  # chats showing the "share my number" keyboard
        self.media: TelegramMedia | None = None  # made with the bot at the first update

    def to_inbound(self, update: Update) -> Inbound | None:
        return to_inbound(update)

    # -------------------------------------------------------------- one update
    async def on_update(self, update: Update | TextUpdate, context: ContextTypes.DEFAULT_TYPE) -> None:
        if isinstance(update, TextUpdate):  # a private chat's text, not parsed by PTB (telegram_text.py)
            await self._respond(context.bot, update.inbound(CHANNEL), [], None)
        else:
            await self._on_update(update, context)
        if self.answered is not None:
            self.answered.done(str(update.update_id))

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        bot = context.bot
        chat = update.effective_chat
        cq = update.callback_query
        side: list[Awaitable] = []
        if cq is not None:
            side.append(self._answer(cq))  # never leave a spinner turning
        if chat is not None and chat.type != "private":
            await asyncio.gather(*side)
            lang = _lang(update)
            if update.message is not None:
                await bot.send_message(chat.id, translator(lang)("telegram.private_only"))
            return
        inbound = to_inbound(update)
        if inbound is None:
            await asyncio.gather(*side)
            return
        await self._respond(bot, inbound, side, cq)

    async def _respond(self, bot, inbound: Inbound, side: list[Awaitable], cq) -> None:
        """The turn of a readable update (flood limit, the pressed message edited, replies sent)."""
        if self.flood is not None and inbound.message_id not in self.replayed:
            verdict = self.flood.admit(inbound.user_id)
            if verdict == "drop":  # kept and marked answered, not run
                await asyncio.gather(*side)
                return
            if verdict == "notice":
                inbound = Inbound(
                    CHANNEL, inbound.user_id, inbound.message_id, lang_hint=inbound.lang_hint, other="flood"
                )
        self.replayed.discard(inbound.message_id)
        if cq is not None and cq.message is not None and inbound.other != "flood":
            side.append(self._show_choice(cq))
        resend = inbound.message_id in self.replaying
        self.replaying.discard(inbound.message_id)
        if self.media is None:
            self.media = TelegramMedia(bot)
        respond = self.engine.respond(inbound, resend=resend, media=self.media)
        if side:
            outcome, *_ = await asyncio.gather(respond, *side)
        else:  # no task to start for a plain message
            outcome = await respond
        if outcome.replies:
            await self.send_replies(
                bot,
                int(inbound.user_id),
                outcome.replies,
                lang=outcome.lang,
                remove_keyboard=inbound.contact_phone is not None,
            )

    async def _answer(self, cq) -> None:
        try:
            await _call(cq.get_bot(), "answerCallbackQuery", callback_query_id=cq.id)
        except TelegramError as exc:  # too old to answer: nothing else to do
            log.info("callback answer failed: %s", exc)

    async def _show_choice(self, cq) -> None:
        """Edit the pressed message: its keyboard goes, the choice is written under it. An offer
        joined to the keyboard (offers_joined: the 📊 of a reading on the menu) stays when
        another button is pressed: it was a message of its own, still valid; pressed itself,
        it answered the question below it, whose buttons go."""
        markup = cq.message.reply_markup
        label = None
        kept: list[list[dict]] = []
        if markup is not None:
            for row in markup.inline_keyboard:
                for b in row:
                    if b.callback_data == cq.data:
                        label = b.text
                offers = [
                    {"text": b.text, "callback_data": b.callback_data}
                    for b in row
                    if b.callback_data != cq.data and _offered(b.callback_data)
                ]
                if offers:
                    kept.append(offers)
        if label is None or not getattr(cq.message, "text", None):
            return
        lang = _lang_of(cq.from_user.language_code)
        try:
            # Without reply_markup, Telegram takes the keyboard away.
            await _call(
                cq.get_bot(),
                "editMessageText",
                chat_id=cq.message.chat_id,
                message_id=cq.message.message_id,
                text=cq.message.text + "\n\n" + translator(lang)("telegram.you_chose", label=label),
                reply_markup=_markup_kept(tuple(tuple(tuple(b.items()) for b in row) for row in kept))
                if kept
                else None,
            )
        except TelegramError as exc:
            log.info("could not edit the pressed message: %s", exc)

    # -------------------------------------------------------------- sending
    async def send_replies(
        self, bot, chat_id: int, replies: list[Reply], *, lang: str = "fr", remove_keyboard: bool = False
    ) -> None:
        remove = remove_keyboard or chat_id in self._reply_keyboard
        if remove and replies and not any(b.request for r in replies for b in r.buttons):
            # The "share my number" keyboard must go, and only a message without inline
            # buttons can take it away: the first reply goes alone if the rest has choices.
            messages = plan(replies[:1]) + plan(replies[1:]) if plan(replies)[0].buttons else plan(replies)
        else:
            messages = offers_joined(plan(replies))
        for i, out in enumerate(messages):
            if out.image is not None and out.image.png:
                try:
                    await self._send_photo(bot, chat_id, out.image.png, out.text)
                except UnsentReply:  # the dispatcher retries text: the caption says what it showed
                    rest = [Reply(out.text)] + [Reply(m.text, tuple(m.buttons)) for m in messages[i + 1 :]]
                    await self._queue(chat_id, rest, lang)
                    return
                continue
            pieces = split_text(out.text)
            for j, piece in enumerate(pieces):
                last = j == len(pieces) - 1
                markup = markup_for(out.buttons) if last else None
                if markup is not None and "keyboard" in markup:
                    self._reply_keyboard.add(chat_id)
                    remove = False
                elif remove and markup is None:
                    markup = REMOVE_KEYBOARD
                    self._reply_keyboard.discard(chat_id)
                    remove = False
                try:
                    await self._send(bot, chat_id, piece, markup)
                except UnsentReply:
                    rest = [Reply("\n\n".join(pieces[j:]), tuple(out.buttons))] + [
                        Reply(m.text, tuple(m.buttons)) for m in messages[i + 1 :]
                    ]
                    await self._queue(chat_id, rest, lang)
                    return

    async def _send(self, bot, chat_id: int, text: str, markup) -> None:
        try:
            await _send_message(bot, chat_id, text, markup)
        except Forbidden as exc:
            log.info("chat %s…: not allowed to write (%s)", str(chat_id)[:3], exc)
        except BadRequest as exc:
            log.error("message refused by Telegram (%s); sending it without keyboard", exc)
            try:
                await _send_message(bot, chat_id, text, None)
            except TelegramError:
                log.exception("message refused twice; dropped")
        except (NetworkError, RetryAfter) as exc:
            # NetworkError includes TimedOut: a reply Telegram may have taken is sent again
            # rather than lost (a repeated reply is better than silence).
            log.warning("reply not sent (%s); queued for retry", type(exc).__name__)
            raise UnsentReply() from exc

    async def _send_photo(self, bot, chat_id: int, png: bytes, caption: str) -> None:
        """A picture uploaded with sendPhoto (multipart), its caption within Telegram's 1,024."""
        try:
            await _call(
                bot,
                "sendPhoto",
                chat_id=chat_id,
                photo=InputFile(png, filename="chart.png"),
                caption=caption[:MAX_CAPTION],
            )
        except Forbidden as exc:
            log.info("chat %s…: not allowed to write (%s)", str(chat_id)[:3], exc)
        except BadRequest as exc:
            log.error("photo refused by Telegram (%s); its caption sent as text", exc)
            await self._send(bot, chat_id, caption, None)
        except (NetworkError, RetryAfter) as exc:
            log.warning("photo not sent (%s); its caption queued for retry", type(exc).__name__)
            raise UnsentReply() from exc

    async def _queue(self, chat_id: int, replies: list[Reply], lang: str) -> None:
        payloads = [{"text": r.text, "buttons": [[b.payload, b.label, b.request] for b in r.buttons]} for r in replies]
        await self.dispatcher.queue_replies(CHANNEL, str(chat_id), lang, payloads)

    async def close(self) -> None:
        if self.media is not None:
            await self.media.close()

    # -------------------------------------------------------------- errors
    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        err = context.error
        update_id = getattr(update, "update_id", None)
        log.error(
            "update %s failed: %s: %s",
            update_id,
            type(err).__name__,
            mask(str(err)),
            exc_info=(type(err), err, err.__traceback__) if err and not isinstance(err, NetworkError) else None,
        )
        if isinstance(update, TextUpdate):
            chat_id, lang = update.chat_id, _lang_of(update.language_code)
        elif isinstance(update, Update) and update.effective_chat is not None:
            chat_id, lang = update.effective_chat.id, _lang(update)
        else:
            return
        t = translator(lang)
        with contextlib.suppress(TelegramError):
            await context.bot.send_message(
                chat_id, t("error.internal", phone=t.ltr(self.engine.profile.contact.phones[0]))
            )

    # -------------------------------------------------------------- command menu
    async def set_commands(self, bot) -> None:
        for lang in ("ar", "fr"):
            t = translator(lang)
            commands = [BotCommand(c, t(f"commands.{c}")) for c in COMMANDS]
            await bot.set_my_commands(commands, language_code=lang)
        t = translator("fr")
        await bot.set_my_commands([BotCommand(c, t(f"commands.{c}")) for c in COMMANDS])


def _lang_of(code: str | None) -> str:
    return "ar" if (code or "").lower().startswith("ar") else "fr"


def _lang(update: Update) -> str:
    user = update.effective_user
    return _lang_of(user.language_code if user else None)


# ---------------------------------------------------------------------- meter photos
class TelegramMedia:
    """The engine's MediaFetcher for Telegram (conversations/media.py): getFile, whose declared
    size is checked, then the file from the Bot API's file URL, read within the cap. Asked only
    at a step that takes a photo: nothing is downloaded from anyone anywhere else."""

    def __init__(self, bot) -> None:
        self.bot = bot
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, ref: str, max_bytes: int) -> bytes:
        try:
            f = await self.bot.get_file(ref)
        except BadRequest as exc:
            if "too big" in str(exc).lower():  # the Bot API gives no file above 20 MB
                raise TooLarge(str(exc)) from None
            raise Unavailable(f"getFile: {exc}") from None
        except TelegramError as exc:
            raise Unavailable(f"getFile: {type(exc).__name__}") from None
        if f.file_size is not None and f.file_size > max_bytes:
            raise TooLarge(f"declared {f.file_size} bytes")
        if not f.file_path or not f.file_path.startswith(("http://", "https://")):
            raise Unavailable("no file URL")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return await read_capped(self._session, f.file_path, max_bytes)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


# ---------------------------------------------------------------------- ordering
class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Different chats concurrently (up to `limit`), one chat's updates strictly in arrival order.

    PTB starts one task per update in the order it fetched them; the semaphore PTB wraps around
    this is made large so it never makes a task wait before the chat's chain registers it.
    """

    def __init__(self, limit: int = 64) -> None:
        super().__init__(max_concurrent_updates=1 << 16)
        self.sequencer = ChatSequencer(limit)  # TelegramChannel sets its `admit` (the inbox's)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        await self.sequencer.run(chat_key(update), coroutine)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


def chat_key(update: object) -> int | None:
    """The chat an update belongs to, as its turns are ordered (None: no chat)."""
    if isinstance(update, TextUpdate):
        return update.chat_id
    chat = update.effective_chat if isinstance(update, Update) else None
    return chat.id if chat else None


# ---------------------------------------------------------------------- building
def build_application(
    token: str,
    api_url: str,
    adapter: TelegramAdapter,
    *,
    concurrency: int = 64,
    connections: int = 64,
    rate_limit: float = 30.0,
    updater: bool = True,
) -> Application:
    """The PTB application exactly as `addad telegram` runs it (tests and the benchmark use this)."""
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(api_url)
        .base_file_url(api_url.replace("/bot", "/file/bot") if api_url.endswith("/bot") else api_url)
        .request(AiohttpRequest(connections=connections))
        .get_updates_request(AiohttpRequest(connections=2, read_timeout=40.0))
        .concurrent_updates(PerChatUpdateProcessor(concurrency))
        .rate_limiter(
            AIORateLimiter(
                overall_max_rate=rate_limit,
                overall_time_period=1,
                group_max_rate=20,
                group_time_period=60,
                max_retries=3,
            )
        )
    )
    if not updater:
        builder = builder.updater(None)
    app = builder.build()
    app.add_handler(TypeHandler(Update, adapter.on_update))
    app.add_handler(TypeHandler(TextUpdate, adapter.on_update))  # polling's and the webhook's plain texts
    app.add_error_handler(adapter.on_error)
    return app


class TelegramSender:
    """The dispatcher's way to push outbox messages to Telegram."""

    channel = CHANNEL
    confirms_delivery = False  # Telegram has no idempotency key: an unknown outcome is not resent

    def __init__(self, bot) -> None:
        self.bot = bot

    async def send_outbox(self, msg: OutboxMessage, text: str) -> str | None:
        buttons = (
            [Button(p, label, request=req) for p, label, req in msg.payload.get("buttons", [])]
            if msg.kind == "reply"
            else reminders.buttons(msg)  # a reading reminder's "send my index"
        )
        pieces = split_text(text)
        sent = None
        try:
            for j, piece in enumerate(pieces):
                markup = markup_for(buttons) if j == len(pieces) - 1 else None
                sent = await self.bot.send_message(int(msg.user_id), piece, reply_markup=markup)
        except RetryAfter as exc:
            raise RetryLater("429", after=_seconds(exc.retry_after)) from exc
        except TimedOut as exc:
            if msg.kind == "reply":
                raise RetryLater("timeout") from exc  # a conversation reply: repeat rather than lose
            raise DeliveryUnknown("timeout: Telegram may have delivered it") from exc
        except NetworkError as exc:
            raise RetryLater(f"network: {type(exc).__name__}") from exc
        except (Forbidden, BadRequest) as exc:
            raise Undeliverable(str(exc)) from exc
        return str(sent.message_id) if sent else None


def _seconds(value) -> float:
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)


# ---------------------------------------------------------------------- the channel service
async def poll_updates(app: Application, inbox: Inbox, stop: asyncio.Event, *, timeout: int = 25) -> None:
    """getUpdates, with every fetched update written to the inbox before the next call confirms it
    to Telegram: a kill between fetching and answering loses nothing (the inbox's backlog is
    replayed at start; an update whose turn ran gets the replies that turn kept). An update
    already kept (Telegram repeating one it was not told about) is not handled again here. Each
    update is checked first (bot/channels/payloads.py): one that cannot be read is parked."""
    failures = 0
    while not stop.is_set():
        try:
            await app.bot.delete_webhook()
            break
        except (NetworkError, TelegramError) as exc:
            # Not fatal: a start slow enough to time this out (a busy event loop) once left the
            # bot sending reminders and never polling (bench/README.md, "A whole campaign").
            failures += 1
            log.warning("deleteWebhook failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(min(0.5 * 2**failures, 30))
    offset = None
    failures = 0
    while not stop.is_set():
        try:
            # The raw updates: PTB's get_updates parses them all or fails them all, so one update
            # of a shape PTB cannot parse would be fetched again forever (issue 18.5).
            updates = await app.bot.do_api_request(
                "getUpdates",
                api_kwargs={"offset": offset, "timeout": timeout, "allowed_updates": ALLOWED_UPDATES},
                read_timeout=timeout + 10,
            )
            failures = 0
        except RetryAfter as exc:
            await asyncio.sleep(_seconds(exc.retry_after))  # a timedelta (PTB_TIMEDELTA) or seconds
            continue
        except (NetworkError, TelegramError) as exc:
            failures += 1
            log.warning("getUpdates failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(min(0.5 * 2**failures, 30))
            continue
        if not isinstance(updates, list) or not updates:
            continue
        checked = [(check_telegram(u), json.dumps(u, ensure_ascii=False)) for u in updates]
        try:
            fresh = set(await inbox.accept((c.key, body) for c, body in checked))
        except Exception as exc:  # the database out of reach (a server restarting): none confirmed, fetched again
            failures += 1
            log.warning("could not keep %d updates (%s); fetching them again", len(checked), exc)
            await asyncio.sleep(min(0.5 * 2**failures, 30))
            continue
        ids = [u["update_id"] for u in updates if isinstance(u, dict) and type(u.get("update_id")) is int]
        if ids:
            offset = max(ids) + 1
        for c, body in checked:
            if c.key not in fresh:
                continue  # kept before: answered, or part of the backlog being replayed
            fresh.discard(c.key)
            if c.reason is not None:  # parked; its inbox row answered unless its chat is told
                await inbox.park(c.key, c.reason, body, notified=c.update is not None)
            update = await _update(c, app.bot, inbox, body)
            if update is not None:
                await app.update_queue.put(update)


async def _update(checked: Checked, bot, inbox: Inbox | None = None, body: str = "") -> Update | TextUpdate | None:
    """The PTB update of a checked one (only checked fields, so PTB parses it); should PTB
    still refuse it, it is parked (with an inbox) rather than allowed to stop the polling. A
    private chat's plain text is read without PTB's parsing (telegram_text.py)."""
    if checked.update is None:
        return None
    if (text := text_update(checked.update)) is not None:
        return text
    try:
        return Update.de_json(checked.update, bot)
    except Exception as exc:
        reason = f"not parsed by python-telegram-bot: {type(exc).__name__}"
        if inbox is not None:
            await inbox.park(checked.key, reason, body, notified=False)
        else:
            log.warning("Telegram update %s %s", checked.key[:40], reason)
        return None


class TelegramChannel:
    """Telegram as the runtime runs it (base.ChannelService): long polling with the inbox when
    there is no webhook URL, else the webhook on the runtime's server."""

    name: ClassVar[str] = CHANNEL

    def __init__(
        self,
        engine: Engine,
        dispatcher: Dispatcher,
        *,
        token: str,
        api_url: str,
        rate_limit: float,
        webhook_url: str | None = None,
        secret: str = "",
        gate: BodyGate | None = None,
        flood: FloodGuard | None = None,
    ) -> None:
        self.api_url, self.webhook_url, self.secret = api_url, webhook_url, secret
        self.store = engine.store
        self.gate = gate or BodyGate()
        self.inbox = Inbox(engine.store, CHANNEL, retention=engine.profile.retention)
        self.adapter = TelegramAdapter(
            engine, dispatcher=dispatcher, answered=self.inbox, flood=flood or FloodGuard(engine.clock)
        )
        self.app = build_application(token, api_url, self.adapter, updater=False, rate_limit=rate_limit)
        # A new update of a chat whose backlog is being replayed waits for it (Inbox.admit).
        processor = self.app.update_processor
        assert isinstance(processor, PerChatUpdateProcessor)
        processor.sequencer.admit = self.inbox.admit
        self.replay_order = ChatSequencer(64)
        self.sender = TelegramSender(self.app.bot)
        self._polling: asyncio.Task | None = None
        # Webhooks on several workers (one PostgreSQL database): each chat's updates run by
        # whichever worker holds its lock, in inbox order (conversations/workers.py), as WhatsApp's.
        # Long polling is one elected worker: it orders its chats in memory.
        locks = chat_locks(engine.store) if webhook_url is not None else None
        self.shared = (
            SharedChats(engine.store, CHANNEL, locks, self._shared_run, self._shared_chat, sort_key=_update_id)
            if locks is not None
            else None
        )
        self._tasks: set[asyncio.Task] = set()

    @property
    def path(self) -> str:
        return (urlparse(self.webhook_url).path if self.webhook_url else "") or "/telegram"

    async def open(self) -> None:
        await self.inbox.open()  # before any new update is taken
        try:
            await self.app.initialize()  # getMe: checks the token and the API URL
        except InvalidToken:
            raise ConfigError("Telegram refused ADDAD_TELEGRAM_TOKEN (invalid token)") from None
        except NetworkError as exc:
            raise ConfigError(f"cannot reach the Bot API at {self.api_url} ({exc})") from None
        await self.adapter.set_commands(self.app.bot)
        await self.app.start()

    def routes(self, app: web.Application) -> None:
        if self.webhook_url is None:
            return

        async def on_post(request: web.Request) -> web.StreamResponse:
            return await webhook_handler(self.app, self.secret, request, self.gate, inbox=self.inbox, workers=self)

        app.router.add_post(self.path, on_post)

    async def start(self, stop: asyncio.Event) -> None:
        if self.shared is not None:
            self.shared.start()  # its first sweep replays the backlog no live worker holds
        else:
            self.inbox.start_replay(self._chat_of, self._replayed)
        if self.webhook_url is None:
            self._polling = asyncio.create_task(poll_updates(self.app, self.inbox, stop), name="polling")
            log.info("Telegram bot @%s polling", self.app.bot.username)
            return
        await self.app.bot.set_webhook(self.webhook_url, secret_token=self.secret, allowed_updates=ALLOWED_UPDATES)
        log.info("Telegram bot @%s webhook at %s", self.app.bot.username, self.path)

    def _chat_of(self, body: str) -> int | None:
        kept = check_telegram(json.loads(body))
        return chat_key(Update.de_json(kept.update, self.app.bot)) if kept.update is not None else None

    def _shared_chat(self, message_id: str, body: str) -> str:
        chat = self._chat_of(body)
        return str(chat) if chat is not None else f"update:{message_id}"  # no chat: a queue of its own

    def spawn_received(self, chat: str, message_id: str) -> None:
        """The job of an update this worker kept: returns once it is answered, by this worker or
        by the one holding its chat (several workers)."""
        assert self.shared is not None
        task = asyncio.get_running_loop().create_task(self.shared.received(chat, message_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shared_run(self, message_id: str, body: str, processed: bool, here: bool) -> None:
        """A chat's oldest unanswered update, under its lock: one this worker just received is a
        new update (the flood limit counts it); any other is a replay."""
        await self._replayed(message_id, body, processed, counted=here and not processed)

    async def _replayed(self, message_id: str, body: str, processed: bool, *, counted: bool = False) -> None:
        """An update kept before a stop and not answered: checked again (one an older version
        could not read is parked now, never replayed again), then its turn runs, or if it ran,
        the replies it kept are sent (Inbox.replay: the whole backlog, in order, in bounded
        batches). Not counted in a flood: it was accepted when it came."""
        kept = check_telegram(json.loads(body))
        if kept.reason is not None:
            await self.inbox.park(message_id, kept.reason, body, notified=kept.update is not None)
        update = await _update(kept, self.app.bot, self.inbox, body)
        if update is None:
            return
        if processed:
            self.adapter.replaying.add(message_id)
        if not counted:
            self.adapter.replayed.add(message_id)
        await self.replay_order.run(chat_key(update), self.app.process_update(update))

    async def close(self) -> None:
        if self._polling is not None:
            self._polling.cancel()
            await asyncio.gather(self._polling, return_exceptions=True)
        await self.inbox.stop()  # updates waiting for an unfinished backlog stay for the next start
        if self.shared is not None:
            await self.shared.close()  # rows not run yet stay for another worker or the next start
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.app.running:
            await self.app.stop()  # lets the updates in hand finish their turn
        await self.inbox.close()
        await self.adapter.close()
        await self.app.shutdown()


# ---------------------------------------------------------------------- webhook
def check_secret(expected: str, received: str | None) -> bool:
    return received is not None and hmac.compare_digest(as_bytes(expected), as_bytes(received))


def _update_id(message_id: str) -> tuple[int, str]:
    """A chat's rows kept together run by update_id (Telegram's order), not by arrival."""
    return (int(message_id), "") if message_id.isdigit() else (1 << 62, message_id)


async def webhook_handler(
    app: Application,
    secret: str,
    request,
    gate: BodyGate | None = None,
    *,
    inbox: Inbox,
    workers: TelegramChannel | None = None,
) -> Any:
    """POST from Telegram: secret checked (before reading the body), the body read within the
    gate's caps (bot/channels/webhook.py), the update kept in the inbox (durable) before answering
    200, then handled like a polled one (in chat order, marked answered once its replies went
    out; replayed at start if the process died first). An update already kept (Telegram
    redelivering) is not handled again. Anything but a JSON object → 400; an object of the wrong
    shape (bot/channels/payloads.py) is parked, its chat told it could not be read when the chat
    is known, and answered 200: Telegram does not send it again."""
    from aiohttp import web

    if not check_secret(secret, request.headers.get("X-Telegram-Bot-Api-Secret-Token")):
        return web.Response(status=403, text="forbidden")
    raw = await (gate or BodyGate()).read(request)
    if isinstance(raw, web.Response):
        return raw
    data = json_object(raw)
    if data is None:
        log.warning("Telegram webhook: a body that is no update refused")
        return web.Response(status=400, text="bad update")
    checked = check_telegram(data)
    body = json.dumps(data, ensure_ascii=False)
    if workers is not None and workers.shared is not None:
        # Several workers: kept with its chat; whichever worker holds the chat runs it, in order
        # (a bad update is parked by the run, as in a replay).
        chat = workers._shared_chat(checked.key, body)
        if await inbox.accept([(checked.key, body)], chat_of=lambda _m, _b: chat):
            workers.spawn_received(chat, checked.key)
        return web.Response(text="ok")
    if await inbox.accept([(checked.key, body)]):
        if checked.reason is not None:
            await inbox.park(checked.key, checked.reason, body, notified=checked.update is not None)
        update = await _update(checked, app.bot, inbox, body)
        if update is not None:
            await app.update_queue.put(update)
    return web.Response(text="ok")


__all__ = [
    "PerChatUpdateProcessor",
    "TelegramAdapter",
    "TelegramChannel",
    "TelegramSender",
    "build_application",
    "markup_for",
    "mask",
    "plan",
    "split_text",
    "to_inbound",
]
