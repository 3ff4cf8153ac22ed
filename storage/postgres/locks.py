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

The same connection holds the worker's own lock (`worker_id`, random per process) for as long as
it lives: another worker asks `alive(id)` of the claimant of an outbox message before taking its
claim over (conversations/dispatch.py), so a dead worker's sends are settled at once and a live
one's are left alone.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

import asyncpg

from ..protocols import StoreUnavailable
from .db import _LOST, CONNECT_TIMEOUT, _reason, masked

log = logging.getLogger(__name__)

CHAT_SPACE = 0x41646462  # 'Addb': the first key of every chat lock (the writers' lock is 'Adda')
WORKER_SPACE = 0x41646463  # 'Addc': each worker's own lock, held while it lives


class ChatLocks:
    def __init__(self, url: str) -> None:
        self.url = url
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
            return self.generation if got else None

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
        """Whether a lock taken with `token` is still held (its connection did not break since)."""
        return token == self.generation and self._pg is not None and not self._pg.is_closed()

    async def unlock(self, key: str, token: int) -> None:
        if not self.held(token):
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
