"""The SQLite store: a Database (one connection, group commit), the read cache, the repositories."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from ..clock import Clock, system_clock
from .cache import ReadCache
from .chatlog import HeldChatLog
from .db import Database, ReadTransaction, WriteTransaction
from .repositories import SqliteTx

log = logging.getLogger(__name__)


@dataclass
class SqliteStore:
    """storage.Store on one SQLite file."""

    db: Database
    cache: ReadCache = field(default_factory=ReadCache)
    # The process's one clock (storage/clock.py): stamps writes given no `now`, and is what the
    # engine, the dispatcher and the channels built on this store read.
    clock: Clock = system_clock
    # The chat lines of chats with no open handoff, held instead of written (chatlog.py).
    held_chat_log: HeldChatLog = field(default_factory=HeldChatLog)

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        migrate: bool = True,
        checkpoint_every: float | None = None,
        clock: Clock | None = None,
    ) -> SqliteStore:
        return cls(
            await Database.open(path, migrate=migrate, checkpoint_every=checkpoint_every), clock=clock or system_clock
        )

    async def close(self) -> None:
        await self._write_held_chat_log()
        await self.db.close()

    async def _write_held_chat_log(self) -> None:
        """A stop (a deploy, `systemctl restart`) writes the held chat lines, so an agent who later
        takes a chat still reads what led to it; only a crash forgets them (chatlog.py)."""
        held = self.held_chat_log
        if not held.chats:
            return
        try:
            async with self.transaction() as tx:
                for chat in list(held.chats):
                    lines = held.lines(chat)
                    for i in range(0, len(lines), 1000):  # (6 parameters a row, within SQLite's limit)
                        await tx._insert_chat_lines(chat, lines[i : i + 1000])
                    tx._held_ops.append((chat, None))
        except Exception:  # a store that cannot write any more must still close
            log.warning("the held chat lines could not be written at close", exc_info=True)

    async def upgrade(self) -> list[str]:
        return await self.db.upgrade()

    async def schema_version(self) -> int:
        async with self.db.lock:
            return await self.db.schema_version()

    def transaction(self) -> _Repositories:
        """`async with store.transaction() as tx:` see Database.transaction."""
        return _Repositories(self.db.transaction(light_ok=True), self.cache, self.clock, self.held_chat_log)

    def snapshot(self) -> _Repositories:
        """`async with store.snapshot() as tx:` a read-only snapshot of what is committed (no write lock)."""
        return _Repositories(self.db.snapshot(), None, self.clock, self.held_chat_log)


class _Repositories:
    """A database transaction that hands out a SqliteTx (a class: see Database.transaction)."""

    __slots__ = ("cache", "clock", "held", "inner", "tx")

    def __init__(
        self,
        inner: WriteTransaction | ReadTransaction,
        cache: ReadCache | None,
        clock: Clock,
        held: HeldChatLog | None = None,
    ) -> None:
        self.inner = inner
        self.cache = cache
        self.clock = clock
        self.held = held

    async def __aenter__(self) -> SqliteTx:
        conn = await self.inner.__aenter__()
        cache = self.cache
        if cache is not None:
            cache.sync(self.inner.db.epoch)
        self.tx = SqliteTx(conn, cache, self.clock, self.held)
        return self.tx

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        handled = await self.inner.__aexit__(exc_type, exc, tb)
        if exc_type is None:
            self.tx._settle_held()  # committed (durable where it had to be): the held lines follow
        return handled
