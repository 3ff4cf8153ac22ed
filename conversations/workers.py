"""Several worker processes on one database: each chat's messages answered once, in order.

Two or more `addad whatsapp` (or `addad serve`) processes behind a load balancer receive a
chat's messages in any spread. One process alone orders them in memory (bot/channels/ordering.py,
conversations/inbox.py); across processes the order and the exclusion come from the database:

- Order: the inbox's sequence. Every kept row names its chat (`accept_inbound(chat=…)`); a worker
  never runs "the message it received" but the chat's oldest unanswered row, then the next, until
  none is left (`chat_unanswered`, by rowid).
- Exclusion: a lock on the chat across processes (storage/postgres/locks.py, an advisory lock
  held by the worker's session), taken before the chat's first row and released after its last
  row is marked answered, so no row is run by two workers and no reply is sent while another
  worker may send the same chat's next one. A lock alone does not give order; the rowid does.
- The receiving worker's job ends once its own row is answered, by itself or by the worker that
  held the chat meanwhile: it tries the lock, and if another holds it, waits and looks again.
- The order of a chat's rowids is the order its rows become visible: keeping a chat's row takes
  a transaction-scoped lock on the chat's inbox (storage/postgres/store.py), so a row kept
  later always has a higher rowid, even with no lock across writers (storage/postgres/db.py).
- Takeover: a worker killed (kill -9) loses its locks with its connection. Every worker sweeps,
  every `sweep_every` seconds, the chats with an unanswered row that was already there at the
  previous sweep, and drains those whose lock it gets: a dead worker's chats are taken over, and
  at start the backlog is replayed this way — never a chat another live worker holds, so a
  starting worker does not resend what a live one is sending. A row the dead worker had run but
  not marked is run again with `processed`: its kept replies are sent again (docs/delivery.md:
  repeated rather than lost). Rows kept without a chat (by one process alone, before version
  13) are given theirs by the first sweep (`chat_of`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from storage import ConcurrentUpdate, Store

log = logging.getLogger(__name__)

# One inbox row to run: (message_id, body, processed, received_here) → its turn and replies, done.
Runner = Callable[[str, str, bool, bool], Coroutine[Any, Any, None]]


class Locks(Protocol):
    worker_id: str

    async def try_lock(self, key: str) -> int | None: ...
    async def ensure(self) -> None: ...
    async def alive(self, worker_id: str) -> bool: ...
    def held(self, token: int) -> bool: ...
    async def unlock(self, key: str, token: int) -> None: ...


def chat_locks(store: Store) -> Locks | None:
    """The store's locks across processes (PostgreSQL), or None: one process owns the store (SQLite)."""
    return getattr(store, "chat_locks", None)


class SharedChats:
    """One channel's chats served by whichever worker holds their lock (module docstring)."""

    def __init__(
        self,
        store: Store,
        channel: str,
        locks: Locks,
        run: Runner,
        chat_of: Callable[[str, str], str],
        *,
        poll: float = 0.02,
        sweep_every: float = 1.0,
        batch: int = 20,
        sort_key: Callable[[str], Any] | None = None,
    ) -> None:
        self.store, self.channel, self.locks, self.run, self.chat_of = store, channel, locks, run, chat_of
        # Rows of a chat visible together run in this order of their message id (Telegram: the
        # update_id) rather than the inbox's; None: the inbox's (rowid).
        self.sort_key = sort_key
        self.poll, self.sweep_every, self.batch = poll, sweep_every, batch
        self._local: dict[str, asyncio.Lock] = {}  # this process's jobs, one at a time per chat
        self._users: dict[str, int] = {}
        self._here: set[str] = set()  # rows received by this process and not run yet
        self._tasks: set[asyncio.Task] = set()
        self._sweeper: asyncio.Task | None = None
        self._closing = False
        self.taken_over = 0  # rows this worker ran that another worker had received (or a past run)

    # -------------------------------------------------------------- the live path
    async def received(self, chat: str, message_id: str) -> None:
        """A row this worker kept: returns once it is answered (by this worker or another)."""
        self._here.add(message_id)
        delay = self.poll
        try:
            while not self._closing:
                try:
                    async with self._chat(chat):
                        if await self._answered(message_id):
                            return
                        if await self._drain(chat):
                            if await self._answered(message_id):
                                return
                            delay = self.poll
                            continue
                except Exception:
                    log.exception("%s chat could not be served; trying again", self.channel)
                    delay = 0.5
                await asyncio.sleep(delay)  # another worker holds the chat: it runs this row, or we will
                delay = min(delay * 2, 0.2)
        finally:
            self._here.discard(message_id)

    # -------------------------------------------------------------- takeover and replay
    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop(), name=f"sweep {self.channel}")

    async def _sweep_loop(self) -> None:
        upto: int | None = None  # the first sweep (the start's replay) takes every unanswered row
        while not self._closing:
            try:
                if upto is None:
                    await self._name_chats()
                async with self.store.snapshot() as tx:
                    last = await tx.last_inbound()
                    chats = await tx.unanswered_chats(self.channel, upto=upto)
                for chat in chats:
                    if chat not in self._local:  # a chat this process is serving is not swept
                        self._spawn(self._sweep_chat(chat))
                upto = last
            except Exception:
                log.exception("%s: sweeping the unanswered messages failed; trying again", self.channel)
            await asyncio.sleep(self.sweep_every)

    async def _name_chats(self) -> None:
        """The unanswered rows kept without a chat get theirs (a page at a time)."""
        after = None
        while True:
            async with self.store.snapshot() as tx:
                page = await tx.unanswered_inbound(self.channel, after=after, limit=500)
            if page:
                async with self.store.transaction() as tx:
                    await tx.name_chats(self.channel, [(m, self.chat_of(m, body)) for m, body, _, _ in page])
            if len(page) < 500:
                return
            after = page[-1][3]

    async def _sweep_chat(self, chat: str) -> None:
        try:
            async with self._chat(chat):
                before = self.taken_over
                await self._drain(chat)
                if self.taken_over > before:  # (no number nor text: docs/delivery.md's log rules)
                    log.info("%s: %d waiting message(s) of a chat taken over", self.channel, self.taken_over - before)
        except Exception:
            log.exception("%s chat could not be served; the next sweep tries again", self.channel)

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -------------------------------------------------------------- a chat's rows
    async def _drain(self, chat: str) -> bool:
        """Under the chat's lock, run its unanswered rows oldest first until none is left; False
        if another worker holds it."""
        key = f"{self.channel}:{chat}"
        token = await self.locks.try_lock(key)
        if token is None:
            return False
        try:
            while not self._closing:
                async with self.store.snapshot() as tx:
                    rows = await tx.chat_unanswered(self.channel, chat, limit=self.batch)
                if not rows:
                    break
                if self.sort_key is not None:
                    sort_key = self.sort_key
                    rows = sorted(rows, key=lambda row: sort_key(row[0]))
                for message_id, body, processed in rows:
                    if not self.locks.held(token):
                        return True  # the lock went with its connection: another worker may have the chat
                    here = message_id in self._here
                    if not here:
                        self.taken_over += 1
                    await self.run(message_id, body, processed, here)
                    self._here.discard(message_id)
                    # Marked before the lock goes: the next holder never runs it again.
                    await self._mark_answered(message_id)
                    if self._closing:
                        break
        finally:
            await self.locks.unlock(key, token)
        return True

    async def _mark_answered(self, message_id: str) -> None:
        # A write conflict with another worker (PostgreSQL: a deadlock victim, storage/postgres/db.py)
        # rolled the mark back: marked again, or the row would be run again and its replies resent.
        for attempt in range(6):
            try:
                async with self.store.transaction() as tx:
                    await tx.mark_answered(self.channel, [message_id])
                return
            except ConcurrentUpdate:
                if attempt == 5:
                    raise
                await asyncio.sleep(0.005 * (attempt + 1))

    async def _answered(self, message_id: str) -> bool:
        async with self.store.snapshot() as tx:
            return await tx.inbound_answered(self.channel, message_id)

    @contextlib.asynccontextmanager
    async def _chat(self, chat: str):
        lock = self._local.get(chat)
        if lock is None:
            lock = self._local[chat] = asyncio.Lock()
        self._users[chat] = self._users.get(chat, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[chat] -= 1
            if not self._users[chat]:
                del self._users[chat]
                del self._local[chat]

    async def close(self) -> None:
        """Stop: rows not run yet stay unanswered for another worker or the next start; a row in
        hand finishes."""
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
