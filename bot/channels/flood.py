"""One chat cannot take the bot from the others (issue 18.6): a token bucket per chat.

Each chat may send `burst` messages at once, then `rate` a second. A message beyond that is
accepted like any other (acknowledged to the channel, kept in the inbox, marked answered) but
not run through the engine; the first one of a flood is answered instead with one polite notice
("you are sending many messages; I answer the first ones, please wait a moment"), the others
with nothing. The flood is over when the chat's bucket is full again (it has been quiet for
`burst / rate` seconds): the next flood gets its notice. Other chats are not touched: their
buckets are their own. Time is the store's clock. Messages replayed at start (accepted before a
stop) are not counted: they were accepted when they came.

Settings `flood_burst` (10) and `flood_rate` (1 message a second; 0 turns the limit off),
bot/config.py.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Literal

from storage import Clock

Verdict = Literal["run", "notice", "drop"]

DEFAULT_BURST = 10
DEFAULT_RATE = 1.0
_SWEEP_AT = 4096  # chats tracked before the full buckets are forgotten


class FloodGuard:
    def __init__(self, clock: Clock, *, burst: int = DEFAULT_BURST, rate: float = DEFAULT_RATE) -> None:
        self.clock, self.burst, self.rate = clock, max(1, burst), rate
        self._chats: dict[Hashable, list] = {}  # chat -> [tokens, last time, notice sent]

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def admit(self, chat: Hashable) -> Verdict:
        """ "run" the message, answer it with the "notice", or "drop" it (a notice was sent)."""
        if not self.enabled:
            return "run"
        now = self.clock()
        entry = self._chats.get(chat)
        if entry is None:
            if len(self._chats) >= _SWEEP_AT:
                self._sweep(now)
            entry = self._chats[chat] = [float(self.burst), now, False]
        else:
            elapsed = max((now - entry[1]).total_seconds(), 0.0)
            entry[0] = min(float(self.burst), entry[0] + elapsed * self.rate)
            entry[1] = now
            if entry[2] and entry[0] >= self.burst:
                entry[2] = False  # quiet long enough: that flood is over
        if entry[0] >= 1:
            entry[0] -= 1
            return "run"
        if not entry[2]:
            entry[2] = True
            return "notice"
        return "drop"

    def _sweep(self, now) -> None:
        """Forget the chats whose bucket has refilled (they start full again anyway)."""
        full = [
            chat
            for chat, (tokens, last, _) in self._chats.items()
            if tokens + (now - last).total_seconds() * self.rate >= self.burst
        ]
        for chat in full:
            del self._chats[chat]
