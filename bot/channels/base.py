"""What every channel adapter does, and the rendering helpers they share.

An adapter is the only code that knows its channel's types (after Rasa's input/output channels):

- inbound: a channel update (Telegram update, WhatsApp webhook message, a console line) becomes
  an `Inbound`, or None for what the bot ignores;
- outbound: a turn's `Reply` objects are rendered within the channel's `Limits` (text length,
  buttons per message, label length): choices the channel cannot show as buttons become numbered
  text (`numbered`), and typing the number works everywhere; a reply that asks for a contact or
  a photo gets the channel's picker where it has one;
- sending: with the channel's retries; what still cannot be sent is handed to the dispatcher
  (`Dispatcher.queue_replies`), which owns every outbox change.

`ChannelService` is the same channel as the runtime composes it (bot/runtime.py): its webhook
routes, what it starts once the server listens, its outbox sender, its shutdown.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from conversations.events import Button, Image, Inbound, Reply

if TYPE_CHECKING:
    from aiohttp import web

    from conversations.dispatch import Sender

U_contra = TypeVar("U_contra", contravariant=True)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one message of the channel can carry."""

    text: int  # characters (Telegram counts UTF-16 units)
    buttons: int | None = None  # choices shown as buttons in one message; None: no buttons at all
    label: int | None = None  # characters of a button's label

    def fits(self, buttons: Sequence[Button]) -> bool:
        """Whether these choices can be buttons here (else they go as numbered text)."""
        if self.buttons is None:
            return not buttons
        return len(buttons) <= self.buttons and (self.label is None or all(len(b.label) <= self.label for b in buttons))


class Channel(Protocol[U_contra]):
    """The adapter side of a channel: `U_contra` is what the channel delivers (an update)."""

    name: ClassVar[str]
    limits: ClassVar[Limits]
    # A channel that cannot write first: its queued messages (back-office decisions) are shown at
    # the chat's next turn instead of being pushed. The runtime tells the engine.
    pull: ClassVar[bool]

    def to_inbound(self, update: U_contra) -> Inbound | None:
        """The update as the core's event; None for updates the bot ignores."""
        ...


def pull_channels(*channels: type[Channel[Any]]) -> frozenset[str]:
    """The names of these channels that cannot write first, for the engine."""
    return frozenset(c.name for c in channels if c.pull)


class ChannelService(Protocol):
    """A channel as the runtime runs it (bot/runtime.py builds the process from a list of these)."""

    @property
    def name(self) -> str: ...

    @property
    def sender(self) -> Sender | None:
        """Pushes outbox messages (None: a pull channel)."""

    async def open(self) -> None:
        """Connect (check credentials); raise ConfigError for a setting that prevents starting."""

    def routes(self, app: web.Application) -> None:
        """Add the channel's webhook routes (none for a polling channel)."""

    async def start(self, stop: asyncio.Event) -> None:
        """The server listens: register webhooks, start polling, replay the inbox."""

    async def close(self) -> None:
        """Finish the turns in hand and release the channel's connections."""


# ---------------------------------------------------------------------- shared rendering
_PHONE = re.compile(r"\+?\d[\d \-.]{7,}\d")


def mask(text: str) -> str:
    """Logs never carry customer phone numbers."""
    return _PHONE.sub(lambda m: m.group(0)[:4] + "…", text)


def units(text: str) -> int:
    """Length in UTF-16 code units (as Telegram counts)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most `limit` UTF-16 units, cut at a blank line, else a line, else a space."""
    if 2 * len(text) <= limit:  # no character takes more than 2 units: it fits
        text = text.rstrip()
        return [text] if text else []
    pieces = []
    while units(text) > limit:
        cut = len(text)
        while units(text[:cut]) > limit:
            cut = int(cut * 0.9)
        head = text[:cut]
        for sep in ("\n\n", "\n", " "):
            at = head.rfind(sep)
            if at > cut // 3:
                cut = at
                break
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    pieces.append(text.rstrip())
    return [p for p in pieces if p]


@dataclass
class Outgoing:
    """One message to send: text, and the choices it ends with; or a picture, `text` its caption."""

    text: str
    buttons: list[Button] = field(default_factory=list)
    image: Image | None = None


def plan(replies: list[Reply]) -> list[Outgoing]:
    """Merge a turn's replies: consecutive texts join; a message ends where choices are offered;
    a picture is a message of its own."""
    out: list[Outgoing] = []
    texts: list[str] = []
    for r in replies:
        if r.image is not None:
            if texts:
                out.append(Outgoing("\n\n".join(texts)))
                texts = []
            out.append(Outgoing(r.text, list(r.buttons), r.image))
            continue
        texts.append(r.text)
        if r.buttons:
            out.append(Outgoing("\n\n".join(texts), list(r.buttons)))
            texts = []
    if texts:
        out.append(Outgoing("\n\n".join(texts)))
    return out


def numbered(buttons: Sequence[Button], *, indent: str = "", clean=lambda s: s) -> list[str]:
    """The text fallback for choices: `1. label` lines (typing the number presses the choice)."""
    return [f"{indent}{i}. {clean(b.label)}" for i, b in enumerate(buttons, 1)]
