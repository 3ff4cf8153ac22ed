"""The migrations runner: numbered SQL files in storage/sqlite/migrations, applied in order."""

from __future__ import annotations

import sqlite3
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .db import Database


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every bundled migration, in order."""
    found = []
    for entry in resources.files("storage.sqlite.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    # 1..n with no gap: a database at version k has run every migration up to k, so a number
    # left free and filled later would never run on it.
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migrations are not numbered 1..n: {versions}")
    return found


def statements(sql: str) -> list[str]:
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


async def upgrade(db: Database) -> list[str]:
    """Apply the migrations the file has not seen, each in a write transaction; returns their names."""
    applied = []
    for version, name, sql in migrations():
        async with db.transaction() as conn:
            # Re-read inside the write lock: another process may have just migrated.
            current = int(next(iter(await conn.execute_fetchall("PRAGMA user_version")))[0])
            if version <= current:
                continue
            for statement in statements(sql):
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {version}")
            applied.append(name)
    return applied
