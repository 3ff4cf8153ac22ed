"""The PostgreSQL store: storage.Store over db.py, with SQLite's repositories and read cache."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, cast

from ..clock import Clock, system_clock
from ..sqlite.cache import ReadCache
from ..sqlite.repositories import _AGENCY_STAGE_COLS, _BILL_COLS, _CONTRACT_COLS, _STAGE_WIDTH, SqliteTx, _cols
from .db import Database, PgConnection, ReadTransaction, WriteTransaction
from .locks import ChatLocks

# Per import kind, the table and columns its staged values go to: the stage's column types.
_STAGED = {
    "contracts": ("contracts", _cols(_CONTRACT_COLS)),
    "bills": ("bills", _cols(_BILL_COLS)),
    "readings": ("readings", ["contract", "reading_date", "index_value", "source"]),
    "agencies": ("agencies", _cols(_AGENCY_STAGE_COLS)),
}


class PgTx(SqliteTx):
    """SQLite's repositories on a PostgreSQL connection; only the import's stage differs
    (PostgreSQL columns need types, and COPY loads it fastest)."""

    __slots__ = ()

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
            self.chat_locks = ChatLocks(self.db.url)

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
