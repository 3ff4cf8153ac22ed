"""One PostgreSQL connection per process, used as storage/sqlite/db.py uses its SQLite one.

The repositories are SQLite's (storage/sqlite/repositories.py); `PgConnection` gives them the
same face (`execute` → a cursor with rowcount, lastrowid, fetchone; `executemany`, `stream`,
`light_write`) and translates each statement (dialect.py). What SQLite gave by construction
is rebuilt here:

- Writers are not serialised across processes (they were, by a global advisory lock, until
  issue 23's last targets: two workers could not run two turns at once). Each write
  transaction runs at READ COMMITTED and takes the writers' lock (`WRITE_LOCK`) in *shared*
  mode only, so migrations and `addad db copy`, which take it exclusively, still run alone.
  What the global lock gave the repositories' read-then-write code is kept otherwise
  (docs/deploy.md "Two workers" lists it): a chat's turns by the chat locks
  (conversations/workers.py); the counters, claims, links, consents and the inbox by single
  statements (upserts, conditional UPDATEs) that READ COMMITTED re-checks after waiting on the
  row; per-chat inbox order, a contract's same-day reading and its pending requests by
  transaction-scoped advisory locks on the chat or the contract (store.py's PgTx). A deadlock
  or serialization failure (SQLSTATE 40P01, 40001) rolls the whole group back and is raised as
  `storage.WriteConflict` (a `ConcurrentUpdate`): the engine runs the turn again, as it does
  when another process wrote the session. `exclusive_writes = True` restores the global lock
  (the benchmark's baseline).
- Group commit as in SQLite: write transactions are SAVEPOINTs inside a shared transaction that
  commits once no writer already waiting is left; a failing member rolls back to its savepoint
  alone (the group's first member, alone in it, needs none). A member's savepoint is released
  by the next member's `SAVEPOINT` statement (or the COMMIT), not by a round trip of its own.
- Round trips: a write whose caller needs no result at once is held (`PgConnection.defer`,
  used by store.py for a turn's session, chat lines and message key) and sent with the next
  one, as one statement of data-modifying `WITH` clauses that returns each one's row count.
- Durability as in SQLite: a group whose writes are all *light* (the session, the message key
  and replies, the answered mark: what a replayed turn writes again) commits with
  `synchronous_commit = off` (no wait for the WAL flush; PostgreSQL still never corrupts); any
  other write makes it wait for the flush (the server's `synchronous_commit`, on by default).
- The read cache (storage/sqlite/cache.py) is kept correct across processes by a change log:
  every group that wrote a table some cached kind reads adds one row to `addad_changes` in its
  COMMIT's round trip: its transaction id (`pg_current_xact_id()`), the writing process, and the
  keys it wrote per table (the contract, the chat; none: every key). A write transaction's
  BEGIN reads, in the same round trip as the writers' lock, the rows of other processes'
  transactions that are visible now but were not in the snapshot its previous BEGIN took
  (`pg_visible_in_snapshot`: commit order, not id order, which a sequence would give), and
  forgets just those keys, so another process's sessions do not empty this one's bills. What
  cannot be followed row by row starts from an empty cache: the first transaction, a broken
  connection, `addad_meta.epoch` moved (migrations, copies, and the log's pruning: every
  `PRUNE_EVERY` commits a process deletes the rows every open snapshot has seen), more than
  `CHANGES_MAX` rows to read, or a statement whose table cannot be told. (A commit of another
  process after that BEGIN is seen by the group's statements, not by its cache hits: as if the
  cached rows were read first; its next group sees it. Writes made outside Addad, with psql,
  are not logged: docs/deploy.md.)
- Faults: a connection found broken at the start of a transaction is re-opened (retrying for
  up to `reconnect_wait` seconds: a server restart takes a few), so the turn goes on; one that
  breaks mid-transaction fails that transaction (and its group), the turn's customer is told
  in his language (conversations/engine.py), and the next transaction reconnects. A COMMIT whose
  answer is lost is reported as failed: a channel's inbox replays the message, and a turn that
  did commit is recognised by its message key (docs/delivery.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Sequence
from typing import Any

import asyncpg

from ..protocols import ConcurrentUpdate, ConnectionLost, StoreUnavailable, WriteConflict
from ..sqlite.cache import CACHED, ReadCache, written_table
from ..sqlite.db import Connection as _SqliteConnection
from .dialect import shape, translate

log = logging.getLogger(__name__)

WRITE_LOCK = (0x41646461, 1)  # 'Adda': the writers' lock (shared by turns, exclusive for migrations, copies)
MIGRATE_LOCK = (0x41646461, 2)
CONNECT_TIMEOUT = 5.0  # seconds, per attempt
_wait_uncancelled = _SqliteConnection.wait_uncancelled

# What makes a connection unusable (the server restarted or went away), as opposed to an error
# in a statement.
_LOST: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, crash shutdown, cannot connect now
    ConnectionError,
    OSError,
    # "cannot switch to state …; another operation is in progress": a connection left mid-query
    # (seen after a server restart) is in no known state: dropped and opened again like a lost one.
    asyncpg.exceptions.InternalClientError,
    asyncio.TimeoutError,
)


# What the server rolls back as a conflict between transactions: the group is rolled back whole
# and its members told `WriteConflict`, to be run again.
_CONFLICT = (asyncpg.exceptions.SerializationError, asyncpg.exceptions.DeadlockDetectedError)

# The read cache's change log (the docstring): what other processes' transactions committed since
# the snapshot $1 (text, NULL at first), at most CHANGES_MAX + 1 rows; with the migrations'
# epoch and the snapshot of this statement (READ COMMITTED: what the BEGIN sees).
CHANGES_MAX = 256
_CHANGES = (
    "SELECT (SELECT epoch FROM addad_meta), pg_current_snapshot()::text, ARRAY(SELECT changes FROM addad_changes "
    "WHERE $1::text IS NOT NULL AND xid >= pg_snapshot_xmin($1::text::pg_snapshot) "
    f"AND NOT pg_visible_in_snapshot(xid, $1::text::pg_snapshot) AND writer <> $2 LIMIT {CHANGES_MAX + 1})"
)
# Every so many logged commits a process deletes the rows no snapshot can still need (those of
# transactions finished before every open one) and moves the epoch, so that a process whose
# last BEGIN came before starts from an empty cache rather than miss a deleted row.
PRUNE_EVERY = 2000
_PRUNE = (
    "DELETE FROM addad_changes WHERE xid < pg_snapshot_xmin(pg_current_snapshot()); "
    "UPDATE addad_meta SET epoch = epoch + 1; "
)
_CACHED_TABLES = frozenset(table for tables in CACHED.values() for table in tables)
_UNKNOWN = ""  # a write whose table cannot be told from its statement (DDL, a CTE)
_tables: dict[str, str] = {}


def _table_of(sql: str) -> str:
    table = _tables.get(sql)
    if table is None:
        if len(_tables) > 4096:  # write statements are few and fixed; this is a guard
            _tables.clear()
        table = _tables[sql] = written_table(sql) or _UNKNOWN
    return table


def _literal(text: str) -> str:
    """A string constant for a statement sent without parameters (the COMMIT's round trip)."""
    if "\0" in text:
        raise ValueError("NUL in a change log entry")
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


async def _control(pg: asyncpg.Connection, sql: str) -> None:
    """Run a transaction-control statement; a caller cancelled meanwhile still waits for its end
    (the group's state must follow the server's)."""
    await _wait_uncancelled(asyncio.ensure_future(pg.execute(sql)))


def masked(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


_AUTH = (asyncpg.exceptions.InvalidPasswordError, asyncpg.exceptions.InvalidAuthorizationSpecificationError)


def _reason(exc: BaseException) -> str:
    """One line saying why the server could not be used, with what to check."""
    if isinstance(
        exc, asyncpg.exceptions.InvalidPasswordError | asyncpg.exceptions.InvalidAuthorizationSpecificationError
    ):
        return f"{exc} (check the user and password in ADDAD_DATABASE)"
    if isinstance(exc, asyncpg.exceptions.InvalidCatalogNameError):
        return f"{exc} (create it: createdb, or fix the database name in ADDAD_DATABASE)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running, on that host and port?)"
    if isinstance(exc, asyncio.TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT:g} s (check the host and port, and the firewall)"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} (check the host and port in ADDAD_DATABASE)"
    return str(exc) or type(exc).__name__


class PgCursor:
    """What the repositories read of a sqlite3 cursor."""

    __slots__ = ("lastrowid", "rowcount", "rows")

    def __init__(self, rows: list[tuple], rowcount: int, lastrowid: int | None = None) -> None:
        self.rows = rows
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def fetchone(self) -> tuple | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple]:
        return self.rows


def _count(status: str) -> int:
    """Rows changed, from a command tag ('UPDATE 3', 'INSERT 0 1'); 0 for DDL."""
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0


class PgConnection:
    """storage/sqlite/db.py Connection's face on the Database's asyncpg connection."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.light = 0  # rows changed by light writes (as in SQLite)
        self.total_changes = 0  # rows changed by any write (sqlite3's total_changes)
        # Writes held back to be sent together (`defer`): (SQLite statement, params, light, the
        # ConcurrentUpdate message if it must change exactly one row).
        self.pending: list[tuple[str, tuple, bool, str | None]] = []
        # What the open group wrote, for the change log (Database._commit_group): per table that
        # a cached kind reads, the keys written (None: every key); `wrote_unknown`, a write whose
        # table cannot be told. The repositories announce each write with its key (`note`) just
        # before sending it; a write sent unannounced counts as every key of its table.
        self.written: dict[str, set[Hashable] | None] = {}
        self.wrote_unknown = False
        self._announced: str | None = None

    def note(self, sql: str, key: Hashable | None) -> None:
        """The write `sql` is about to be sent, for the rows of `key` (None: it cannot tell)."""
        self._announced = sql
        table = _table_of(sql)
        if table is _UNKNOWN:
            self.wrote_unknown = True
        elif table in _CACHED_TABLES:
            written = self.written
            if key is None:
                written[table] = None
            elif table not in written:
                written[table] = {key}
            else:
                keys = written[table]
                if keys is not None:
                    keys.add(key)

    def _sending(self, sql: str) -> None:
        if self._announced != sql:
            self.note(sql, None)
        self._announced = None

    def changes(self) -> str | None:
        """The group's change log entry (JSON), None if it wrote nothing a cache reads."""
        if self.wrote_unknown:
            return '"*"'
        if not self.written:
            return None
        entry: dict[str, list | None] = {}
        for table, keys in self.written.items():
            entry[table] = None if keys is None else [list(k) if isinstance(k, tuple) else k for k in keys]
        try:
            return json.dumps(entry, ensure_ascii=True, separators=(",", ":"))
        except (TypeError, ValueError):  # a key JSON cannot carry: every key of every table written
            return json.dumps(dict.fromkeys(self.written), separators=(",", ":"))

    @property
    def pg(self) -> asyncpg.Connection:
        pg = self.db.pg
        if pg is None:
            raise StoreUnavailable(f"database {masked(self.db.url)}: not connected")
        return pg

    async def defer(self, sql: str, params: tuple, *, light: bool, expect_one: str | None = None) -> None:
        """Hold a write whose result its caller does not need now: it goes with the next
        statement's round trip (`flush`). A turn's end writes three rows (its session, its chat
        lines, its message key) in one round trip instead of three. A second write to a table
        already pending flushes the first (the statements of one round trip do not see each
        other's rows)."""
        table = written_table(sql)
        if table is None or any(written_table(p[0]) == table for p in self.pending):
            await self.flush()
        self._sending(sql)
        self.pending.append((sql, params, light, expect_one))

    async def flush(self) -> list[int]:
        """Send the pending writes as one statement (data-modifying CTEs, each counting its rows);
        their counts, in order. A write expected to change one row that changed none raises
        ConcurrentUpdate (its transaction rolls back, as when the write ran alone)."""
        pending, self.pending = self.pending, []
        if not pending:
            return []
        if len(pending) == 1:
            sql, params = pending[0][:2]
            counts = [(await self._run(sql, params, noted=True)).rowcount]
        else:
            parts = [f"w{i} AS ({sql} RETURNING 1)" for i, (sql, *_) in enumerate(pending)]
            counts_sql = ", ".join(f"(SELECT count(*) FROM w{i})" for i in range(len(pending)))
            combined = "WITH " + ", ".join(parts) + " SELECT " + counts_sql
            row = await self.pg.fetchrow(translate(combined), *(v for _, params, _, _ in pending for v in params))
            counts = [int(n) for n in row]
            self.total_changes += sum(counts)
        for (_, _, light, expect), n in zip(pending, counts, strict=True):
            if light:
                self.light += n
            if expect is not None and n != 1:
                raise ConcurrentUpdate(expect)
        return counts

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> PgCursor:
        if self.pending:
            await self.flush()
        return await self._run(sql, params)

    async def _run(self, sql: str, params: Iterable[Any] = (), *, noted: bool = False) -> PgCursor:
        is_write, returning, insert_into = shape(sql)
        query, args, pg = translate(sql), tuple(params), self.pg
        if not is_write:
            if sql.lstrip()[:6].upper() in ("SELECT", "WITH  ") or sql.lstrip()[:4].upper() == "WITH":
                return PgCursor([tuple(r) for r in await pg.fetch(query, *args)], -1)
            if not noted:
                self._sending(sql)
            await pg.execute(query, *args)  # DDL (the import's stage)
            return PgCursor([], -1)
        if not noted:  # (a deferred write was noted when held)
            self._sending(sql)
        if returning:
            rows = [tuple(r) for r in await pg.fetch(query, *args)]
            self.total_changes += len(rows)
            return PgCursor(rows, len(rows))
        if insert_into is not None and insert_into in self.db.id_tables:
            rows = await pg.fetch(query + " RETURNING id", *args)  # sqlite3's lastrowid
            self.total_changes += len(rows)
            return PgCursor([], len(rows), rows[0][0] if rows else None)
        changed = _count(await pg.execute(query, *args))
        self.total_changes += changed
        return PgCursor([], changed)

    async def execute_fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        return (await self.execute(sql, params)).rows

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> PgCursor:
        rows = list(rows)
        if self.pending:
            await self.flush()
        self._sending(sql)
        if rows:
            await self.pg.executemany(translate(sql), rows)
        # asyncpg gives no count: every row is taken as changed (in both counters for a light
        # write, so a light executemany stays light; any other makes its group durable).
        self.total_changes += len(rows)
        return PgCursor([], len(rows))

    async def stream(self, sql: str, params: Iterable[Any] = (), batch: int = 1000) -> AsyncIterator[list[tuple]]:
        """The rows in batches from a server-side cursor (an export's memory stays flat)."""
        if self.pending:
            await self.flush()
        cursor = await self.pg.cursor(translate(sql), *tuple(params))
        while rows := await cursor.fetch(batch):
            yield [tuple(r) for r in rows]

    async def light_write(self, sql: str, params: Iterable[Any] = ()) -> PgCursor:
        cursor = await self.execute(sql, params)
        self.light += max(cursor.rowcount, 0)
        return cursor

    async def copy_rows(self, table: str, rows: Sequence[tuple], *, schema: str | None = None) -> None:
        """Bulk rows into a table through COPY (the import's stage)."""
        if self.pending:
            await self.flush()
        if schema != "pg_temp":
            self.note(f"INSERT INTO {table}", None)
        await self.pg.copy_records_to_table(table, records=rows, schema_name=schema)
        self.total_changes += len(rows)


class Database:
    """The process's connection to the server, its transactions and group commit."""

    def __init__(self, url: str, *, reconnect_wait: float = 15.0) -> None:
        self.url = url
        self.pg: asyncpg.Connection | None = None
        self.conn = PgConnection(self)
        self.lock = asyncio.Lock()
        self.reconnect_wait = reconnect_wait
        self._group: _Group | None = None
        # A finished member's savepoint not yet released (WriteTransaction.__aenter__ releases it).
        self._spare_savepoint = False
        self.epoch = 0  # as SQLite's: moves whenever the read cache may be out of date
        self._meta_epoch: int | None = None  # addad_meta.epoch as this process left it
        self.id_tables: frozenset[str] = frozenset()  # tables with an `id` key (lastrowid)
        self.durable_commits = 0
        self.light_commits = 0
        self.reconnects = 0
        self.conflicts = 0  # groups rolled back by a deadlock or a serialization failure
        self.exclusive_writes = False  # True: every write transaction alone across processes (the old lock)
        # This process in the change log (its own rows are not news to it).
        self.writer_id = secrets.token_hex(8)
        self._snapshot: str | None = None  # the snapshot of the last write BEGIN (the change log)
        self._logged = 0  # commits this process logged (every PRUNE_EVERY-th prunes the log)
        self.caches: list[ReadCache] = []  # told what other processes wrote (PgStore's)
        self.remote_keys = 0  # keys forgotten from the change log (the benchmark's figure)
        self.remote_flushes = 0  # times a cache was emptied whole for another process's writes

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True, reconnect_wait: float = 15.0) -> Database:
        db = cls(url, reconnect_wait=reconnect_wait)
        try:
            db.pg = await db._connect()
        except Exception as exc:
            if isinstance(exc, (*_LOST, asyncpg.PostgresError)):
                raise StoreUnavailable(f"database {masked(url)}: {_reason(exc)}") from exc
            raise
        try:
            from . import schema

            await schema.ensure_meta(db)
            if migrate:
                await schema.upgrade(db)
            await db._load_tables()
        except BaseException:
            await db.pg.close()
            raise
        return db

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            self.url,
            timeout=CONNECT_TIMEOUT,
            statement_cache_size=1024,
            server_settings={"application_name": "addad", "TimeZone": "UTC"},
        )

    async def _load_tables(self) -> None:
        rows = await self.pg_or_fail().fetch(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND column_name = 'id'"
        )
        self.id_tables = frozenset(r[0] for r in rows)

    def pg_or_fail(self) -> asyncpg.Connection:
        if self.pg is None:
            raise StoreUnavailable(f"database {masked(self.url)}: not connected")
        return self.pg

    async def _ready(self) -> asyncpg.Connection:
        """The connection, re-opened if it broke (retrying while the server restarts)."""
        pg = self.pg
        if pg is not None and not pg.is_closed():
            return pg
        self._lost()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_wait
        delay = 0.05
        while True:
            try:
                self.pg = await self._connect()
                self.reconnects += 1
                log.warning("reconnected to %s", masked(self.url))
                return self.pg
            except Exception as exc:
                if not isinstance(exc, (*_LOST, asyncpg.PostgresError)):
                    raise
                if loop.time() + delay > deadline:
                    raise StoreUnavailable(f"database {masked(self.url)}: {_reason(exc)}") from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _lost(self) -> None:
        """Forget a broken connection: the next transaction opens a new one."""
        if self.pg is not None:
            self.pg.terminate()
            self.pg = None
        self.epoch += 1
        self._meta_epoch = None
        self._snapshot = None

    async def close(self) -> None:
        async with self.lock:
            if self._group is not None:
                await self._commit_group()
            if self.pg is not None:
                await self.pg.close()
                self.pg = None

    async def schema_version(self) -> int:
        return int(await (await self._ready()).fetchval("SELECT version FROM addad_meta"))

    async def upgrade(self) -> list[str]:
        from . import schema

        async with self.lock:
            await self._ready()
            return await schema.upgrade(self)

    async def try_session_lock(self, space: int, key: str) -> object | None:
        """A session advisory lock on this connection if no other session holds it: the
        connection that holds it (for `holds_session_lock`, `session_unlock`), else None. Taken
        in whatever transaction is open (a session lock outlives its rollback), between members."""
        async with self.lock:
            pg = await self._ready()
            task = asyncio.ensure_future(pg.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", space, key))
            try:
                await _wait_uncancelled(task)
            except _LOST:
                self._lost()
                raise
            except asyncio.CancelledError:
                # Taken for a caller that is gone: let it go, or no other worker could ever take it.
                if not task.cancelled() and task.exception() is None and task.result():
                    await _wait_uncancelled(
                        asyncio.ensure_future(pg.fetchval("SELECT pg_advisory_unlock($1, hashtext($2))", space, key))
                    )
                raise
            return pg if task.result() else None

    def holds_session_lock(self, holder: object) -> bool:
        """Whether a session lock taken on connection `holder` is still held (it did not break)."""
        pg = self.pg
        return pg is not None and not pg.is_closed() and holder is pg

    async def session_unlock(self, space: int, key: str, holder: object) -> None:
        async with self.lock:
            if not self.holds_session_lock(holder):
                return  # went with its connection
            try:
                await self.pg_or_fail().fetchval("SELECT pg_advisory_unlock($1, hashtext($2))", space, key)
            except _LOST:
                self._lost()

    def transaction(self, *, light_ok: bool = False) -> WriteTransaction:
        return WriteTransaction(self, light_ok)

    def snapshot(self) -> ReadTransaction:
        return ReadTransaction(self)

    async def _begin_write(self) -> None:
        """BEGIN, take the writers' lock, see whether another process wrote since our last commit.
        A connection that turns out broken is re-opened once and the BEGIN tried again."""
        for attempt in (1, 2):
            pg = await self._ready()
            try:
                lock = "pg_advisory_xact_lock" if self.exclusive_writes else "pg_advisory_xact_lock_shared"
                await _control(pg, f"BEGIN; SELECT {lock}{WRITE_LOCK}")
                meta, snapshot, changes = await pg.fetchrow(_CHANGES, self._snapshot, self.writer_id)
            except _LOST:
                self._lost()
                if attempt == 2:
                    raise
                continue
            except BaseException:
                # A BEGIN that a cancelled caller waited for (the writers' lock) still began: end
                # it, or this connection would hold the lock that every other writer waits for.
                await self._rollback_quietly()
                raise
            self.conn.written = {}
            self.conn.wrote_unknown = False
            if meta != self._meta_epoch or self._snapshot is None or not self._forget(changes):
                self._meta_epoch = meta
                self.epoch += 1
                if self._snapshot is not None:
                    self.remote_flushes += 1
            self._snapshot = snapshot
            return

    def _forget(self, changes: list[str]) -> bool:
        """Make the caches forget what other processes' commits wrote; False if they had better
        start empty (too many, or a write whose keys cannot be told)."""
        if not changes:
            return True
        if len(changes) > CHANGES_MAX:
            return False
        entries = [json.loads(text) for text in changes]
        if any(not isinstance(entry, dict) for entry in entries):  # "*": a table that cannot be told
            return False
        for entry in entries:
            for table, keys in entry.items():
                for cache in self.caches:
                    if keys is None:
                        cache.wrote_table(table, None)
                    else:
                        for key in keys:
                            cache.wrote_table(table, tuple(key) if isinstance(key, list) else key)
                self.remote_keys += 1 if keys is None else len(keys)
        return True

    async def _commit_when_free(self, group: _Group) -> None:
        async with self.lock:
            if self._group is group:
                await self._commit_group()

    async def _commit_group(self) -> None:
        group, self._group = self._group, None
        if group is None:
            return
        sql = "COMMIT"
        # (written even where no row changed: a statement that could have is logged)
        changes = self.conn.changes()
        pruned = False
        if changes is not None:
            entry = _literal(changes)
            sql = f"INSERT INTO addad_changes (writer, changes) VALUES ('{self.writer_id}', {entry}); COMMIT"
            self._logged += 1
            if self._logged % PRUNE_EVERY == 0:
                sql, pruned = _PRUNE + sql, True
        if group.durable:
            self.durable_commits += 1
        else:
            self.light_commits += 1
            sql = "SET LOCAL synchronous_commit TO off; " + sql
        try:
            await _control(self.pg_or_fail(), sql)
        except BaseException as exc:
            if isinstance(exc, _CONFLICT):
                self.conflicts += 1
                exc = WriteConflict(f"write conflict with another process: {exc}")
            group.settle(exc if isinstance(exc, Exception) else StoreUnavailable("commit interrupted"))
            self.epoch += 1
            await self._rollback_quietly()
            if not isinstance(exc, Exception):
                raise
            return
        if pruned:
            self._meta_epoch = None  # (moved by this commit: the next BEGIN starts afresh)
        group.settle(None)

    async def _rollback_quietly(self) -> None:
        pg = self.pg
        if pg is None or pg.is_closed():
            self._lost()
            return
        try:
            if pg.is_in_transaction():
                await _control(pg, "ROLLBACK")
        except Exception:
            self._lost()


class WriteTransaction:
    __slots__ = ("changes", "db", "group", "light_ok", "savepoint")
    group: _Group
    changes: tuple[int, int]
    savepoint: bool

    def __init__(self, db: Database, light_ok: bool = False) -> None:
        self.db = db
        self.light_ok = light_ok

    async def __aenter__(self) -> PgConnection:
        db = self.db
        await db.lock.acquire()
        try:
            group = db._group
            if group is None:
                await db._begin_write()
                db._spare_savepoint = False
                group = db._group = _Group(db.conn.total_changes)
                self.savepoint = False  # alone in the group: a failure rolls the whole of it back
            else:
                # The previous member's savepoint is released here, with this one's start, not
                # at that member's end: one round trip per member instead of two.
                sql = "RELEASE SAVEPOINT member; SAVEPOINT member" if db._spare_savepoint else "SAVEPOINT member"
                try:
                    await _control(db.pg_or_fail(), sql)
                    db._spare_savepoint = False
                except Exception as exc:
                    db._group = None
                    group.settle(exc)
                    await db._rollback_quietly()
                    raise
                self.savepoint = True
        except BaseException:
            db.lock.release()
            raise
        self.group = group
        self.changes = (db.conn.total_changes, db.conn.light)
        return db.conn

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        db, group = self.db, self.group
        conn = db.conn
        failed: BaseException | None = None
        if exc_type is None and conn.pending:
            try:
                await conn.flush()
            except BaseException as at_end:  # the member failed at its end: undone as if in its body
                exc_type, exc = type(at_end), at_end
                failed = at_end
        conn.pending.clear()
        try:
            if exc_type is None:
                total, light = self.changes
                if not self.light_ok or conn.total_changes - total != conn.light - light:
                    group.durable = True
                if self.savepoint:
                    # Left for the next member's start (or the COMMIT) to release: a later member
                    # that fails rolls back to its own savepoint, the newest of that name.
                    db._spare_savepoint = True
            elif isinstance(exc, _CONFLICT):
                # The server chose this transaction to fail (a deadlock, a serialization failure):
                # every member goes, releasing every lock the group holds (a savepoint would keep
                # the earlier members' locks, and the other process would wait on them again).
                db.conflicts += 1
                conflict = WriteConflict(f"write conflict with another process: {exc}")
                self.savepoint = False
                await self._undo(conflict)
                raise conflict from exc
            else:
                # (only a connection that is gone: an OSError of the turn's own is not the server's)
                lost = isinstance(exc, _LOST) and (db.pg is None or db.pg.is_closed())
                await self._undo(ConnectionLost(f"connection lost: {exc}") if lost else exc)
                if lost:
                    raise ConnectionLost(f"database {masked(db.url)}: connection lost ({exc})") from exc
            if db._group is group and group.committer is None:
                group.committer = asyncio.ensure_future(db._commit_when_free(group))
        finally:
            db.lock.release()
        if failed is not None:
            raise failed
        if exc_type is None:
            await group.outcome()
        return False

    async def _undo(self, exc: BaseException | None) -> None:
        db, group = self.db, self.group
        db.epoch += 1
        if self.savepoint and db.pg is not None and not db.pg.is_closed():
            try:
                await _control(db.pg, "ROLLBACK TO SAVEPOINT member; RELEASE SAVEPOINT member")
                return
            except Exception:
                pass
        # The whole transaction goes: this member was alone in it, or the connection broke
        # (the group's earlier members lost their writes too, and are told).
        db._group = None
        group.settle(exc if isinstance(exc, Exception) else StoreUnavailable("transaction interrupted"))
        await db._rollback_quietly()


class ReadTransaction:
    """A snapshot of what is committed (REPEATABLE READ; not READ ONLY: the import stages its
    rows in a temporary table, as under SQLite)."""

    __slots__ = ("db",)

    def __init__(self, db: Database) -> None:
        self.db = db

    async def __aenter__(self) -> PgConnection:
        db = self.db
        await db.lock.acquire()
        try:
            if db._group is not None:
                await db._commit_group()  # a read sees only what is durable
            for attempt in (1, 2):
                pg = await db._ready()
                try:
                    await _control(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ")
                    break
                except _LOST:
                    db._lost()
                    if attempt == 2:
                        raise
                except BaseException:
                    await db._rollback_quietly()
                    raise
        except BaseException:
            db.lock.release()
            raise
        return db.conn

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        db = self.db
        try:
            pg = db.pg
            if pg is not None and not pg.is_closed() and pg.is_in_transaction():
                try:
                    await _control(pg, "COMMIT" if exc_type is None else "ROLLBACK")
                except _LOST:
                    db._lost()
                    if exc_type is None:
                        raise
            elif pg is not None and pg.is_closed():
                db._lost()
        finally:
            db.lock.release()
        return False


_PENDING = object()


class _Group:
    """The write transactions sharing one BEGIN … COMMIT (as storage/sqlite/db.py's)."""

    __slots__ = ("changes_at_begin", "committer", "durable", "result", "waiters")

    def __init__(self, changes_at_begin: int) -> None:
        self.changes_at_begin = changes_at_begin
        self.durable = False
        self.waiters: list[asyncio.Future] = []
        self.result: object = _PENDING
        self.committer: asyncio.Future | None = None

    async def outcome(self) -> None:
        if self.result is _PENDING:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            await waiter
        elif isinstance(self.result, BaseException):
            raise self.result

    def settle(self, exc: BaseException | None) -> None:
        if self.result is not _PENDING:
            return
        self.result = exc
        for waiter in self.waiters:
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)


POLL_LOCK = 3  # pg_try_advisory_lock(WRITE_LOCK[0], POLL_LOCK): the worker that polls Telegram


@contextlib.asynccontextmanager
async def sole_worker(url: str, key: int, on_wait: Callable[[], object]) -> AsyncIterator[None]:
    """Hold a session-level advisory lock for as long as the block runs, on a connection of its
    own; another process asking for it waits (polling every half second, `on_wait` called once)
    until the holder ends — or dies: the server releases the lock with its connection."""
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT, server_settings={"application_name": "addad-lock"})
    except Exception as exc:
        if isinstance(exc, (*_LOST, asyncpg.PostgresError)):
            raise StoreUnavailable(f"database {masked(url)}: {_reason(exc)}") from exc
        raise
    try:
        waited = False
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", WRITE_LOCK[0], key):
            if not waited:
                on_wait()
                waited = True
            await asyncio.sleep(0.5)
        yield
    finally:
        conn.terminate()  # the lock goes with the connection
