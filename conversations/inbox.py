"""The inbox of the channels that keep what they receive before acknowledging it (Telegram
polling, WhatsApp): adapters call this, they open no transaction themselves.

An inbox row is *answered* once the replies of its turn went out (or there were none). Rows
still unanswered at start are replayed: a turn that never ran runs; a turn that ran has its
kept replies sent again (a crash between the turn's commit and the sending loses no answer;
a crash between the sending and the mark repeats it, which beats silence). At start, answered
rows older than the profile's `[retention] inbox_days` are deleted; unanswered rows never are
(conversations/retention.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import timedelta

from storage import Store, Tx

from .profile import RetentionPolicy

log = logging.getLogger(__name__)


async def park_in(tx: Tx, channel: str, message_id: str, reason: str, body: str, *, notified: bool) -> None:
    """Park an unreadable message in the dead letters (once), logged without its contents."""
    if await tx.park_message(channel, message_id, reason[:500], body, notified=notified):
        log.warning("%s message %s parked: %s", channel, message_id[:40], reason[:200])


async def park(store: Store, channel: str, message_id: str, reason: str, body: str, *, notified: bool) -> None:
    """`park_in` in a transaction of its own (a channel with no inbox: the Telegram webhook)."""
    async with store.transaction() as tx:
        await park_in(tx, channel, message_id, reason, body, notified=notified)


class Inbox:
    """One channel's inbox. Rows are marked answered in batches: one small transaction per
    `every` seconds, not per turn (each commit is an fsync)."""

    def __init__(
        self, store: Store, channel: str, *, retention: RetentionPolicy | None = None, every: float = 0.2
    ) -> None:
        self.store, self.channel, self.every = store, channel, every
        self.keep = timedelta(days=(retention or RetentionPolicy()).inbox_days)  # answered rows
        self._ids: list[str] = []
        self._task: asyncio.Task | None = None

    async def accept(self, items: Iterable[tuple[str, str]]) -> list[str]:
        """Keep (message_id, body) rows durably, in one transaction; the ids not kept before."""
        now = self.store.clock()
        fresh = []
        async with self.store.transaction() as tx:
            for message_id, body in items:
                if await tx.accept_inbound(self.channel, message_id, body, now=now):
                    fresh.append(message_id)
        return fresh

    async def park(self, message_id: str, reason: str, body: str, *, notified: bool) -> None:
        """A message the bot cannot read, kept for the back office (conversations/inbox.py `park`).
        Unless its sender is being told so by a turn (`notified`), its inbox row is marked answered
        now, in the same transaction: it is never replayed."""
        async with self.store.transaction() as tx:
            await park_in(tx, self.channel, message_id, reason, body, notified=notified)
            if not notified:
                await tx.mark_answered(self.channel, [message_id])

    async def unanswered(self) -> list[tuple[str, str, bool]]:
        """(message_id, body, processed) to replay at start, oldest first (old answered rows deleted)."""
        async with self.store.transaction() as tx:
            await tx.prune_inbox(self.channel, older_than=self.store.clock() - self.keep)
            pending = await tx.unanswered_inbound(self.channel)
        return pending

    def done(self, message_id: str) -> None:
        self._ids.append(message_id)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._later())

    async def _later(self) -> None:
        try:
            await asyncio.sleep(self.every)
        finally:
            self._task = None
            await self.flush()

    async def flush(self) -> None:
        ids, self._ids = self._ids, []
        if not ids:
            return
        try:
            async with self.store.transaction() as tx:
                await tx.mark_answered(self.channel, ids)
        except Exception:
            # Unmarked rows are replayed at the next start: their replies may be repeated, never lost.
            log.exception("could not mark %d inbox row(s) answered", len(ids))

    async def close(self) -> None:
        if self._task is not None:
            await self._task  # at most `every` seconds
        await self.flush()
