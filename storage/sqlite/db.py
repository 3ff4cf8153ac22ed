"""One SQLite connection per process, and the rules for using it.

- WAL journal so readers in other processes (the CLI, the back office) never block the bot.
- Durable where a promise needs it (docs/delivery.md "Power loss"): a reading, request or link
  the customer was told is recorded survives a power cut, not only a process crash. The
  connection runs synchronous=NORMAL in WAL mode (consistent after a power cut, may lose the
  last commits) and a group that wrote anything but a *light* write (the session, the message
  key and its replies, the inbox's answered mark, a message kept for labelling: what a replayed
  turn writes again) has its WAL fsynced before any member returns, which is what FULL does.
  A turn that records nothing (a balance, a menu, a question) waits for no disk. What the
  transaction wrote is counted, not declared: a member whose changes (total_changes) are not
  all light writes makes its group durable, and so does any write outside the repositories.
- busy_timeout so another process's write makes us wait, not fail.
- Every write transaction starts with BEGIN IMMEDIATE: a DEFERRED transaction that upgrades
  to a write skips busy_timeout and fails at once with SQLITE_BUSY.
- One asyncio.Lock serialises transactions on the shared connection: without it two
  coroutines' statements would interleave inside one transaction.
- Statements run on the event loop's thread; only what can wait goes to a thread: the WAL's
  fsync, a COMMIT that may checkpoint (no background checkpointer: aiosqlite's thread) and a
  BEGIN IMMEDIATE that finds another process writing. A turn's
  statements are indexed look-ups in the page cache (a few µs each), while a hop to a
  thread (aiosqlite's model) cost ~90 µs of CPU each and a turn made ~11 of them.
  Inside BEGIN IMMEDIATE our statements never wait for a lock; a read snapshot (BEGIN)
  can only wait during another process's WAL recovery, which is rare and short.
- Group commit: write transactions are SAVEPOINTs inside a shared BEGIN IMMEDIATE, which
  commits as soon as no writer that was already waiting is left. Each caller returns only
  once its writes are durable; a failing one rolls back to its savepoint alone. In a burst,
  one COMMIT serves dozens of turns: 1,055 → 648 µs of CPU per turn (bench/README.md).
- A long-running bot checkpoints the WAL in the background (`checkpoint_every`), on a
  connection and thread of its own: otherwise every ~200th turn's COMMIT copies the WAL into
  the database and fsyncs it, and that customer waits several milliseconds more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from ..protocols import StoreUnavailable
from . import schema

BUSY_TIMEOUT_MS = 10_000
log = logging.getLogger(__name__)


# aiosqlite keeps the sqlite3 connection it wraps in a private attribute and has no public
# accessor. This is the one place Addad reads it (statements run on the event loop's thread:
# see the module docstring); tests/test_sqlite_connection.py fails if a new aiosqlite moves it
# or starts using it differently.
AIOSQLITE_TESTED = ("0.20", "0.21", "0.22")  # the releases pyproject.toml allows, checked


def raw_connection(aio: aiosqlite.Connection) -> sqlite3.Connection:
    """The sqlite3 connection `aio` runs its statements on."""
    raw = aio._conn
    if not isinstance(raw, sqlite3.Connection):
        raise RuntimeError(f"aiosqlite {aiosqlite.__version__} no longer wraps a sqlite3.Connection in _conn")
    return raw


class Connection:
    """The async face of one sqlite3 connection (the subset `storage` uses).

    Statements run at once on the event loop's thread, on the sqlite3 connection that
    aiosqlite wraps; `in_thread` sends a call to aiosqlite's thread, for the calls that may
    block (fsync, lock waits). The Database's lock keeps the two threads from using the
    connection at the same time.
    """

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.aio = conn
        self.raw = raw_connection(conn)
        # Rows changed by light writes (Database docstring); compared with total_changes.
        self.light = 0

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self.raw.execute(sql, tuple(params))

    async def execute_fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        return self.raw.execute(sql, tuple(params)).fetchall()

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        return self.raw.executemany(sql, rows)

    async def stream(self, sql: str, params: Iterable[Any] = (), batch: int = 1000) -> AsyncIterator[list[tuple]]:
        """The rows in batches, as the cursor steps through them (an export's memory stays flat)."""
        cursor = self.raw.execute(sql, tuple(params))
        try:
            while rows := cursor.fetchmany(batch):
                yield rows
        finally:
            cursor.close()

    async def in_thread(self, sql: str) -> None:
        """Run one statement on aiosqlite's thread."""
        await self.wait_uncancelled(asyncio.ensure_future(self.aio.execute(sql)))

    @staticmethod
    async def wait_uncancelled(task: asyncio.Future) -> None:
        """Wait for a call on aiosqlite's thread. If the caller is cancelled meanwhile, still
        wait for it to finish: the lock must not be released while that thread uses the
        connection."""
        cancelled = False
        while True:
            try:
                await asyncio.shield(task)
                break
            except asyncio.CancelledError:
                if task.done():
                    if task.cancelled():
                        raise
                    task.result()
                    break
                cancelled = True
        if cancelled:
            raise asyncio.CancelledError

    async def begin_immediate(self) -> None:
        """Take the write lock; wait for it (busy_timeout) only off the event loop."""
        raw = self.raw
        raw.execute("PRAGMA busy_timeout = 0")
        try:
            raw.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
        finally:
            raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await self.in_thread("BEGIN IMMEDIATE")

    async def light_write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """A write a replayed turn makes again (the session, the message key…): not one that
        makes its transaction wait for the disk."""
        cursor = self.raw.execute(sql, tuple(params))
        self.light += cursor.rowcount
        return cursor

    async def close(self) -> None:
        await self.aio.close()


class Checkpointer:
    """PASSIVE checkpoints every few tenths of a second on a second connection. A passive
    checkpoint never blocks the bot's writes or reads; the WAL restarts from its beginning
    once everything in it is in the database, so it stays small."""

    def __init__(self, conn: aiosqlite.Connection, every: float) -> None:
        self.conn = conn
        self.every = every
        self.task = asyncio.create_task(self._run(), name="wal-checkpoint")

    @classmethod
    async def start(cls, path: str, every: float) -> Checkpointer:
        conn = await aiosqlite.connect(path, isolation_level=None)
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return cls(conn, every)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # the next round tries again
                log.warning("WAL checkpoint failed: %s", exc)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.conn.close()


# What the file, its folder or its disk refuse at open (SQLite's primary result codes), and what
# to check: one line for whoever started the command, not a traceback.
_UNAVAILABLE = {
    3: "check the permissions of the file and of its folder",  # PERM
    8: "the file or its folder is read-only: the bot writes the database and creates its -wal and -shm files"
    " beside it",  # READONLY
    10: "the disk refused a read or write (full, removed, or its -wal/-shm file deleted while in use)",  # IOERR
    11: "the file is damaged: restore a backup",  # CORRUPT
    13: "the disk is full",  # FULL
    14: "the file or its -wal/-shm file cannot be opened: check the path and that its folder is writable",  # CANTOPEN
    26: "the file is not an Addad database",  # NOTADB
}


def _primary(exc: sqlite3.DatabaseError) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


async def _check_writable(aio: aiosqlite.Connection) -> None:
    """Fail now, not at the first turn, if the file cannot be written (a read-only file as a
    non-root user, a read-only mount): rewrite the schema version as it is, and roll back."""
    await aio.execute("BEGIN IMMEDIATE")
    try:
        rows = await aio.execute_fetchall("PRAGMA user_version")
        await aio.execute(f"PRAGMA user_version = {int(next(iter(rows))[0])}")
    finally:
        if aio.in_transaction:
            await aio.execute("ROLLBACK")


def _unavailable(path: str, exc: sqlite3.DatabaseError) -> StoreUnavailable:
    hint = _UNAVAILABLE.get(_primary(exc) or -1)
    return StoreUnavailable(f"database {path}: {exc}" + (f" ({hint})" if hint else ""))


class Database:
    def __init__(self, conn: Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self.lock = asyncio.Lock()
        self._group: _Group | None = None  # the write transactions awaiting one COMMIT
        self.checkpointer: Checkpointer | None = None
        # Moves whenever what this connection saw may be out of date (cache.py): a
        # commit by another connection, a rolled-back write, a failed COMMIT.
        self.epoch = 0
        self._data_version: int | None = None
        # The WAL file fsynced after a durable group's COMMIT; None: SQLite syncs (FULL) itself.
        self.wal_path: str | None = None
        # Groups committed so far: with the WAL fsynced (durable) or not (light).
        self.durable_commits = 0
        self.light_commits = 0

    def _check_others(self) -> None:
        """Inside a new BEGIN IMMEDIATE: did another connection commit since our last look?"""
        version = self.conn.raw.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._data_version = version
            self.epoch += 1

    @classmethod
    async def open(cls, path: str | Path, *, migrate: bool = True, checkpoint_every: float | None = None) -> Database:
        """`checkpoint_every` (seconds): checkpoint in the background instead of in the COMMIT
        that crosses SQLite's 1,000-page mark; for the long-running bot, not for one-off commands."""
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False: both
        # the loop's thread and aiosqlite's use it, never at once (the lock).
        try:
            aio = await aiosqlite.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            raise _unavailable(path, exc) from exc
        conn = Connection(aio)
        try:
            await aio.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = await aio.execute_fetchall("PRAGMA journal_mode = WAL")
            wal = path != ":memory:" and str(next(iter(mode))[0]).lower() == "wal"
            # NORMAL only where the WAL is fsynced by hand after every durable group (see above).
            await aio.execute(f"PRAGMA synchronous = {'NORMAL' if wal else 'FULL'}")
            await aio.execute("PRAGMA foreign_keys = ON")
            if path != ":memory:":
                await _check_writable(aio)
            db = cls(conn, path)
            db.wal_path = path + "-wal" if wal else None
            if migrate:
                await db.upgrade()
            if checkpoint_every and path != ":memory:":
                await aio.execute("PRAGMA wal_autocheckpoint = 0")
                db.checkpointer = await Checkpointer.start(path, checkpoint_every)
            return db
        except sqlite3.DatabaseError as exc:
            await conn.close()
            if _primary(exc) not in _UNAVAILABLE:
                raise
            raise _unavailable(path, exc) from exc
        except BaseException:
            await conn.close()
            raise

    async def close(self) -> None:
        if self.checkpointer is not None:
            await self.checkpointer.stop()
        async with self.lock:
            if self._group is not None:
                await self._commit_group()
            await self.conn.close()  # the last connection to close checkpoints what is left

    async def schema_version(self) -> int:
        rows = await self.conn.execute_fetchall("PRAGMA user_version")
        return int(next(iter(rows))[0])

    async def upgrade(self) -> list[str]:
        """Apply the migrations this file has not seen; returns their names."""
        return await schema.upgrade(self)

    def snapshot(self) -> ReadTransaction:
        """`async with db.snapshot() as conn:` a read snapshot of what is committed."""
        return ReadTransaction(self)

    def transaction(self, *, light_ok: bool = False) -> WriteTransaction:
        """`async with db.transaction() as conn:` a write transaction (the caller's statements
        commit together or not at all; it returns once they are durable, and any exception
        undoes them).

        Writes are committed in groups: a transaction runs as a SAVEPOINT inside the group's
        BEGIN IMMEDIATE, and the group commits once no writer that was already waiting is left.
        Alone, a turn pays what it did before; in a burst, one COMMIT (thread hop, WAL write,
        fsync) serves every turn that queued behind it, as in a database server's group commit.
        (Context managers written as classes: a turn opens one, and the generator-based kind
        costs several times more.)

        `light_ok`: the transaction may skip the fsync if all it changed are light writes
        (Connection.light_write); the repositories' transactions are. Otherwise it is durable.
        """
        return WriteTransaction(self, light_ok)

    async def _commit_when_free(self, group: _Group) -> None:
        # Queued on the lock behind the writers already waiting: they join the group first.
        async with self.lock:
            if self._group is group:
                await self._commit_group()

    async def _commit_group(self) -> None:
        """COMMIT the open group (the lock is held) and tell its members how it went."""
        group, self._group = self._group, None
        if group is None:  # callers check; this keeps the type narrow
            return
        wal = self.wal_path
        if group.durable:
            self.durable_commits += 1
        else:
            self.light_commits += 1
        if wal is not None and self.checkpointer is not None:
            # No checkpoint (the checkpointer's), no sync (NORMAL): the COMMIT only appends this
            # group's pages to the WAL in the page cache. No hop to a thread for that; a
            # durable group's fsync alone goes to one (a hop waits for the scheduler on a
            # busy machine, and every writer waits behind the lock meanwhile).
            try:
                self.conn.raw.execute("COMMIT")
            except sqlite3.Error as exc:
                group.settle(exc)
                self.epoch += 1
                if self.conn.raw.in_transaction:
                    self.conn.raw.execute("ROLLBACK")
                return
            if not group.durable:
                group.settle(None)
                return
        task: asyncio.Future
        if wal is not None and self.checkpointer is not None:  # committed above: the fsync
            task = asyncio.ensure_future(asyncio.get_running_loop().run_in_executor(None, sync_file, wal))
        elif wal is None or not group.durable:
            task = asyncio.ensure_future(self.conn.aio.execute("COMMIT"))
        else:  # COMMIT, then the fsync, each on a thread, before any member is told
            task = asyncio.ensure_future(self._commit_durably(wal))
        task.add_done_callback(lambda t: group.settle(t.exception() if not t.cancelled() else asyncio.CancelledError()))
        try:
            await self.conn.wait_uncancelled(task)
        except BaseException as exc:
            self.epoch += 1
            if self.conn.raw.in_transaction:  # a failed COMMIT leaves it open
                self.conn.raw.execute("ROLLBACK")
            if not isinstance(exc, Exception):
                raise
            # The members were told (settle); whoever asked for this commit goes on.

    async def _commit_durably(self, wal: str) -> None:
        """The lock held: COMMIT, then fsync the WAL (synchronous=FULL's sync)."""
        await self.conn.aio.execute("COMMIT")
        await asyncio.get_running_loop().run_in_executor(None, sync_file, wal)


def sync_file(path: str) -> None:
    """fsync a file (the WAL: every frame written so far, this commit's and any earlier light one's)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)  # what SQLite itself calls on Linux for FULL
    finally:
        os.close(fd)


class WriteTransaction:
    __slots__ = ("changes", "db", "group", "light_ok")
    group: _Group  # set by __aenter__
    changes: tuple[int, int]  # total_changes and light rows at the start

    def __init__(self, db: Database, light_ok: bool = False) -> None:
        self.db = db
        self.light_ok = light_ok

    async def __aenter__(self) -> Connection:
        db = self.db
        raw = db.conn.raw
        await db.lock.acquire()
        try:
            group = db._group
            if group is None:
                try:
                    await db.conn.begin_immediate()
                    db._check_others()
                except BaseException:
                    # A BEGIN that a cancelled caller waited for still began: end it.
                    if raw.in_transaction:
                        raw.execute("ROLLBACK")
                    raise
                group = db._group = _Group()
            raw.execute("SAVEPOINT member")
        except BaseException:
            db.lock.release()
            raise
        self.group = group
        self.changes = (raw.total_changes, db.conn.light)
        return db.conn

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        db, group = self.db, self.group
        raw = db.conn.raw
        try:
            if exc_type is None:
                total, light = self.changes
                if not self.light_ok or raw.total_changes - total != db.conn.light - light:
                    group.durable = True  # it changed something a replay would not write again
                try:
                    raw.execute("RELEASE member")
                except BaseException as failed:
                    self._undo(failed)
                    raise
            else:
                self._undo(exc)
            if db._group is group and group.committer is None:
                # The first member to finish asks for the commit; the others' writes, or an
                # empty BEGIN left by a failed member, must end too.
                group.committer = asyncio.ensure_future(db._commit_when_free(group))
        finally:
            db.lock.release()
        if exc_type is None:
            await group.outcome()
        return False

    def _undo(self, exc: BaseException) -> None:
        db, group, raw = self.db, self.group, self.db.conn.raw
        db.epoch += 1
        if raw.in_transaction:
            raw.execute("ROLLBACK TO member")
            raw.execute("RELEASE member")
        else:
            # SQLite ended the whole transaction (some I/O or disk-full errors do): the
            # group's earlier members lost their writes too.
            db._group = None
            group.settle(exc)


class ReadTransaction:
    __slots__ = ("db",)

    def __init__(self, db: Database) -> None:
        self.db = db

    async def __aenter__(self) -> Connection:
        db = self.db
        await db.lock.acquire()
        try:
            if db._group is not None:
                await db._commit_group()  # a read sees only what is durable
            db.conn.raw.execute("BEGIN")
        except BaseException:
            db.lock.release()
            raise
        return db.conn

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        raw = self.db.conn.raw
        try:
            if raw.in_transaction:
                raw.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            self.db.lock.release()
        return False


_PENDING = object()


class _Group:
    """The write transactions sharing one BEGIN … COMMIT. Each member waits on a future of its
    own (a cancelled member cancels only that one; cheaper than asyncio.shield on a shared one)."""

    __slots__ = ("committer", "durable", "result", "waiters")

    def __init__(self) -> None:
        self.durable = False  # a member wrote more than light writes: fsync the WAL at COMMIT
        self.waiters: list[asyncio.Future] = []
        self.result: object = _PENDING  # None once committed, or the exception
        self.committer: asyncio.Future | None = None

    async def outcome(self) -> None:
        """Wait until the group's COMMIT is done; raise what made it fail."""
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
            if not waiter.done():  # not cancelled meanwhile
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)
