"""The PostgreSQL migrations runner: storage/postgres/migrations/NNNN_*.sql (ported from the
SQLite ones by port.py, same numbers and names), applied in order; the version and the read
cache's epoch (db.py) are kept in `addad_meta`, PostgreSQL having no `PRAGMA user_version`."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .db import Database


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every PostgreSQL migration, in order; refuses to run while a
    SQLite migration has no port (the repositories would expect what it creates)."""
    from ..sqlite.schema import migrations as sqlite_migrations

    found = []
    for entry in resources.files("storage.postgres.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    found.sort()
    missing = sorted({name for _, name, _ in sqlite_migrations()} - {name for _, name, _ in found})
    if missing:
        raise RuntimeError(
            f"storage/postgres/migrations lacks {', '.join(missing)}: run `python -m storage.postgres.port`"
        )
    return found


async def ensure_meta(db: Database) -> None:
    from .db import MIGRATE_LOCK

    pg = db.pg_or_fail()
    async with pg.transaction():
        await pg.execute(f"SELECT pg_advisory_xact_lock{MIGRATE_LOCK}")
        await pg.execute(
            "CREATE TABLE IF NOT EXISTS addad_meta (version BIGINT NOT NULL, epoch BIGINT NOT NULL, one BOOLEAN "
            "PRIMARY KEY DEFAULT true CHECK (one))"
        )
        await pg.execute("INSERT INTO addad_meta (version, epoch) VALUES (0, 0) ON CONFLICT DO NOTHING")
        # The read cache's change log (db.py); Addad's own, as addad_meta. (It replaces the
        # per-process counters of `addad_epochs`: a process of the version before, still running,
        # fails its commits on the missing table rather than keep a cache this one cannot follow.)
        await pg.execute(
            "CREATE TABLE IF NOT EXISTS addad_changes (xid xid8 NOT NULL DEFAULT pg_current_xact_id(), "
            "writer TEXT NOT NULL, changes TEXT NOT NULL)"
        )
        await pg.execute("CREATE INDEX IF NOT EXISTS addad_changes_xid ON addad_changes (xid)")
        await pg.execute("DROP TABLE IF EXISTS addad_epochs")


async def upgrade(db: Database) -> list[str]:
    """Apply the migrations the database has not seen, each in a transaction under the
    migrations' advisory lock (two processes starting at once); returns their names."""
    from .db import MIGRATE_LOCK, WRITE_LOCK

    pg = db.pg_or_fail()
    applied = []
    for version, name, sql in migrations():
        async with pg.transaction():
            await pg.execute(f"SELECT pg_advisory_xact_lock{MIGRATE_LOCK}; SELECT pg_advisory_xact_lock{WRITE_LOCK}")
            current = int(await pg.fetchval("SELECT version FROM addad_meta"))
            if version <= current:
                continue
            await pg.execute(sql)
            await pg.execute("UPDATE addad_meta SET version = $1, epoch = epoch + 1", version)
            applied.append(name)
    if applied:
        await db._load_tables()
        db.epoch += 1
    return applied
