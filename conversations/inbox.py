"""The inbox of the channels that keep what they receive before acknowledging it (Telegram
polling and webhook, WhatsApp): adapters call this, they open no transaction themselves.

An inbox row is *answered* once the replies of its turn went out (or there were none). Rows
still unanswered at start (the *backlog*) are replayed: a turn that never ran runs; a turn that
ran has its kept replies sent again (a crash between the turn's commit and the sending loses no
answer; a crash between the sending and the mark repeats it, which beats silence). At start,
answered rows older than the profile's `[retention] inbox_days` are deleted; unanswered rows
never are (conversations/retention.py).

The backlog is replayed whole, however long, while new messages flow:

- `open()`, before the channel takes any new message, notes where the backlog ends (the inbox's
  last row): rows kept later are new messages, handled as they come, never replayed by this run.
- `replay()` reads the backlog in pages of `batch` rows, oldest first (keyset pagination on
  (received_at, rowid): each page starts after the last row of the previous one), twice: a first
  pass notes the last backlog row of each chat (chat → row, no bodies kept), the second hands
  the rows over in order, at most `in_flight` at a time (a row is let go once its turn and its
  replies are done), so memory follows `batch` and `in_flight`, not the backlog.
- `admit(chat)`, awaited by the channel's live path (bot/channels/ordering.py) before a new
  message's turn, returns at once for a chat with no backlog (after the first pass), and for a
  chat with one once its last backlog row is done: per-chat order is kept, other chats wait for
  nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Hashable, Iterable
from datetime import timedelta
from typing import Any

from storage import ConcurrentUpdate, Store, StoreUnavailable, Tx
from storage.protocols import InboxKey

from .profile import RetentionPolicy

log = logging.getLogger(__name__)

# A backlog row for the channel to run: (message_id, body, processed) → its turn and replies, done.
Replayer = Callable[[str, str, bool], Coroutine[Any, Any, None]]


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
        self,
        store: Store,
        channel: str,
        *,
        retention: RetentionPolicy | None = None,
        every: float = 0.2,
        batch: int = 500,
        in_flight: int = 256,
    ) -> None:
        self.store, self.channel, self.every = store, channel, every
        self.batch, self.in_flight = batch, in_flight
        self.keep = timedelta(days=(retention or RetentionPolicy()).inbox_days)  # answered rows
        self._ids: list[str] = []
        self._task: asyncio.Task | None = None
        self._closing = False
        self._failing = False  # the last flush could not reach the database (said once)
        self._upto: int | None = None  # the backlog's last row (open())
        self._scanned = asyncio.Event()  # the backlog's chats are known
        self._scanned.set()  # no backlog until open()
        self._gates: dict[Hashable, asyncio.Future] = {}  # chats whose backlog is not done yet
        self._replay: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        self.replayed = 0

    async def accept(
        self, items: Iterable[tuple[str, str]], *, chat_of: Callable[[str, str], str] | None = None
    ) -> list[str]:
        """Keep (message_id, body) rows durably, in one transaction; the ids not kept before.
        `chat_of(message_id, body)` names each row's chat (several workers: conversations/workers.py)."""
        now = self.store.clock()
        items = list(items)
        for attempt in range(6):
            fresh = []
            try:
                async with self.store.transaction() as tx:
                    for message_id, body in items:
                        chat = chat_of(message_id, body) if chat_of is not None else None
                        if await tx.accept_inbound(self.channel, message_id, body, now=now, chat=chat):
                            fresh.append(message_id)
                return fresh
            except ConcurrentUpdate:
                # Several workers (PostgreSQL): a deadlock with another worker's rows rolled it all
                # back (storage/postgres/db.py); nothing was kept, so keeping it again doubles nothing.
                if attempt == 5:
                    raise
                await asyncio.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    async def park(self, message_id: str, reason: str, body: str, *, notified: bool) -> None:
        """A message the bot cannot read, kept for the back office (conversations/inbox.py `park`).
        Unless its sender is being told so by a turn (`notified`), its inbox row is marked answered
        now, in the same transaction: it is never replayed."""
        async with self.store.transaction() as tx:
            await park_in(tx, self.channel, message_id, reason, body, notified=notified)
            if not notified:
                await tx.mark_answered(self.channel, [message_id])

    # -------------------------------------------------------------- the backlog
    async def open(self) -> None:
        """Before the channel takes any new message: old answered rows deleted, the backlog's end
        noted, and new messages held at `admit` until the backlog's chats are known."""
        async with self.store.transaction() as tx:
            await tx.prune_inbox(self.channel, older_than=self.store.clock() - self.keep)
            self._upto = await tx.last_inbound()
        self._scanned.clear()

    async def _backlog(self) -> AsyncIterator[tuple[str, str, bool, InboxKey]]:
        """The backlog's rows, oldest first, a page at a time."""
        after: InboxKey | None = None
        while True:
            async with self.store.snapshot() as tx:
                page = await tx.unanswered_inbound(self.channel, after=after, upto=self._upto, limit=self.batch)
            for row in page:
                yield row
            if len(page) < self.batch:
                return
            after = page[-1][3]

    def start_replay(self, chat_of: Callable[[str], Hashable | None], run: Replayer) -> None:
        """Replay the backlog in the background (`replay`)."""
        self._replay = asyncio.get_running_loop().create_task(self.replay(chat_of, run), name=f"replay {self.channel}")

    async def replay(self, chat_of: Callable[[str], Hashable | None], run: Replayer) -> int:
        """Hand every backlog row to `run`, in order, at most `in_flight` at a time; the number of
        rows. `chat_of(body)` is the row's chat as the channel's live path keys it (None: none)."""
        if self._upto is None:
            await self.open()
        try:
            last: dict[Hashable, InboxKey] = {}
            async for _, body, _, key in self._backlog():
                chat = _chat(chat_of, body)
                if chat is not None:
                    last[chat] = key
            loop = asyncio.get_running_loop()
            self._gates = {chat: loop.create_future() for chat in last}
        finally:
            self._scanned.set()
        if last:
            log.info("%s: replaying the messages accepted before the last stop (%d chats)", self.channel, len(last))
        slots = asyncio.Semaphore(self.in_flight)
        count = 0
        async for message_id, body, processed, key in self._backlog():
            await slots.acquire()
            chat = _chat(chat_of, body)
            task = asyncio.get_running_loop().create_task(run(message_id, body, processed))
            self._running.add(task)
            ends = chat if chat is not None and last.get(chat) == key else None  # its chat's last row
            task.add_done_callback(functools.partial(self._finished, slots=slots, chat=ends))
            count += 1
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)
        for gate in self._gates.values():  # (a row answered meanwhile by another process)
            if not gate.done():
                gate.set_result(None)
        self._gates = {}
        self.replayed = count
        if count:
            log.info("%s: %d message(s) accepted before the last stop replayed", self.channel, count)
        return count

    def _finished(self, task: asyncio.Task, slots: asyncio.Semaphore, chat: Hashable | None) -> None:
        """A backlog row is done; if it was its chat's last, the chat's new messages may go."""
        self._running.discard(task)
        slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("replaying a message failed", exc_info=task.exception())
        gate = self._gates.pop(chat, None) if chat is not None else None
        if gate is not None and not gate.done():
            gate.set_result(None)

    async def admit(self, chat: Hashable) -> None:
        """Returns once `chat` has no backlog row left to replay before its new messages."""
        if not self._scanned.is_set():
            await self._scanned.wait()
        gate = self._gates.get(chat)
        if gate is not None:
            await asyncio.shield(gate)

    async def stop(self) -> None:
        """Stop replaying: the backlog rows not handed over yet, and the new messages waiting for
        them, stay unanswered for the next start (still in order); the rows in hand finish."""
        if self._replay is not None and not self._replay.done():
            self._replay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replay
        self._scanned.set()
        for gate in self._gates.values():
            gate.cancel()
        self._gates = {}
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

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
            self._failing = False
        except StoreUnavailable as exc:
            # The database is away for a while (a PostgreSQL restart): keep the marks for the
            # next flush. Said in one line: it is not a bug.
            if not self._failing:
                log.warning("could not mark %d inbox row(s) answered yet (%s): will try again", len(ids), exc)
            self._failing = True
            self._ids = ids + self._ids
            if self._task is None and not self._closing:
                self._task = asyncio.get_running_loop().create_task(self._later())
        except Exception:
            # Unmarked rows are replayed at the next start: their replies may be repeated, never lost.
            log.exception("could not mark %d inbox row(s) answered", len(ids))

    async def close(self) -> None:
        self._closing = True
        await self.stop()
        if self._task is not None:
            await self._task  # at most `every` seconds
        await self.flush()


def _chat(chat_of: Callable[[str], Hashable | None], body: str) -> Hashable | None:
    try:
        return chat_of(body)
    except Exception:  # a body the channel cannot read: no chat to keep in order
        return None
