"""What the channels deliver, checked before anything reads it (issue 18.5: poison payloads).

Pydantic models of the parts of the WhatsApp Cloud API and Telegram Bot API shapes the bot
reads: lenient where Meta or Telegram add fields (unknown ones are ignored), strict on the types
it reads (a `"text": "hello"` where an object is due, a latitude in a string, an integer body, a
list where an object is due: refused, never coerced). A message is then one of:

- readable: its `Inbound` (or, for Telegram, the update PTB is given: the checked fields only,
  so PTB never meets a shape it would crash on);
- unreadable but answerable: the sender is known, the content is not usable; the turn tells the
  sender "we could not read your message" (`Inbound.other == "unreadable"`) and the message is
  parked with the reason;
- not answerable (no sender, not an object): parked with the reason, its inbox row answered.

A message with no usable id gets a synthetic key, the hash of its JSON, so it can neither be
confused with another message nor replayed twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from conversations.events import Inbound

UNREADABLE = "unreadable"  # Inbound.other of a message whose sender is told it could not be read


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)


def synthetic_key(raw: Any) -> str:
    """A stable key for a message without a usable id: the same JSON, the same key."""
    text = json.dumps(raw, ensure_ascii=False, sort_keys=True, default=str)
    return "noid:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def reason_of(exc: ValidationError) -> str:
    """The first errors of a validation, as `field.path: message` (no values: they may be personal)."""
    parts = []
    for e in exc.errors(include_url=False, include_input=False)[:3]:
        where = ".".join(str(x) for x in e["loc"]) or "message"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


@dataclass(frozen=True)
class Checked:
    """One delivered message, checked: `inbound` is None when nobody can be answered; `reason`
    is set when the message is parked (readable ones have none)."""

    key: str
    inbound: Inbound | None
    reason: str | None = None
    update: dict | None = None  # Telegram: the update PTB is given


# ---------------------------------------------------------------------- WhatsApp Cloud API
WaId = Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{5,20}$")]
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class WaText(_Shape):
    body: str


class WaChoice(_Shape):
    id: str
    title: str | None = None


class WaInteractive(_Shape):
    type: str | None = None
    button_reply: WaChoice | None = None
    list_reply: WaChoice | None = None


class WaButton(_Shape):
    text: str
    payload: str | None = None


class WaMedia(_Shape):
    id: str
    mime_type: str | None = None
    caption: str | None = None


class WaReaction(_Shape):
    emoji: str | None = None
    message_id: str | None = None


class WaLocation(_Shape):
    latitude: float
    longitude: float


class WaPhone(_Shape):
    phone: str | None = None


class WaContactCard(_Shape):
    phones: list[WaPhone] = []


class WaSender(_Shape):
    """What is needed to answer: who wrote, and the id (if it has one)."""

    sender: WaId = Field(alias="from")
    id: MessageId | None = None


class WaMessage(WaSender):
    type: str = "unknown"
    text: WaText | None = None
    interactive: WaInteractive | None = None
    button: WaButton | None = None
    image: WaMedia | None = None
    document: WaMedia | None = None
    reaction: WaReaction | None = None
    location: WaLocation | None = None
    contacts: list[WaContactCard] | None = None


def whatsapp_key(raw: Any) -> str:
    """The inbox key of a delivered message: its wamid when it is a usable string, else synthetic."""
    mid = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(mid, str) and 0 < len(mid) <= 256:
        return mid
    return synthetic_key(raw)


def check_whatsapp(raw: Any, channel: str = "whatsapp", key: str | None = None) -> Checked:
    """A Cloud API message checked; `key` is its inbox key when it has one (a row kept by an older
    version under another key), else `whatsapp_key`."""
    key = key or whatsapp_key(raw)
    if not isinstance(raw, dict):
        return Checked(key, None, f"message: not an object ({type(raw).__name__})")
    try:
        m = WaMessage.model_validate(raw)
    except ValidationError as exc:
        reason = reason_of(exc)
        try:
            sender = WaSender.model_validate(raw).sender
        except ValidationError:
            return Checked(key, None, reason)
        return Checked(key, _wa_inbound(channel, key, sender, other=UNREADABLE), reason)
    if m.type == "text" and m.text is None:
        return Checked(key, _wa_inbound(channel, key, m.sender, other=UNREADABLE), "text: missing")
    return Checked(key, _wa_readable(channel, key, m))


def _wa_inbound(channel: str, key: str, sender: str, **fields: Any) -> Inbound:
    sender = sender.lstrip("+")
    return Inbound(channel=channel, user_id=sender, message_id=key, sender_phone="+" + sender, **fields)


def _wa_readable(channel: str, key: str, m: WaMessage) -> Inbound:
    def event(**fields: Any) -> Inbound:
        return _wa_inbound(channel, key, m.sender, **fields)

    kind = m.type
    if kind == "text" and m.text is not None:
        return event(text=m.text.body)
    if kind == "interactive":
        inter = m.interactive
        reply = (inter.button_reply or inter.list_reply) if inter else None
        return event(payload=reply.id if reply else "")
    if kind == "button" and m.button is not None:  # a template's quick-reply button
        if (m.button.payload or "").startswith("remind:"):  # ours (a reminder's "send my index")
            return event(payload=m.button.payload)
        return event(text=m.button.text)
    if kind in ("image", "document"):
        media = m.image if kind == "image" else m.document
        if media is None:
            return event(other=UNREADABLE)
        if kind == "image" or (media.mime_type or "").startswith("image/"):
            return event(photo_ref=media.id, text=media.caption)
        return event(other="document")
    if kind == "reaction" and m.reaction is not None and m.reaction.emoji:
        # A 👍 on one of our messages reads as the emoji typed (a yes where yes/no is asked).
        return event(text=m.reaction.emoji)
    if kind == "location" and m.location is not None:
        return event(location=(m.location.latitude, m.location.longitude))
    if kind == "contacts":
        phones = [p.phone for c in m.contacts or [] for p in c.phones if p.phone]
        if phones:
            return event(contact_phone=phones[0], contact_is_own=False)
    return event(other=kind or "unknown")


# ---------------------------------------------------------------------- Telegram Bot API
OTHER_KINDS = ("sticker", "voice", "video", "video_note", "audio", "animation", "poll", "dice", "venue")


class TgUser(_Shape):
    id: int
    is_bot: bool = False
    first_name: str = ""
    language_code: str | None = None


class TgChat(_Shape):
    id: int
    type: str


class TgFile(_Shape):
    file_id: str
    file_unique_id: str = ""
    mime_type: str | None = None


class TgPhotoSize(_Shape):
    file_id: str
    file_unique_id: str = ""
    width: int = 0
    height: int = 0


class TgContact(_Shape):
    phone_number: str
    first_name: str = ""
    user_id: int | None = None


class TgLocation(_Shape):
    latitude: float
    longitude: float


class TgButton(_Shape):
    text: str
    callback_data: str | None = None


class TgMarkup(_Shape):
    inline_keyboard: list[list[TgButton]] = []


class TgHeader(_Shape):
    """What is needed to answer a message: its chat."""

    message_id: int = 0
    date: int = 0
    chat: TgChat
    sender: TgUser | None = Field(None, alias="from")


class TgMessage(TgHeader):
    text: str | None = None
    caption: str | None = None
    contact: TgContact | None = None
    photo: list[TgPhotoSize] | None = None
    document: TgFile | None = None
    location: TgLocation | None = None
    reply_markup: TgMarkup | None = None
    # Kinds the bot only names ("send text, please"): any object will do, none is read.
    sticker: dict | None = None
    voice: dict | None = None
    video: dict | None = None
    video_note: dict | None = None
    audio: dict | None = None
    animation: dict | None = None
    poll: dict | None = None
    dice: dict | None = None
    venue: dict | None = None


class TgCallback(_Shape):
    id: str
    sender: TgUser = Field(alias="from")
    chat_instance: str = ""
    data: str | None = None
    message: TgMessage | None = None


class TgUpdate(_Shape):
    update_id: int
    message: TgMessage | None = None
    callback_query: TgCallback | None = None


class _TgId(_Shape):
    update_id: int


class _TgAnswerable(_Shape):
    update_id: int
    message: TgHeader


def telegram_key(raw: Any) -> str:
    uid = raw.get("update_id") if isinstance(raw, dict) else None
    return str(uid) if type(uid) is int else synthetic_key(raw)


def check_telegram(raw: Any) -> Checked:
    """A Bot API update checked; `update` is what PTB is given (None: nothing to run)."""
    key = telegram_key(raw)
    if not isinstance(raw, dict):
        return Checked(key, None, f"update: not an object ({type(raw).__name__})")
    try:
        u = TgUpdate.model_validate(raw)
    except ValidationError as exc:
        reason = reason_of(exc)
        try:
            head = _TgAnswerable.model_validate(raw)
        except ValidationError:
            if "update_id" in raw and _valid(_TgId, raw):
                cq = raw.get("callback_query")
                chat = _callback_chat(cq)
                if chat is not None:  # a pressed button we cannot read, in a chat we know
                    return _tg_unreadable(key, int(raw["update_id"]), chat, reason)
            return Checked(key, None, reason)
        return _tg_unreadable(key, head.update_id, head.message, reason)
    update = u.model_dump(by_alias=True, exclude_none=True, exclude_defaults=False)
    msg = update.get("message")
    if msg is not None:
        # PTB is given only what was checked; kinds the bot only names become a marker it keeps.
        kinds = [k for k in OTHER_KINDS if msg.pop(k, None) is not None]
        if kinds and msg.get("text") is None:
            msg["addad_kind"] = kinds[0]
    return Checked(key, None, update=update)


def _valid(model: type[_Shape], raw: Any) -> bool:
    try:
        model.model_validate(raw)
    except ValidationError:
        return False
    return True


def _callback_chat(cq: Any) -> TgHeader | None:
    if not isinstance(cq, dict) or not isinstance(cq.get("message"), dict):
        return None
    try:
        return TgHeader.model_validate(cq["message"])
    except ValidationError:
        return None


def _tg_unreadable(key: str, update_id: int, head: TgHeader, reason: str) -> Checked:
    """An update whose chat is known and whose content is not: a bare message PTB can read, marked."""
    msg: dict[str, Any] = {
        "message_id": head.message_id,
        "date": head.date,
        "chat": head.chat.model_dump(),
        "addad_kind": UNREADABLE,
    }
    if head.sender is not None:
        msg["from"] = head.sender.model_dump(exclude_none=True)
    return Checked(key, None, reason, update={"update_id": update_id, "message": msg})
