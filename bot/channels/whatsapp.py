"""The WhatsApp channel (Cloud API): a webhook in, the Graph API out.

- GET answers Meta's verification challenge; POST is authenticated by `X-Hub-Signature-256`
  (HMAC-SHA256 of the raw body with the app secret): missing → 401, wrong (or not ASCII) → 403.
  The body is read first, within the server's gate (bot/channels/webhook.py: 413 above 256 KB,
  503 when too many bodies are being read); a signed body that is no JSON object → 400.
- A POST is answered 200 as soon as its messages are in the inbox table (durable): Meta
  redelivers unanswered webhooks, and a crash after the 200 replays the inbox at start. The
  message id (wamid) is claimed by the engine, so a redelivery is handled once.
- Replies fit WhatsApp: ≤ 3 choices with titles ≤ 20 → reply buttons; ≤ 10 with titles ≤ 24 →
  a list; otherwise numbered text (typing the number works everywhere). Bodies ≤ 1,024 for
  interactive messages, texts ≤ 4,096.
- The sender's number is vouched for by WhatsApp: it proves the phone for linking.
- One chat flooding the bot gets its first messages answered and one notice; the rest are kept,
  marked answered, not run (bot/channels/flood.py); other chats are not slowed.
- Outbound: retries on 429/5xx; outside the 24-hour customer-service window a decision goes as the
  profile's template, or is held and shown at the customer's next message. Statuses are used:
  a failed delivery goes back through the outbox; a "sent" status carrying our outbox id
  (`biz_opaque_callback_data`) confirms a send whose answer was lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

import aiohttp
from aiohttp import web

from conversations import reminders
from conversations.dispatch import (
    DeliveryReport,
    DeliveryUnknown,
    Dispatcher,
    HoldForChat,
    RetryLater,
    Undeliverable,
)
from conversations.engine import Engine
from conversations.events import Button, Inbound, Reply
from conversations.i18n import translator
from conversations.inbox import Inbox
from conversations.media import TooLarge, Unavailable
from conversations.profile import Profile
from conversations.workers import SharedChats, chat_locks
from storage import Clock, OutboxMessage

from .base import Limits, mask, numbered, plan, split_text
from .flood import FloodGuard
from .media import read_capped
from .ordering import ChatSequencer
from .payloads import check_whatsapp, whatsapp_key
from .webhook import BodyGate, as_bytes, json_object

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
MAX_TEXT = 4096
MAX_BODY = 1024
MAX_CAPTION = 1024  # an image's caption
MAX_BUTTONS, MAX_BUTTON_TITLE = 3, 20
MAX_ROWS, MAX_ROW_TITLE, MAX_ROW_DESCRIPTION, MAX_LIST_BUTTON = 10, 24, 72, 20
WINDOW = timedelta(hours=24)
RETRYABLE_CODES = {4, 80007, 130429, 131000, 131016, 131048, 131056, 133004}
OUTSIDE_WINDOW_CODES = {131047, 470}
REPLY_BUTTONS = Limits(MAX_BODY, MAX_BUTTONS, MAX_BUTTON_TITLE)  # ≤ 3 short choices: reply buttons
LIMITS = Limits(MAX_TEXT, MAX_ROWS, MAX_ROW_TITLE)  # ≤ 10 choices: a list; more: numbered text


# ---------------------------------------------------------------------- webhook security
def signature_status(app_secret: str, body: bytes, header: str | None) -> int:
    """200 if `header` is the HMAC-SHA256 of the raw body, 401 if absent, 403 if wrong."""
    if not header:
        return 401
    expected = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return 200 if hmac.compare_digest(expected.encode(), as_bytes(header.strip())) else 403


# ---------------------------------------------------------------------- inbound
def _objects(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def messages_and_statuses(payload: dict) -> tuple[list[Any], list[dict]]:
    """The messages (each object with its sender's profile name) and statuses of one delivery.
    Read leniently: a message that is no object is kept as it is (to be parked, never to fail
    the delivery's other messages); statuses and envelopes of the wrong shape are skipped."""
    messages: list[Any] = []
    statuses: list[dict] = []
    for entry in _objects(payload.get("entry")):
        for change in _objects(entry.get("changes")):
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            names = {
                c.get("wa_id"): p.get("name")
                for c in _objects(value.get("contacts"))
                if isinstance(p := c.get("profile"), dict) and isinstance(c.get("wa_id"), str)
            }
            raw = value.get("messages")
            for m in raw if isinstance(raw, list) else ([raw] if raw is not None else []):
                messages.append({**m, "_name": names.get(m.get("from"))} if isinstance(m, dict) else m)
            statuses += _objects(value.get("statuses"))
    return messages, statuses


def to_inbound(m: Any) -> Inbound:
    """A Cloud API message as the core's event (bot/channels/payloads.py checks it first): one
    whose content cannot be read, from a known sender, is `other="unreadable"`. ValueError when
    nobody can be answered."""
    checked = check_whatsapp(m, CHANNEL)
    if checked.inbound is None:
        raise ValueError(checked.reason)
    return checked.inbound


# ---------------------------------------------------------------------- outbound
def _fits_buttons(buttons: list[Button]) -> bool:
    return REPLY_BUTTONS.fits(buttons)


def _fits_list(buttons: list[Button]) -> bool:
    return LIMITS.fits(buttons) and all(len(b.description or "") <= MAX_ROW_DESCRIPTION for b in buttons)


def render(replies: list[Reply], lang: str) -> list[dict]:
    """A turn's replies as Graph API message objects (without the recipient)."""
    t = translator(lang)
    out: list[dict] = []
    for msg in plan(replies):
        if msg.image is not None and msg.image.png:
            # Uploaded first (WhatsAppService.send_replies), then sent by its media id.
            out.append({"type": "image", "image": {"caption": msg.text[:MAX_CAPTION]}, "_png": msg.image.png})
            continue
        buttons = msg.buttons
        text = msg.text
        if buttons and not (_fits_buttons(buttons) or _fits_list(buttons)):
            text += "\n" + "\n".join(numbered(buttons))
            buttons = []
        if not buttons:
            out += [
                {"type": "text", "text": {"body": piece, "preview_url": False}} for piece in split_text(text, MAX_TEXT)
            ]
            continue
        if len(text) > MAX_BODY:
            # Interactive bodies are short: the long part goes first as text.
            head, _, body = text.rpartition("\n\n")
            if not head or len(body) > MAX_BODY:
                head, body = text, t("whatsapp.choose")
            out += [
                {"type": "text", "text": {"body": piece, "preview_url": False}} for piece in split_text(head, MAX_TEXT)
            ]
            text = body
        if _fits_buttons(buttons):
            action: dict[str, Any] = {
                "buttons": [{"type": "reply", "reply": {"id": b.payload, "title": b.label}} for b in buttons]
            }
            out.append(
                {"type": "interactive", "interactive": {"type": "button", "body": {"text": text}, "action": action}}
            )
        else:
            rows = [
                {"id": b.payload, "title": b.label, **({"description": b.description} if b.description else {})}
                for b in buttons
            ]
            action = {"button": t("whatsapp.list_button")[:MAX_LIST_BUTTON], "sections": [{"rows": rows}]}
            out.append(
                {"type": "interactive", "interactive": {"type": "list", "body": {"text": text}, "action": action}}
            )
    return out


class GraphError(Exception):
    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"HTTP {status}, code {code}: {message}")
        self.status, self.code = status, code

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500 or self.code in RETRYABLE_CODES

    @property
    def outside_window(self) -> bool:
        return self.code in OUTSIDE_WINDOW_CODES


class GraphClient:
    """POST /{phone-number-id}/messages, with a few quick retries on 429 and 5xx."""

    def __init__(
        self,
        api_url: str,
        phone_number_id: str,
        token: str,
        *,
        attempts: int = 3,
        first_delay: float = 0.5,
        timeout: float = 15.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.url = f"{self.api_url}/{phone_number_id}/messages"
        self.media_url = f"{self.api_url}/{phone_number_id}/media"
        self.token = token
        self.attempts, self.first_delay = attempts, first_delay
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.token}"}, connector=aiohttp.TCPConnector(limit=64)
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, to: str, message: dict, *, opaque: str | None = None) -> str:
        """The message's wamid. Raises GraphError, or asyncio.TimeoutError when the outcome is unknown."""
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, **message}
        if opaque:
            body["biz_opaque_callback_data"] = opaque
        delay = self.first_delay
        for attempt in range(1, self.attempts + 1):
            assert self._session is not None, "GraphClient.start() first"
            try:
                async with self._session.post(self.url, json=body, timeout=self.timeout) as r:
                    data = await r.json(content_type=None)
                    if r.status == 200:
                        return str(data["messages"][0]["id"])
                    err = (data or {}).get("error") or {}
                    error = GraphError(r.status, err.get("code"), str(err.get("message", ""))[:200])
                    after = r.headers.get("Retry-After")
            except aiohttp.ClientConnectionError as exc:
                error, after = GraphError(599, None, f"connection: {type(exc).__name__}"), None
            if not error.retryable or attempt == self.attempts:
                raise error
            await asyncio.sleep(max(delay, float(after)) if after and after.isdecimal() else delay)
            delay *= 2
        raise AssertionError("unreachable")

    async def upload(self, data: bytes, mime: str = "image/png") -> str:
        """POST /{phone-number-id}/media (multipart): the media id a message then sends (kept 30
        days at Meta). Raises GraphError, or asyncio.TimeoutError."""
        assert self._session is not None, "GraphClient.start() first"
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", mime)
        form.add_field("file", data, filename="chart.png", content_type=mime)
        try:
            async with self._session.post(self.media_url, data=form, timeout=self.timeout) as r:
                body = await r.json(content_type=None)
                if r.status == 200 and isinstance(body, dict) and body.get("id"):
                    return str(body["id"])
                err = (body.get("error") if isinstance(body, dict) else None) or {}
                raise GraphError(r.status, err.get("code"), str(err.get("message", ""))[:200])
        except aiohttp.ClientConnectionError as exc:
            raise GraphError(599, None, f"connection: {type(exc).__name__}") from None

    async def fetch(self, ref: str, max_bytes: int) -> bytes:
        """The engine's MediaFetcher (conversations/media.py): `GET /{media-id}` gives the file's
        size and a URL valid 5 minutes (the id itself 7 days), then that URL with the token, read
        within the cap. Asked only at a step that takes a photo."""
        if not _MEDIA_ID.fullmatch(ref):
            raise Unavailable("not a media id")
        assert self._session is not None, "GraphClient.start() first"
        try:
            async with self._session.get(f"{self.api_url}/{ref}", timeout=self.timeout) as r:
                info = await r.json(content_type=None)
                if r.status != 200 or not isinstance(info, dict):
                    raise Unavailable(f"media {r.status}")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Unavailable(f"media: {type(exc).__name__}") from None
        size, url = info.get("file_size"), info.get("url")
        if isinstance(size, int | str) and str(size).isdecimal() and int(size) > max_bytes:
            raise TooLarge(f"declared {size} bytes")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise Unavailable("no media URL")
        return await read_capped(self._session, url, max_bytes)


_MEDIA_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")


# ---------------------------------------------------------------------- the service
class WhatsAppService:
    """The WhatsApp channel as the runtime runs it (base.ChannelService): the webhook in, the
    turns in order per chat, the replies out; the outbox through the dispatcher."""

    name: ClassVar[str] = CHANNEL
    limits: ClassVar[Limits] = LIMITS
    pull: ClassVar[bool] = False

    def __init__(
        self,
        engine: Engine,
        client: GraphClient,
        dispatcher: Dispatcher,
        *,
        app_secret: str,
        verify_token: str,
        gate: BodyGate | None = None,
        flood: FloodGuard | None = None,
    ) -> None:
        self.engine, self.client, self.dispatcher = engine, client, dispatcher
        self.flood = flood or FloodGuard(engine.clock)
        self.gate = gate or BodyGate()
        self.app_secret, self.verify_token = app_secret, verify_token
        self._tasks: set[asyncio.Task] = set()
        self.inbox = Inbox(engine.store, CHANNEL, retention=engine.profile.retention)
        # A new message of a chat whose backlog is being replayed waits for it (Inbox.admit).
        self.order = ChatSequencer(64, admit=self.inbox.admit)
        self.replay_order = ChatSequencer(64)
        # Several workers on one PostgreSQL database: each chat served by whichever holds its lock,
        # in inbox order (conversations/workers.py); None on SQLite (one process).
        locks = chat_locks(engine.store)
        self.shared = (
            SharedChats(engine.store, CHANNEL, locks, self._shared_run, _shared_chat) if locks is not None else None
        )
        self.sender = WhatsAppSender(client, engine.profile, dispatcher.last_customer_turn, clock=engine.clock)

    def to_inbound(self, update: dict) -> Inbound:
        return to_inbound(update)

    # -------------------------------------------------------------- ChannelService
    async def open(self) -> None:
        await self.inbox.open()  # before the server takes any new message
        await self.client.start()

    def routes(self, app: web.Application, path: str = "/whatsapp") -> None:
        app.router.add_get(path, self.on_verify)
        app.router.add_post(path, self.on_post)

    async def start(self, stop: asyncio.Event) -> None:
        if self.shared is not None:
            self.shared.start()  # its first sweep replays the backlog no live worker holds
            return
        self.inbox.start_replay(_chat_of, self._replayed)

    async def close(self) -> None:
        await self.drain()
        await self.client.close()

    # -------------------------------------------------------------- webhook
    async def on_verify(self, request: web.Request) -> web.Response:
        q = request.query
        token = as_bytes(q.get("hub.verify_token", ""))
        if q.get("hub.mode") == "subscribe" and hmac.compare_digest(token, as_bytes(self.verify_token)):
            return web.Response(text=q.get("hub.challenge", ""))
        return web.Response(status=403, text="forbidden")

    async def on_post(self, request: web.Request) -> web.Response:
        raw = await self.gate.read(request)  # before the signature: bounded size and concurrency
        if isinstance(raw, web.Response):
            return raw
        status = signature_status(self.app_secret, raw, request.headers.get("X-Hub-Signature-256"))
        if status != 200:
            log.warning("WhatsApp webhook refused: %s signature", "missing" if status == 401 else "wrong")
            return web.Response(status=status, text="signature")
        payload = json_object(raw)
        if payload is None:
            return web.Response(status=400, text="bad payload")
        messages, statuses = messages_and_statuses(payload)
        # Durably accepted before the 200, each under its wamid (or a synthetic key: payloads.py).
        keyed = [(whatsapp_key(m), m) for m in messages]
        rows = [(key, json.dumps(m, ensure_ascii=False)) for key, m in keyed]
        shared = self.shared
        fresh = set(await self.inbox.accept(rows, chat_of=_shared_chat if shared is not None else None))
        for (key, m), (_, body) in zip(keyed, rows, strict=True):
            if key in fresh:
                fresh.discard(key)  # a message repeated within one delivery runs once
                if shared is not None:
                    self.spawn(shared.received(_shared_chat(key, body), key))
                else:
                    self.spawn(self.process(m))
        if statuses:
            self.spawn(self.on_statuses(statuses))
        return web.Response(text="ok")

    def spawn(self, job) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replayed(self, message_id: str, body: str, processed: bool) -> None:
        """A message accepted before a stop and not answered: its turn runs, or if it ran, the
        replies it kept are sent (Inbox.replay: the whole backlog, in order, in bounded batches)."""
        await self.process(json.loads(body), key=message_id, resend=processed, order=self.replay_order)

    async def _shared_run(self, message_id: str, body: str, processed: bool, here: bool) -> None:
        """A chat's oldest unanswered row, under its lock (several workers): one this worker just
        received is a new message (the flood limit counts it); any other is a replay."""
        fresh = here and not processed
        await self.process(
            json.loads(body), key=None if fresh else message_id, resend=processed, order=self.replay_order
        )

    async def drain(self) -> None:
        await self.inbox.stop()  # new messages waiting for an unfinished backlog stay for the next start
        if self.shared is not None:
            await self.shared.close()  # rows not run yet stay for another worker or the next start
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.inbox.close()

    async def process(
        self, m: Any, *, key: str | None = None, resend: bool = False, order: ChatSequencer | None = None
    ) -> None:
        """One accepted message: checked (payloads.py), its turn run in its chat's order, its inbox
        row marked answered. One that cannot be read is parked; whatever its turn does, the row ends
        answered, so no message can fail again at every restart. A replay (`key`, the inbox row's)
        is not counted in a flood."""
        checked = check_whatsapp(m, CHANNEL, key)
        inbound = checked.inbound
        try:
            if inbound is not None and key is None:  # a new message (not a replay): the flood limit
                verdict = self.flood.admit(inbound.user_id)
                if verdict == "notice":
                    inbound = Inbound(
                        CHANNEL, inbound.user_id, checked.key, sender_phone=inbound.sender_phone, other="flood"
                    )
                elif verdict == "drop":  # kept and marked answered, not run (bot/channels/flood.py)
                    inbound = None
                    if checked.reason is None:
                        self.inbox.done(checked.key)
            if checked.reason is not None:
                body = json.dumps(m, ensure_ascii=False)
                await self.inbox.park(checked.key, checked.reason, body, notified=inbound is not None)
            if inbound is not None:
                await (order or self.order).run(inbound.user_id, self._turn(inbound, resend))
        except Exception:
            log.exception("WhatsApp message %s could not be handled", checked.key[:40])
        finally:
            if inbound is not None:
                self.inbox.done(checked.key)

    async def _turn(self, inbound: Inbound, resend: bool = False) -> None:
        try:
            outcome = await self.engine.respond(inbound, resend=resend, media=self.client)
        except Exception:
            log.exception("WhatsApp turn failed")
            return
        if outcome.replies:
            await self.send_replies(inbound.user_id, outcome.replies, outcome.lang)

    async def send_replies(self, to: str, replies: list[Reply], lang: str) -> None:
        messages = render(replies, lang)
        for i, message in enumerate(messages):
            if "_png" in message:
                message = messages[i] = await self._uploaded(message)
            try:
                await self.client.send(to, message)
            except (TimeoutError, GraphError) as exc:
                if isinstance(exc, GraphError) and not exc.retryable:
                    log.error("WhatsApp refused a reply to %s: %s", mask("+" + to), exc)
                    return
                log.warning("reply to %s not sent (%s); queued for retry", mask("+" + to), exc)
                rest = [_caption_only(m) if "_png" in m else m for m in messages[i:]]
                await self.dispatcher.queue_replies(CHANNEL, to, lang, [{"messages": rest, "text": ""}])
                return

    async def _uploaded(self, message: dict) -> dict:
        """An image message by its uploaded media id; its caption as text if the upload failed."""
        try:
            media_id = await self.client.upload(message["_png"])
        except (TimeoutError, GraphError) as exc:
            log.warning("chart upload failed (%s); its caption sent as text", exc)
            return _caption_only(message)
        return {"type": "image", "image": {**message["image"], "id": media_id}}

    async def on_statuses(self, statuses: list[dict]) -> None:
        """Delivery reports for what we pushed, handed to the dispatcher (confirm, retry, hold);
        a status of the wrong shape is skipped."""
        reports = []
        for s in statuses:
            try:
                reports.append(_report(s))
            except (TypeError, ValueError, AttributeError):
                log.warning("WhatsApp status of an unknown shape skipped")
        await self.dispatcher.apply_reports(CHANNEL, reports)


def _caption_only(message: dict) -> dict:
    return {"type": "text", "text": {"body": message["image"]["caption"], "preview_url": False}}


def _shared_chat(message_id: str, body: str) -> str:
    """An inbox row's chat for the lock across workers; a row naming none is a chat of its own."""
    try:
        return _chat_of(body)
    except Exception:
        return "?" + message_id


def _chat_of(body: str) -> str:
    """An inbox row's chat, as `WhatsAppService.process` keys it."""
    return to_inbound(json.loads(body)).user_id


def _report(s: dict) -> DeliveryReport:
    """A WhatsApp status as a delivery report."""
    opaque = str(s.get("biz_opaque_callback_data") or "")
    outbox_id = int(opaque[7:]) if opaque.startswith("outbox:") and opaque[7:].isdecimal() else None
    if not isinstance(s.get("id"), str):
        raise ValueError("status without an id")
    report = DeliveryReport(s["id"], outbox_id)
    if s.get("status") != "failed":
        return report
    errors = s.get("errors")
    code = next((e.get("code") for e in errors if isinstance(e, dict)), None) if isinstance(errors, list) else None
    if code in OUTSIDE_WINDOW_CODES:
        return replace(report, outcome="held", error=f"WhatsApp {code}: outside the 24-hour window")
    if code in RETRYABLE_CODES:
        return replace(report, outcome="retry", error=f"WhatsApp {code}: delivery failed")
    return replace(report, outcome="failed", error=f"WhatsApp {code}: delivery failed", details={"code": code})


class WhatsAppSender:
    """The dispatcher's way to push outbox messages through the Graph API."""

    channel = CHANNEL
    confirms_delivery = True  # statuses carry our outbox id back

    def __init__(
        self,
        client: GraphClient,
        profile: Profile,
        last_turn: Callable[[str, str], Awaitable[datetime | None]],
        *,
        clock: Clock,
    ) -> None:
        self.client, self.profile, self.last_turn, self.clock = client, profile, last_turn, clock

    async def send_outbox(self, msg: OutboxMessage, text: str) -> str | None:
        last = await self.last_turn(CHANNEL, msg.user_id)
        inside = last is not None and self.clock() - last < WINDOW
        if msg.kind == "reply":
            messages = msg.payload.get("messages") or [{"type": "text", "text": {"body": text}}]
        elif msg.kind in reminders.PROACTIVE:  # inside the window: free text, with its button
            messages = render([Reply(text, tuple(reminders.buttons(msg)))], msg.lang)
        else:
            messages = [
                {"type": "text", "text": {"body": piece, "preview_url": False}} for piece in split_text(text, MAX_TEXT)
            ]
        if not inside:
            template = self._template(msg)
            if template is None and msg.kind in reminders.PROACTIVE:
                # A reminder shown days later at the customer's next message would mislead: dropped.
                raise Undeliverable("outside the 24-hour window and no template for this reminder")
            if template is None:
                raise HoldForChat("outside the 24-hour window and no template for it")
            messages = [template]
        wamid = None
        try:
            for message in messages:
                wamid = await self.client.send(msg.user_id, message, opaque=f"outbox:{msg.id}")
        except TimeoutError as exc:
            raise DeliveryUnknown("timeout") from exc
        except GraphError as exc:
            if exc.outside_window and msg.kind in reminders.PROACTIVE:
                raise Undeliverable(str(exc)) from exc
            if exc.outside_window:
                raise HoldForChat(str(exc)) from exc
            if exc.retryable:
                raise RetryLater(str(exc)) from exc
            raise Undeliverable(str(exc)) from exc
        return wamid

    def _template(self, msg: OutboxMessage) -> dict | None:
        names = self.profile.whatsapp_templates
        if msg.kind in reminders.PROACTIVE:
            return reminder_template(msg, self.profile)
        if msg.kind != "request_decision" or not names.decision:
            return None
        t = translator(msg.lang)
        p = msg.payload
        params = [p["reference"], t(f"whatsapp.decision_{p['decision']}"), p.get("note") or "—"]
        return {
            "type": "template",
            "template": {
                "name": names.decision,
                "language": {"code": names.language_ar if msg.lang == "ar" else names.language_fr},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": v} for v in params]}],
            },
        }


def reminder_template(msg: OutboxMessage, profile: Profile) -> dict | None:
    """A reminder or notice outside the 24-hour window: the profile's approved utility template
    for its kind ([reminders.templates]), in the chat's language, with its body parameters; the
    reading reminder's quick-reply button carries the "send my index" payload. None: no template
    for that kind (the message is held for the chat's next message)."""
    found = reminders.template_parameters(msg)
    if found is None:
        return None
    kind, params = found
    name = getattr(profile.reminders.templates, kind, None)
    if not name:
        return None
    codes = profile.whatsapp_templates
    components: list[dict[str, Any]] = [{"type": "body", "parameters": [{"type": "text", "text": v} for v in params]}]
    for i, b in enumerate(reminders.buttons(msg)):
        quick = [{"type": "payload", "payload": b.payload}]
        components.append({"type": "button", "sub_type": "quick_reply", "index": str(i), "parameters": quick})
    return {
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": codes.language_ar if msg.lang == "ar" else codes.language_fr},
            "components": components,
        },
    }
