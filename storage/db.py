"""One aiosqlite connection per process, and the rules for using it.

- WAL journal so readers in other processes (the CLI, the back office) never block the bot.
- synchronous=FULL: a reading the customer was told is recorded survives a power cut, not
  only a process crash (research measured ~3,200 commits/s with it here: far above need).
- busy_timeout so another process's write makes us wait, not fail.
- Every write transaction starts with BEGIN IMMEDIATE: a DEFERRED transaction that upgrades
  to a write skips busy_timeout and fails at once with SQLITE_BUSY.
- One asyncio.Lock serialises transactions on the shared connection: without it two
  coroutines' statements would interleave inside one transaction.
"""
from __future__ import annotations

import asyncio
import sqlite3
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import AsyncIterator

import aiosqlite

BUSY_TIMEOUT_MS = 10_000


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every bundled migration, in order."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations are not numbered 1..n: {versions}")
    return found


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (executescript would commit behind our back)."""
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip() and not all(l.strip().startswith("--") for l in buf.strip().splitlines()):
        raise RuntimeError(f"incomplete SQL statement at the end of a migration: {buf[:80]!r}")
    return out


class Database:
    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self.lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path, *, migrate: bool = True) -> "Database":
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = FULL")
            await conn.execute("PRAGMA foreign_keys = ON")
            db = cls(conn, path)
            if migrate:
                await db.upgrade()
            return db
        except BaseException:
            await conn.close()
            raise

    async def close(self) -> None:
        async with self.lock:
            await self.conn.close()

    async def schema_version(self) -> int:
        rows = await self.conn.execute_fetchall("PRAGMA user_version")
        return int(list(rows)[0][0])

    async def upgrade(self) -> list[str]:
        """Apply the migrations this file has not seen; returns their names."""
        applied = []
        async with self.lock:
            for version, name, sql in migrations():
                await self.conn.execute("BEGIN IMMEDIATE")
                try:
                    # Re-read inside the write lock: another process may have just migrated.
                    current = int(list(await self.conn.execute_fetchall("PRAGMA user_version"))[0][0])
                    if version <= current:
                        await self.conn.execute("ROLLBACK")
                        continue
                    for statement in _statements(sql):
                        await self.conn.execute(statement)
                    await self.conn.execute(f"PRAGMA user_version = {version}")
                    await self.conn.execute("COMMIT")
                    applied.append(name)
                except BaseException:
                    await self.conn.execute("ROLLBACK")
                    raise
        return applied

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE (or a read snapshot) … COMMIT, rolled back on any exception."""
        async with self.lock:
            await self.conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self.conn
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            else:
                await self.conn.execute("COMMIT")
