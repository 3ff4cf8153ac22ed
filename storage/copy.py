"""`addad db copy FROM TO`: every row of one store into another, empty one — SQLite to PostgreSQL
(moving a deployment, docs/deploy.md) and back, or between two of a kind.

Streamed: each table is read in batches from one snapshot of FROM and written in one transaction
into TO (COPY on PostgreSQL, executemany on SQLite), so memory stays flat whatever the size,
and a copy that fails writes nothing. Tables go in the order the SQLite migrations create them
(a table's references are copied before it); a column referring to its own table (a reading's
`replaced_by`) is filled in a second pass. Both stores must be at the same schema version (FROM
is not migrated: `addad db upgrade` it first). PostgreSQL's identity sequences are moved past the
copied ids; the inbox's arrival order (rowid) is kept by copying in that order.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from .protocols import Store

BATCH = 5000
_DDL = re.compile(
    r"CREATE\s+TABLE\s+(?P<create>\w+)\s*\((?P<body>.*?)\n\);"
    r"|DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?P<drop>\w+)"
    r"|ALTER\s+TABLE\s+(?P<old>\w+)\s+RENAME\s+TO\s+(?P<new>\w+)",
    re.I | re.S,
)


class CopyRefused(Exception):
    """The copy cannot start (a target that holds data, schemas at different versions)."""


def table_order() -> list[tuple[str, list[str]]]:
    """(table, columns referring to the table itself), in the order the migrations create them."""
    from .sqlite.schema import migrations

    out: list[tuple[str, list[str]]] = []
    for _, _, sql in migrations():
        # A table rebuilt by a migration (created as NAME_vN, the old one dropped, the new one
        # renamed) ends where its copy was created, under its final name.
        for m in _DDL.finditer(sql):
            if m.group("create"):
                name = m.group("create")
                own = re.findall(rf"^\s*(\w+)\s+\w+[^\n,]*\bREFERENCES\s+{name}\b", m.group("body"), re.I | re.M)
                out.append((name, own))
            elif m.group("drop"):
                out = [(t, own) for t, own in out if t != m.group("drop")]
            else:
                old, new = m.group("old"), m.group("new")
                out = [(new if t == old else t, own) for t, own in out]
    return out


@dataclass
class CopyReport:
    rows: dict[str, int] = field(default_factory=dict)


class _Side:
    """One store's raw connection, as the copy uses it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db: Any = getattr(store, "db", None)
        self.pg = type(store).__name__ == "PgStore"

    async def columns(self, table: str) -> list[str]:
        if self.pg:
            rows = await self.db.pg.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = $1 AND is_generated = 'NEVER' AND identity_generation IS DISTINCT FROM 'ALWAYS' "
                "ORDER BY ordinal_position",
                table,
            )
            return [r[0] for r in rows]
        return [r[1] for r in self.db.conn.raw.execute(f"PRAGMA table_info({table})")]

    async def count(self, table: str) -> int:
        if self.pg:
            return int(await self.db.pg.fetchval(f"SELECT count(*) FROM {table}"))
        return int(self.db.conn.raw.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    async def begin_read(self) -> None:
        if self.pg:
            await self.db.pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        else:
            self.db.conn.raw.execute("BEGIN")
            self.db.conn.raw.execute("SELECT 1 FROM sqlite_master LIMIT 1")  # the snapshot starts here

    async def rows(self, table: str, cols: list[str]) -> AsyncIterator[list[tuple]]:
        sql = f"SELECT {', '.join(cols)} FROM {table} ORDER BY rowid"
        if self.pg:
            cursor = await self.db.pg.cursor(sql)
            while batch := await cursor.fetch(BATCH):
                yield [tuple(r) for r in batch]
            return
        cursor = self.db.conn.raw.execute(sql)
        try:
            while batch := cursor.fetchmany(BATCH):
                yield batch
        finally:
            cursor.close()

    async def begin_write(self) -> None:
        if self.pg:
            await self.db.pg.execute("BEGIN")
        else:
            self.db.conn.raw.execute("BEGIN IMMEDIATE")

    async def write(self, table: str, cols: list[str], rows: list[tuple]) -> None:
        if self.pg:
            await self.db.pg.copy_records_to_table(table, records=rows, columns=cols)
        else:
            marks = ",".join("?" * len(cols))
            self.db.conn.raw.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows)

    async def fill(self, table: str, col: str, pairs: list[tuple]) -> None:
        """The second pass: `col` of the rows whose id is given."""
        if self.pg:
            await self.db.pg.executemany(f"UPDATE {table} SET {col} = $1 WHERE id = $2", pairs)
        else:
            self.db.conn.raw.executemany(f"UPDATE {table} SET {col} = ? WHERE id = ?", pairs)

    async def finish_write(self, tables: list[str]) -> None:
        if self.pg:
            for table in tables:
                if "id" in await self.columns(table):
                    await self.db.pg.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) "
                        f"FROM {table}"
                    )
            await self.db.pg.execute("UPDATE addad_meta SET epoch = epoch + 1; COMMIT")
        else:
            self.db.conn.raw.execute("COMMIT")
            self.db.epoch += 1

    async def abort(self) -> None:
        if self.pg:
            if self.db.pg is not None and self.db.pg.is_in_transaction():
                await self.db.pg.execute("ROLLBACK")
        elif self.db.conn.raw.in_transaction:
            self.db.conn.raw.execute("ROLLBACK")


async def copy_store(source: Store, target: Store, *, progress: Callable[[str, int], None] | None = None) -> CopyReport:
    """Copy every row of `source` into `target` (empty, same schema version)."""
    have, want = await source.schema_version(), await target.schema_version()
    if have != want:
        raise CopyRefused(f"the source is at schema version {have} and the target at {want}: `addad db upgrade` both")
    src, dst = _Side(source), _Side(target)
    order = table_order()
    for table, _ in order:
        if n := await dst.count(table):
            raise CopyRefused(f"the target is not empty ({table} has {n} rows): copy into a new, empty database")
    report = CopyReport()
    async with source.db.lock, target.db.lock:  # type: ignore[attr-defined]
        await src.begin_read()
        await dst.begin_write()
        try:
            for table, own in order:
                cols = [c for c in await dst.columns(table) if c in set(await src.columns(table))]
                written = [c for c in cols if c not in own]
                keep = [cols.index(c) for c in written]
                # (value, id) of the self-references: as many as replaced readings, kept for the second pass
                later: dict[str, list[tuple]] = {c: [] for c in own}
                count = 0
                async for batch in src.rows(table, cols):
                    for col in own:
                        at, key = cols.index(col), cols.index("id")
                        later[col].extend((row[at], row[key]) for row in batch if row[at] is not None)
                    if own:
                        batch = [tuple(row[i] for i in keep) for row in batch]
                    await dst.write(table, written, batch)
                    count += len(batch)
                    if progress:
                        progress(table, count)
                for col, pairs in later.items():
                    if pairs:
                        await dst.fill(table, col, pairs)
                report.rows[table] = count
            await dst.finish_write([t for t, _ in order])
        except BaseException:
            await dst.abort()
            raise
        finally:
            await src.abort()
    return report
