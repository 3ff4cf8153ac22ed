"""A private chat's plain text message, taken from the checked update without python-telegram-bot
parsing it.

Most updates a distributor's bot gets are a customer typing in a private chat (an index, a
contract number, "Confirmer"). `Update.de_json` builds ~200 attributes across an `Update`, a
`Message`, a `Chat` and a `User` for the four fields the turn reads: ~60 µs, a sixth of a turn's
CPU (bench/README.md, "Telegram throughput"). The update has already been checked by pydantic
(bot/channels/payloads.py: strict types, only the checked fields kept), so these four can be
read from it directly. Anything else (a button, a contact, a photo, a group, a marked kind) goes
through PTB as before. PTB still carries the update (its queue, the per-chat processor, the
handler, the error handler) and every call to the Bot API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conversations.events import Inbound

# The keys a checked plain text message has (payloads.TgMessage dumped without its None fields).
_TEXT_KEYS = frozenset({"message_id", "date", "chat", "from", "text"})


@dataclass(frozen=True, slots=True)
class TextUpdate:
    """What the turn reads of a private chat's text message (the chat is the sender's)."""

    update_id: int
    chat_id: int
    text: str
    language_code: str | None

    def inbound(self, channel: str) -> Inbound:
        # As telegram.to_inbound makes it from the parsed update.
        return Inbound(
            channel=channel,
            user_id=str(self.chat_id),
            message_id=str(self.update_id),
            text=self.text,
            lang_hint=self.language_code,
            contact_request_supported=True,
        )


def text_update(update: dict[str, Any]) -> TextUpdate | None:
    """The TextUpdate of a checked update (payloads.Checked.update) that is exactly a private
    chat's text message from a user; None for any other, which PTB parses."""
    msg = update.get("message")
    if len(update) != 2 or not isinstance(msg, dict) or not _TEXT_KEYS.issuperset(msg):
        return None
    chat, sender, text = msg.get("chat"), msg.get("from"), msg.get("text")
    if not isinstance(chat, dict) or chat.get("type") != "private" or not isinstance(sender, dict):
        return None
    if not isinstance(text, str) or not text:  # an empty text is no text to PTB (to_inbound: "unknown")
        return None
    return TextUpdate(update["update_id"], chat["id"], text, sender.get("language_code"))
