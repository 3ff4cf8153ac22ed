"""The PostgreSQL store: storage.Store over db.py, with SQLite's repositories and read cache."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, cast

from ..clock import Clock, system_clock
from ..records import Request
from ..sqlite.cache import ReadCache
from ..sqlite.repositories import _AGENCY_STAGE_COLS, _BILL_COLS, _CONTRACT_COLS, _STAGE_WIDTH, SqliteTx, _cols
from .db import Database, PgConnection, PgCursor, ReadTransaction, WriteTransaction
from .dialect import shape
from .locks import ChatLocks

# Per import kind, the table and columns its staged values go to: the stage's column types.
_STAGED = {
    "contracts": ("contracts", _cols(_CONTRACT_COLS)),
    "bills": ("bills", _cols(_BILL_COLS)),
    "readings": ("readings", ["contract", "reading_date", "index_value", "source"]),
    "agencies": ("agencies", _cols(_AGENCY_STAGE_COLS)),
}


# Transaction-scoped advisory locks (held until the group's COMMIT) where a read-then-write of
# the repositories would not hold at READ COMMITTED with another process writing at once (db.py:
# writers are not serialised across processes). First keys; the second is hashtext of the key.
INBOX_SPACE = 0x41646464  # 'Addd': a chat's inbox rows get their rowids in commit order
CONTRACT_SPACE = 0x41646465  # 'Adde': a contract's same-day reading, its pending-request check


class PgTx(SqliteTx):
    """SQLite's repositories on a PostgreSQL connection; the import's stage differs (PostgreSQL
    columns need types, and COPY loads it fastest), and three writes take a lock first."""

    __slots__ = ("_deferring",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._deferring: str | None = None  # set while a write may wait for the next round trip

    # A turn ends with three light writes whose results it needs only at its last: the session
    # (`save_session`, which must change one row), the chat's lines, the message key
    # (`record_turn`). Held back (db.py PgConnection.defer), they go in one round trip with
    # the last. Same rows, same transaction: a session changed meanwhile still raises
    # ConcurrentUpdate before the turn commits. Only in write transactions (the cache is theirs).
    async def _write(self, sql: str, params: Iterable[Any] = (), *, key: Any = None, light: bool = False) -> Any:
        if self._deferring is None or self._cache is None or shape(sql)[1]:  # (a RETURNING is read now)
            return await super()._write(sql, params, key=key, light=light)
        self._forget(sql, key)
        await self._pg.defer(sql, tuple(params), light=light, expect_one=self._deferring or None)
        return PgCursor([], 1)  # (the count is checked when sent)

    def _forget(self, sql: str, key: Any) -> None:
        super()._forget(sql, key)
        self._pg.note(sql, key)  # for the change log other processes' caches read (db.py)

    @property
    def _pg(self) -> PgConnection:
        return cast(PgConnection, self._c)

    async def save_session(self, s: Any, *, now: datetime | None = None) -> int:
        self._deferring = f"session {s.channel}:{s.user_id} changed since version {s.version}"
        try:
            return await super().save_session(s, now=now)
        finally:
            self._deferring = None

    async def _insert_chat_lines(self, chat: tuple[str, str], rows: list) -> None:
        self._deferring = ""  # no count expected
        try:
            await super()._insert_chat_lines(chat, rows)
        finally:
            self._deferring = None

    async def record_turn(self, channel: str, message_id: str, replies: str, *, now: datetime | None = None) -> bool:
        if self._cache is None:
            return await super().record_turn(channel, message_id, replies, now=now)
        self._deferring = ""  # its count is the answer, not a check
        try:
            await super().record_turn(channel, message_id, replies, now=now)
        finally:
            self._deferring = None
        return (await self._pg.flush())[-1] == 1

    async def _hold(self, space: int, key: str) -> None:
        # Only in a write transaction (a snapshot has no cache): a read for display waits on nobody.
        if self._cache is not None:
            await self._c.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (space, key))

    async def accept_inbound(
        self, channel: str, message_id: str, body: str, *, now: datetime | None = None, chat: str | None = None
    ) -> bool:
        # Two workers keeping one chat's messages at once: without the lock, the later rowid could
        # commit first and be run first (conversations/workers.py orders a chat by rowid). With it,
        # the second waits until the first commits, then takes its rowid: rowid order is commit order.
        if chat is not None:
            await self._hold(INBOX_SPACE, f"{channel}:{chat}")
        return await super().accept_inbound(channel, message_id, body, now=now, chat=chat)

    async def add_customer_reading(self, *, contract: str, **kw: Any) -> int:
        # Two chats linked to one contract confirming a reading the same day: the second replaces the
        # first (as one after the other) instead of failing on the one-valid-a-day index.
        await self._hold(CONTRACT_SPACE, contract)
        return await super().add_customer_reading(contract=contract, **kw)

    async def requests(
        self,
        *,
        status: str | None = None,
        contract: str | None = None,
        chat: tuple[str, str] | None = None,
        kinds: Iterable[str] | None = None,
    ) -> list[Request]:
        # A journey files a deferral or an advance only if none is pending for the contract
        # (journeys/facilities.py, prepaid.py): that check and the filing are one contract's at a time.
        if status == "pending" and contract is not None:
            await self._hold(CONTRACT_SPACE, contract)
            if self._cache is not None:  # read under the lock, not as cached before it
                self._cache.invalidate([("requests", contract)])
        return await super().requests(status=status, contract=contract, chat=chat, kinds=kinds)

    async def stage_open(self, kind: str) -> None:
        table, cols = _STAGED[kind]
        assert len(cols) == _STAGE_WIDTH[kind]
        types = dict(
            await self._bulk(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ?",
                (table,),
            )
        )
        await self._write("DROP TABLE IF EXISTS temp.import_stage")
        await self._write(
            "CREATE TEMP TABLE import_stage (line BIGINT PRIMARY KEY, key TEXT, "
            + ", ".join(f"c{i} {types[c]}" for i, c in enumerate(cols))
            + ")"
        )

    async def stage_rows(self, rows: Sequence[tuple]) -> None:
        if rows:
            self._forget("INSERT INTO temp.import_stage", None)
            await cast(PgConnection, self._c).copy_rows("import_stage", list(rows), schema="pg_temp")


@dataclass
class PgStore:
    """storage.Store on a PostgreSQL database."""

    db: Database
    cache: ReadCache = field(default_factory=ReadCache)
    clock: Clock = system_clock
    # Several workers may share the database: the channels order each chat across them
    # (conversations/workers.py); connected on first use, so a CLI command opens no second link.
    chat_locks: ChatLocks | None = None

    def __post_init__(self) -> None:
        if self.chat_locks is None:
            self.chat_locks = ChatLocks(self.db.url, self.db)
        self.db.caches.append(self.cache)

    @classmethod
    async def open(
        cls, url: str, *, migrate: bool = True, clock: Clock | None = None, reconnect_wait: float = 15.0
    ) -> PgStore:
        return cls(
            await Database.open(url, migrate=migrate, reconnect_wait=reconnect_wait), clock=clock or system_clock
        )

    async def close(self) -> None:
        if self.chat_locks is not None:
            await self.chat_locks.close()
        await self.db.close()

    async def upgrade(self) -> list[str]:
        return await self.db.upgrade()

    async def schema_version(self) -> int:
        async with self.db.lock:
            return await self.db.schema_version()

    def transaction(self) -> _Repositories:
        return _Repositories(self.db.transaction(light_ok=True), self.cache, self.clock)

    def snapshot(self) -> _Repositories:
        return _Repositories(self.db.snapshot(), None, self.clock)


class _Repositories:
    __slots__ = ("cache", "clock", "inner")

    def __init__(self, inner: WriteTransaction | ReadTransaction, cache: ReadCache | None, clock: Clock) -> None:
        self.inner = inner
        self.cache = cache
        self.clock = clock

    async def __aenter__(self) -> PgTx:
        conn = await self.inner.__aenter__()
        cache = self.cache
        if cache is not None:
            cache.sync(self.inner.db.epoch)
        return PgTx(cast(Any, conn), cache, self.clock)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        return await self.inner.__aexit__(exc_type, exc, tb)
