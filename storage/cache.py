"""What write transactions read, kept from one transaction to the next.

A turn reads the same few rows its chat's previous turn read or wrote: the session, the
linked contracts, messages held for the chat, the readings and bills of its contract. Each
SELECT costs a statement plus building records; this keeps the records, so a turn inside a
journey reads almost nothing.

Correctness rests on three rules:
- Only write transactions use it. They hold SQLite's write lock (BEGIN IMMEDIATE), so what
  they see is the newest committed state plus the open group's own writes.
- Every read that goes through it names a tag, `(kind, key)` (`("readings", "1000001")`), and
  every write names the tags it may change (`touches`); a write that names none empties the
  whole cache. Writes that cannot tell which key they change name `(kind, None)`: all keys.
- Anything that may leave it out of step with the file bumps the Database's `epoch`, and the
  next transaction starts from an empty cache: another process's commit (`PRAGMA data_version`,
  checked at every BEGIN IMMEDIATE), a rolled-back transaction, a failed COMMIT.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any

Tag = tuple[str, Hashable]
EVERYTHING = None  # `touches=EVERYTHING`: the write may change anything


class ReadCache:
    """Per kind, an LRU of keys; per key, the results of the queries tagged with it."""

    def __init__(self, max_keys: int = 2048, max_records: int = 16384) -> None:
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
