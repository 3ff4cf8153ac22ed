"""A chat's recent lines held in the bot's memory until an agent may read them.

The handoff's chat log (conversations/handoff.py) is read by an agent only for a chat handed to
a human, yet every turn logged its two lines: an INSERT into `chat_messages` and its two
indexes, 9 % of an engine turn's instructions and growing with the table (bench/README.md
"Telegram throughput 2"). On SQLite one process runs the turns, so the lines of a chat with no
open handoff are held here instead, and written in the transaction that opens the chat's
handoff (the agent then reads what led to it); while a handoff is open they are written at
once, as before. `chat_log` and the daily prune see both.

What is held is light by nature, like the log itself: a stop writes it (`SqliteStore.close`,
as a deploy or `systemctl restart` stops the bot); a crash forgets it (the agent then reads the
lines since the restart). Bounded: at most `max_lines` per chat and `max_chars` in
all, the chats quiet longest dropped first. PostgreSQL (several workers may share a chat) keeps
writing every line.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable

Chat = tuple[str, str]
Line = tuple[str, str, str | None, str]  # (at as stored, sender, author, text)


class HeldChatLog:
    __slots__ = ("chars", "chats", "max_chars", "max_lines")

    def __init__(self, *, max_lines: int = 500, max_chars: int = 20_000_000) -> None:
        self.max_lines, self.max_chars = max_lines, max_chars
        self.chats: OrderedDict[Chat, deque[Line]] = OrderedDict()  # the least recently written first
        self.chars = 0

    def lines(self, chat: Chat) -> list[Line]:
        return list(self.chats.get(chat, ()))

    def add(self, chat: Chat, lines: Iterable[Line]) -> None:
        held = self.chats.get(chat)
        if held is None:
            held = self.chats[chat] = deque()
        else:
            self.chats.move_to_end(chat)
        for line in lines:
            if len(held) == self.max_lines:
                self.chars -= len(held.popleft()[3])
            held.append(line)
            self.chars += len(line[3])
        while self.chars > self.max_chars and self.chats:
            self.drop(next(iter(self.chats)))

    def drop(self, chat: Chat) -> None:
        held = self.chats.pop(chat, None)
        if held is not None:
            self.chars -= sum(len(line[3]) for line in held)

    def prune(self, older_than: str, keep: int) -> int:
        """As `prune_chat_log` does in the table: lines stamped before `older_than`, then all
        but each chat's last `keep`; the count removed."""
        removed = 0
        for chat in list(self.chats):
            held = self.chats[chat]
            kept = [line for line in held if line[0] >= older_than][-keep:] if keep > 0 else []
            if len(kept) != len(held):
                removed += len(held) - len(kept)
                self.drop(chat)
                if kept:
                    self.add(chat, kept)
        return removed
