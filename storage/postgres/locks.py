"""Chat locks across worker processes: session-level advisory locks on a connection of their own.

Several `addad whatsapp` / `addad serve` processes on one database (docs/deploy.md "Two
workers") exclude one another per chat with `pg_try_advisory_lock(CHAT_SPACE, hashtext(key))`
(conversations/workers.py). The lock is the session's, so it goes when its holder dies (kill -9,
a host gone): the server releases it with the connection, and another worker takes the chat.

Its own connection, not the store's: the store's connection spends its life inside group-commit
transactions, and a lock waiting there would hold every turn of the process. Only the non-blocking
`try` form is used, so one connection serves every chat of the process. A hash collision makes
two chats share a lock: both are still served, one after the other.

When this connection breaks, every lock it held is gone: `generation` moves, and a holder checks
it (`held`) before what it must not do twice (conversations/workers.py).

That alone left a gap (issue 23's last targets): the server may end this session while the
process lives on (pg_terminate_backend, a pooler's restart, an idle timeout) and its store is
mid-row — the turn committed, its replies on their way. Another worker got the chat lock at
once and ran that row again: its replies went twice. So a chat is held by two locks, both
needed: the chat lock here, and a *fence* on the store's own connection (`FENCE_SPACE`, taken
with `Database.try_session_lock`), the connection the row's turn commits on. A worker whose
lock connection died still holds the fence until it has finished the row in hand (sent, marked
answered) and let go; the next worker's `try_lock` fails on the fence until then. A worker whose
store connection dies loses the fence with it, and the turn in flight with it (rolled back by
the server) — unless it had committed: then its replies may go twice, as a killed worker's.

The same connection holds the worker's own lock (`worker_id`, random per process) for as long as
it lives: another worker asks `alive(id)` of the claimant of an outbox message before taking its
claim over (conversations/dispatch.py), so a dead worker's sends are settled at once and a live
one's are left alone.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from typing import TYPE_CHECKING

import asyncpg

from ..protocols import StoreUnavailable
from .db import _LOST, CONNECT_TIMEOUT, _reason, masked

if TYPE_CHECKING:
    from .db import Database

log = logging.getLogger(__name__)

CHAT_SPACE = 0x41646462  # 'Addb': the first key of every chat lock (the writers' lock is 'Adda')
WORKER_SPACE = 0x41646463  # 'Addc': each worker's own lock, held while it lives
FENCE_SPACE = 0x41646466  # 'Addf': a chat's fence, on the store's connection (module docstring)


class ChatLocks:
    def __init__(self, url: str, db: Database | None = None) -> None:
        self.url = url
        self.db = db  # the store's: the fences go on its connection (None: no fence)
        # token → (this connection's generation, the store connection holding the fence or None)
        self._held: dict[int, tuple[int, object | None]] = {}
        self._tokens = itertools.count(1)
        self._pg: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # one statement at a time on the connection
        self.generation = 0  # moves whenever the connection (and with it every lock) is lost
        self.worker_id = secrets.token_hex(8)

    async def _conn(self) -> asyncpg.Connection:
        if self._pg is None or self._pg.is_closed():
            if self._pg is not None:
                self._pg.terminate()
                self._pg = None
                self.generation += 1
            try:
                pg = await asyncpg.connect(
                    self.url, timeout=CONNECT_TIMEOUT, server_settings={"application_name": "addad-chats"}
                )
                await pg.execute("SELECT pg_advisory_lock($1, hashtext($2))", WORKER_SPACE, self.worker_id)
                self._pg = pg
            except Exception as exc:
                if isinstance(exc, (*_LOST, asyncpg.PostgresError)):
                    raise StoreUnavailable(f"database {masked(self.url)}: {_reason(exc)}") from exc
                raise
        return self._pg

    async def try_lock(self, key: str) -> int | None:
        """The chat's lock if no other process holds it: a token for `held` and `unlock`, else None.
        (Within one process the caller excludes its own jobs: the lock is re-entrant per session.)"""
        async with self._lock:
            pg = await self._conn()
            try:
                got = await pg.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", CHAT_SPACE, key)
            except _LOST:
                self._pg = None
                self.generation += 1
                raise
            if not got:
                return None
            generation = self.generation
        fence = None
        if self.db is not None:
            try:
                fence = await self.db.try_session_lock(FENCE_SPACE, key)
            except BaseException:
                await self._unlock_chat(key, generation)
                raise
            if fence is None:  # a worker whose lock connection died is still finishing a row
                await self._unlock_chat(key, generation)
                return None
        token = next(self._tokens)
        self._held[token] = (generation, fence)
        return token

    async def ensure(self) -> None:
        """Connected, this worker's own lock held (before claiming under `worker_id`)."""
        async with self._lock:
            await self._conn()

    async def alive(self, worker_id: str) -> bool:
        """Whether the worker `worker_id` still holds its lock (its session lives)."""
        if worker_id == self.worker_id:
            return True
        async with self._lock:
            pg = await self._conn()
            if not await pg.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", WORKER_SPACE, worker_id):
                return True
            await pg.fetchval("SELECT pg_advisory_unlock($1, hashtext($2))", WORKER_SPACE, worker_id)
            return False

    def held(self, token: int) -> bool:
        """Whether a lock taken with `token` is still held: its connection, and the store's that
        holds its fence, did not break since."""
        generation, fence = self._held.get(token, (-1, None))
        if generation != self.generation or self._pg is None or self._pg.is_closed():
            return False
        return fence is None or (self.db is not None and self.db.holds_session_lock(fence))

    async def unlock(self, key: str, token: int) -> None:
        generation, fence = self._held.pop(token, (-1, None))
        try:
            await self._unlock_chat(key, generation)
        finally:
            if fence is not None and self.db is not None:
                await self.db.session_unlock(FENCE_SPACE, key, fence)

    async def _unlock_chat(self, key: str, generation: int) -> None:
        if generation != self.generation or self._pg is None or self._pg.is_closed():
            return  # went with its connection
        async with self._lock:
            try:
                await self._pg_or_none().fetchval("SELECT pg_advisory_unlock($1, hashtext($2))", CHAT_SPACE, key)
            except _LOST:
                self._pg = None
                self.generation += 1

    def _pg_or_none(self) -> asyncpg.Connection:
        if self._pg is None:
            raise ConnectionError("chat locks: not connected")
        return self._pg

    async def close(self) -> None:
        if self._pg is not None:
            self._pg.terminate()  # every lock goes with it
            self._pg = None
            self.generation += 1
