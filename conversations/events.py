"""What adapters hand to the core, and what the core hands back. No channel types here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import orjson


@dataclass(frozen=True, slots=True)
class Inbound:
    channel: str  # "telegram", "whatsapp", "console"
    user_id: str  # opaque per-channel id of the person
    message_id: str  # unique per channel: Telegram update_id, WhatsApp wamid
    text: str | None = None
    payload: str | None = None  # a pressed button's ASCII payload
    contact_phone: str | None = None  # a shared contact's number
    contact_is_own: bool = False  # the adapter checked the contact belongs to the sender
    sender_phone: str | None = None  # a number the channel itself vouches for (WhatsApp sender, console --phone)
    photo_ref: str | None = None  # channel file id / media id of a photo or image document
    location: tuple[float, float] | None = None
    contact_request_supported: bool = False  # the channel can ask for the sender's own contact (Telegram)
    lang_hint: str | None = None  # e.g. Telegram's language_code
    lang_choice: str | None = None  # a language the person explicitly chose in the channel (console --lang)
    other: str | None = None  # anything else (sticker, voice, video…): its kind
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Button:
    payload: str  # ASCII, ≤ 64 bytes (Telegram callback_data); also what a typed number maps to
    label: str
    description: str | None = None  # optional second line (WhatsApp list rows)
    request: Literal["contact", None] = None  # a channel that can, makes this "share my own contact"


@dataclass(frozen=True, slots=True)
class Image:
    """A picture to send (the consumption chart): its inputs, kept with the turn's replies and
    drawn again the same after a crash (conversations/chart.py), and the PNG once drawn."""

    spec: dict  # JSON: what conversations.chart.draw() needs
    alt: str  # what the picture shows, in words (the caption where the channel has one)
    png: bytes = b""  # filled after the turn's commit, off the event loop (conversations/chart.py)


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()
    ask: Literal["contact", "photo", None] = None  # what the question waits for (a channel may offer a picker)
    image: Image | None = None  # a picture sent as its own message, `text` its caption


@dataclass(frozen=True, slots=True)
class Outcome:
    """A turn as its adapter needs it: the replies, and the language the chat speaks after the
    turn (for what the adapter renders itself and for replies it must queue)."""

    replies: list[Reply]
    lang: str


def replies_to_json(replies: list[Reply]) -> str:
    """A turn's replies as kept beside its message (sent again after a crash)."""
    return orjson.dumps(
        [
            {
                "text": r.text,
                "buttons": [[b.payload, b.label, b.description, b.request] for b in r.buttons],
                "ask": r.ask,
                **({"image": {"spec": r.image.spec, "alt": r.image.alt}} if r.image else {}),
            }
            for r in replies
        ]
    ).decode()


def replies_from_json(text: str | None) -> list[Reply]:
    """Kept replies, also those written before `edit_last` and `kind` went (their keys are ignored)."""
    if not text:
        return []
    return [
        Reply(
            r["text"],
            tuple(Button(*b) for b in r["buttons"]),
            r.get("ask"),
            Image(r["image"]["spec"], r["image"]["alt"]) if r.get("image") else None,
        )
        for r in orjson.loads(text)
    ]
