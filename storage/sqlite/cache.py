"""What write transactions read, kept from one transaction to the next.

A turn reads the same few rows its chat's previous turn read or wrote: the session, the
linked contracts, messages held for the chat, the readings and bills of its contract. Each
SELECT costs a statement plus building records; this keeps the records, so a turn inside a
journey reads almost nothing.

Correctness rests on three rules:
- Only write transactions use it. They hold SQLite's write lock (BEGIN IMMEDIATE), so what
  they see is the newest committed state plus the open group's own writes.
- Every read that goes through it names a tag, `(kind, key)` (`("readings", "1000001")`), of a
  kind declared in `CACHED` with the tables it reads. What a write forgets follows from its
  statement: the table it writes (`INSERT INTO t`, `UPDATE t`, `DELETE FROM t`) names the kinds
  that depend on that table, and the write's `key` (if it gives one, and the table shares the
  kind's key) narrows it to one key; else every key of those kinds. A statement whose table
  cannot be told (a PRAGMA, a CTE) forgets everything. No write names its tags by hand, so
  none can forget to; `ReadCache.verify` (on in the test suite) re-reads every cache hit and
  fails on a stale one.
- Anything that may leave it out of step with the file bumps the Database's `epoch`, and the
  next transaction starts from an empty cache: another process's commit (`PRAGMA data_version`,
  checked at every BEGIN IMMEDIATE), a rolled-back transaction, a failed COMMIT. (PostgreSQL's
  backend tells another process's commits key by key instead: `wrote_table`, fed by its change
  log, storage/postgres/db.py.)
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

Tag = tuple[str, Hashable]
EVERYTHING = None  # `invalidate(EVERYTHING)`: forget every kind

# Per cached kind, the tables its reads depend on, and whether a write to that table names the
# kind's key (a write to `contracts` names a contract, while links are kept per chat: it forgets
# every chat's links). A read tagged with a kind not listed here is refused.
CACHED: dict[str, dict[str, bool]] = {
    "readings": {"readings": True},  # key: the contract
    "bills": {"bills": True},  # key: the contract
    "links": {"chat_links": True, "contracts": False},  # key: (channel, user_id)
    "session": {"sessions": True},  # key: (channel, user_id)
    "outbox": {"outbox": True},  # key: (channel, user_id)
    # The chat's open handoff, read at every turn (is an agent on it?); handoffs change rarely,
    # and a write to them forgets every chat's.
    "handoff": {"handoffs": False},  # key: (channel, user_id)
    # A contract's requests (and their instalment lines), read at every balance; written seldom,
    # and a write to either table forgets every contract's.
    "requests": {"requests": False, "instalment_lines": False},  # key: the contract
}

_WRITTEN = re.compile(
    r"\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+(\w+)", re.I
)


def written_table(sql: str) -> str | None:
    """The table a write statement changes, or None if it cannot be told from its start."""
    match = _WRITTEN.match(sql)
    return match.group(1).lower() if match else None


_UNSEEN = object()


class StaleRead(AssertionError):
    """A cached read no longer matches the database: some write did not forget it."""


class ReadCache:
    """Per kind, an LRU of keys; per key, the results of the queries tagged with it."""

    # Re-run the query of every cache hit and raise StaleRead if the file says otherwise (the
    # test suite turns it on: every test then checks that its writes forgot what they changed).
    verify = False

    def __init__(
        self, max_keys: int = 2048, max_records: int = 16384, depends: Mapping[str, Mapping[str, bool]] = CACHED
    ) -> None:
        self.depends = depends
        # Per write statement, the tags it forgets given its key: (kind, True if keyed).
        self._forgets: dict[str, Any] = {}
        self._table_forgets: dict[str, tuple[tuple[str, bool], ...]] = {}  # the same, by table
        self.max_keys = max_keys  # per kind: 2,048 contracts' 24 readings ≈ 25 MB at most
        self.epoch: int | None = None
        self._kinds: dict[str, OrderedDict[Hashable, dict[Any, list]]] = {}
        # Records by the row they were built from. A reading turn reads its contract's history
        # again after the previous turn added to it; all but the new row are built already.
        self.max_records = max_records
        self._records: dict[tuple[Callable, tuple], Any] = {}

    def records(self, convert: Callable[[tuple], Any], rows: list[tuple]) -> list:
        """`convert` (a pure function of the row) applied to each row, reusing earlier results."""
        memo = self._records
        out = []
        for row in rows:
            key = (convert, row)
            record = memo.get(key)
            if record is None:
                if len(memo) >= self.max_records:
                    memo.clear()
                record = memo[key] = convert(row)
            out.append(record)
        return out

    def sync(self, epoch: int) -> None:
        """Called as a write transaction starts: forget everything if the epoch moved."""
        if epoch != self.epoch:
            self._kinds.clear()
            self.epoch = epoch

    def get(self, tag: Tag, query: Any) -> list | None:
        keys = self._kinds.get(tag[0])
        if keys is None:
            return None
        results = keys.get(tag[1])
        if results is None:
            return None
        keys.move_to_end(tag[1])
        return results.get(query)

    def put(self, tag: Tag, query: Any, rows: list) -> None:
        keys = self._kinds.get(tag[0])
        if keys is None:
            if tag[0] not in self.depends:
                raise KeyError(f"cached kind {tag[0]!r} is not declared in storage/sqlite/cache.py CACHED")
            keys = self._kinds[tag[0]] = OrderedDict()
        results = keys.get(tag[1])
        if results is None:
            results = keys[tag[1]] = {}
            if len(keys) > self.max_keys:
                keys.popitem(last=False)
        results[query] = rows

    def invalidate(self, tags: Iterable[Tag] | None) -> None:
        if tags is EVERYTHING:
            self._kinds.clear()
            return
        for kind, key in tags:
            keys = self._kinds.get(kind)
            if keys is not None:
                if key is None:
                    del self._kinds[kind]
                else:
                    keys.pop(key, None)

    def wrote(self, sql: str, key: Hashable | None = None) -> None:
        """Forget what the write statement `sql` may have changed; `key` is the key of the rows
        it writes (a contract, a chat), None if it cannot tell."""
        forgets = self._forgets.get(sql, _UNSEEN)
        if forgets is _UNSEEN:
            forgets = self._learn(sql)
        if forgets is None:
            self._kinds.clear()
            return
        self._forget(forgets, key)

    def wrote_table(self, table: str, key: Hashable | None = None) -> None:
        """Forget what a write to `table` for the rows of `key` (None: any) may have changed: as
        `wrote`, for a write another process logged (storage/postgres/db.py)."""
        self._forget(self._of_table(table), key)

    def _of_table(self, table: str) -> tuple[tuple[str, bool], ...]:
        """The (kind, keyed) pairs a write to `table` forgets."""
        forgets = self._table_forgets.get(table)
        if forgets is None:
            forgets = self._table_forgets[table] = tuple(
                (kind, keyed) for kind, tables in self.depends.items() for t, keyed in tables.items() if t == table
            )
        return forgets

    def _forget(self, forgets: tuple[tuple[str, bool], ...], key: Hashable | None) -> None:
        kinds = self._kinds
        for kind, keyed in forgets:
            keys = kinds.get(kind)
            if keys is not None:
                if keyed and key is not None:
                    keys.pop(key, None)
                else:
                    del kinds[kind]

    def _learn(self, sql: str) -> tuple[tuple[str, bool], ...] | None:
        """The (kind, keyed) pairs a write statement forgets; None: everything."""
        if len(self._forgets) > 1024:  # write statements are few and fixed; this is a guard
            self._forgets.clear()
        table = written_table(sql)
        forgets = self._of_table(table) if table is not None else None
        self._forgets[sql] = forgets
        return forgets
