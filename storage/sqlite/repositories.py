"""The SQLite repositories: one class per aggregate, composed into `SqliteTx`.

Each class holds the SQL of one aggregate (storage/protocols.py says what it must do); all of
them share `_Repository`'s plumbing, the one place statements run. `SqliteTx` combines them, so
a conversation turn reads, writes the reading or request it produced and saves its state on one
object, in one atomic unit (`tx.readings(...)`, `tx.link_chat(...)`).
"""

from __future__ import annotations

import functools
import itertools
import json
import operator
import sqlite3
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import orjson

from ..clock import Clock, system_clock
from ..protocols import BillPeriod, ConcurrentUpdate, EstimatedReading, InboxKey, ReadingPoint, Upsert
from ..records import (
    Agency,
    Bill,
    ChatLink,
    Contract,
    InstalmentLine,
    OutboxMessage,
    Reading,
    ReminderConsent,
    ReminderTarget,
    Request,
    SessionRecord,
)
from ..values import fold
from .cache import ReadCache, StaleRead, Tag
from .chatlog import HeldChatLog
from .db import Connection

if TYPE_CHECKING:
    from ..protocols import ReadingRepository

_last_ts: list = [None, ""]
# What one transaction remembers of its reads at most: a turn makes a few dozen; a transaction
# that reads a row per imported line must not keep them all.
_SEEN_MAX = 512


def _ts(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    if value is _last_ts[0] or value == _last_ts[0]:  # a turn stamps several rows with one instant
        return _last_ts[1]
    text = value.astimezone(UTC).isoformat()
    _last_ts[:] = value, text
    return text


def _json(value: Any) -> str:
    """JSON text for a column (orjson: several times faster than json, on every turn's session)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _d(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


class _Repository:
    """What every repository class shares: the open transaction's connection, its clock, and
    the only methods that run statements (`_all`/`_one` read, `_write`/`_write_many` write)."""

    __slots__ = ()  # the attributes live on SqliteTx

    _c: Connection
    _clock: Clock
    _seen: dict[tuple, list]
    _cache: ReadCache | None
    _held: HeldChatLog | None
    _held_ops: list[tuple[tuple[str, str], list | None]]

    def now(self) -> datetime:
        """The store's clock (for code given a transaction and no `now`)."""
        return self._clock()

    def _now(self, now: datetime | None) -> datetime:
        return now if now is not None else self._clock()

    async def _all(
        self,
        sql: str,
        params: Iterable[Any] = (),
        convert: Callable[[tuple], Any] | None = None,
        tag: Tag | None = None,
    ) -> list:
        """The rows, or with `convert` the records built from them (records are frozen, so
        the cached ones can be shared). With `tag`, a write transaction keeps them in the
        store's ReadCache until a write to a table that kind depends on (cache.py CACHED)."""
        key = self._key(sql, params, convert)
        cache = self._cache
        if tag is not None and cache is not None:
            rows = cache.get(tag, key)
            if rows is None:
                rows = await self._c.execute_fetchall(sql, key[1])
                if convert:
                    rows = cache.records(convert, rows)
                cache.put(tag, key, rows)
            elif cache.verify:
                fresh = await self._c.execute_fetchall(sql, key[1])
                if (list(map(convert, fresh)) if convert else fresh) != rows:
                    raise StaleRead(f"cached {tag} is stale for {sql[:80]!r}")
            return list(rows)
        seen = self._seen
        rows = seen.get(key)
        if rows is None:
            rows = await self._c.execute_fetchall(sql, key[1])
            if len(seen) >= _SEEN_MAX:  # a transaction reading row after row (and writing none)
                seen.clear()
            seen[key] = rows = list(map(convert, rows)) if convert else rows
        return list(rows)

    async def _bulk(self, sql: str, params: Iterable[Any] = ()) -> list:
        """A read not remembered (the memo, the cache): bulk loads read what no turn rereads."""
        return await self._c.execute_fetchall(sql, tuple(params))

    @staticmethod
    def _key(sql: str, params: Iterable[Any], convert: Callable[[tuple], Any] | None = None) -> tuple:
        """What a read's results are cached under (the parameters are the statement's tuple)."""
        return sql, tuple(params), convert

    def _stream(self, sql: str, params: Iterable[Any] = (), batch: int = 1000) -> AsyncIterator[list[tuple]]:
        """The rows in batches as the cursor returns them, nothing kept (exports)."""
        return self._c.stream(sql, params, batch)

    async def _newest_of(
        self, sql: str, keys: Sequence[str], convert: Callable[[tuple], Any], keep: int, *, size: int = 500
    ) -> dict[str, list]:
        """`sql` (an IN list of `{marks}`; rows keyed by column 0, each key's newest first) run for
        `keys` `size` at a time: the first `keep` rows of each key, converted without their key.
        (A plain ordered read and a cut here: 2-3 times cheaper than row_number() in SQLite.)"""
        out: dict[str, list] = {}
        for start in range(0, len(keys), size):
            part = keys[start : start + size]
            for key, rows in itertools.groupby(
                await self._c.execute_fetchall(sql.format(marks=",".join("?" * len(part))), part),
                key=operator.itemgetter(0),
            ):
                out[key] = [convert(row) for row in itertools.islice(rows, keep)]
        return out

    async def _one(self, sql: str, params: Iterable[Any] = (), tag: Tag | None = None) -> tuple | None:
        rows = await self._all(sql, params, tag=tag)
        return rows[0] if rows else None

    async def _count(self, sql: str, params: Iterable[Any] = ()) -> int:
        rows = await self._all(sql, params)
        return int(rows[0][0])

    async def _write(
        self, sql: str, params: Iterable[Any] = (), *, key: Hashable | None = None, light: bool = False
    ) -> sqlite3.Cursor:
        """Every write goes through here (or _write_many). It empties this transaction's reads
        and makes the cache forget what the statement's table may have changed; `key` (the
        contract, the chat) narrows that to the rows' key when the write knows it. `light`: a
        write that a replayed turn makes again and that records nothing promised (the session,
        the message key and replies, the answered mark): alone, it waits for no fsync (db.py)."""
        self._forget(sql, key)
        if light:
            return await self._c.light_write(sql, params)
        return await self._c.execute(sql, tuple(params))

    async def _write_many(
        self, sql: str, rows: Iterable[Sequence[Any]], *, key: Hashable | None = None, light: bool = False
    ) -> None:
        self._forget(sql, key)
        cursor = await self._c.executemany(sql, rows)
        if light:
            self._c.light += cursor.rowcount

    def _forget(self, sql: str, key: Hashable | None) -> None:
        self._seen.clear()
        if self._cache is not None:
            self._cache.wrote(sql, key)

    async def _exec(
        self, sql: str, params: Iterable[Any] = (), *, key: Hashable | None = None, light: bool = False
    ) -> int:
        """Run a write; returns the number of rows it changed."""
        return (await self._write(sql, params, key=key, light=light)).rowcount

    async def _insert(self, sql: str, params: Iterable[Any] = (), *, key: Hashable | None = None) -> int:
        return int(cast(int, (await self._write(sql, params, key=key)).lastrowid))


_CONTRACT_COLS = (
    "contract, service, holder_name, phone, language, city, meter_number, meter_kind, "
    "meter_digits, last_index, last_index_date, tariff, low_income"
)


def _contract(row: tuple) -> Contract:
    return Contract(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
        date.fromisoformat(row[10]),
        row[11],
        bool(row[12]),
    )


_BILL_COLS = (
    "bill_number, contract, period_start, period_end, issue_date, due_date, index_start, "
    "index_end, consumption, estimated, amount, paid_amount"
)


def _bill(r: tuple) -> Bill:
    return Bill(
        r[0],
        r[1],
        date.fromisoformat(r[2]),
        date.fromisoformat(r[3]),
        date.fromisoformat(r[4]),
        date.fromisoformat(r[5]),
        r[6],
        r[7],
        r[8],
        bool(r[9]),
        r[10],
        r[11],
    )


_READING_COLS = (
    "id, contract, reading_date, index_value, source, status, reference, channel, user_id, "
    "photo_ref, previous_index, previous_date, consumption, rollover, review, review_reason, "
    "details, submitted_at, photo_sha256"
)


def _reading(r: tuple) -> Reading:
    return Reading(
        r[0],
        r[1],
        date.fromisoformat(r[2]),
        r[3],
        r[4],
        r[5],
        r[6],
        r[7],
        r[8],
        r[9],
        r[10],
        _d(r[11]),
        r[12],
        bool(r[13]),
        bool(r[14]),
        r[15],
        orjson.loads(r[16]) if r[16] else {},
        _dt(r[17]),
        r[18],
    )


_AGENCY_COLS = "city, name, address, phone, hours, city_ar, name_ar, address_ar, hours_ar"

_LINKED_SQL = (
    f"SELECT {', '.join('c.' + c.strip() for c in _CONTRACT_COLS.split(','))} "
    "FROM chat_links l JOIN contracts c ON c.contract = l.contract "
    "WHERE l.channel=? AND l.user_id=? ORDER BY l.verified_at, c.contract"
)

_SESSION_SQL = "SELECT state, data, lang, version, updated_at FROM sessions WHERE channel=? AND user_id=?"

_REQUEST_COLS = (
    "id, reference, kind, contract, channel, user_id, lang, status, amount, months, defer_until, "
    "reason, reason_text, details, created_at, updated_at, decided_at, decided_by, decision_note"
)

_OUTBOX_COLS = "id, channel, user_id, lang, kind, payload, status, attempts, next_attempt_at, sent_at, last_error"


def _outbox(r: tuple) -> OutboxMessage:
    return OutboxMessage(
        r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], datetime.fromisoformat(r[8]), _dt(r[9]), r[10]
    )


class SqliteContracts(_Repository):
    """Contracts: the distributor's customer records, imported."""

    __slots__ = ()

    async def upsert_contract(self, c: Contract, *, now: datetime | None = None) -> Upsert:
        """Insert or update a contract, and record its last index as an actual reading."""
        values = (
            c.contract,
            c.service,
            c.holder_name,
            c.phone,
            c.language,
            c.city,
            c.meter_number,
            c.meter_kind,
            c.meter_digits,
            c.last_index,
            c.last_index_date.isoformat(),
            c.tariff,
            int(c.low_income),
        )
        existing = await self._one(f"SELECT {_CONTRACT_COLS} FROM contracts WHERE contract = ?", (c.contract,))
        stamp = _ts(self._now(now))
        if existing is None:
            await self._exec(
                f"INSERT INTO contracts ({_CONTRACT_COLS}, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (*values, stamp),
            )
            result: Upsert = "inserted"
        elif tuple(existing) == values:
            result = "unchanged"
        else:
            await self._exec(
                "UPDATE contracts SET service=?, holder_name=?, phone=?, language=?, city=?, "
                "meter_number=?, meter_kind=?, meter_digits=?, last_index=?, last_index_date=?, "
                "tariff=?, low_income=?, updated_at=? WHERE contract=?",
                (*values[1:], stamp, c.contract),
            )
            result = "updated"
        readings = cast("ReadingRepository", self)  # composed with SqliteReadings in SqliteTx
        await readings.upsert_history_reading(c.contract, c.last_index_date, c.last_index, "actual", now=now)
        return result

    async def contract(self, number: str) -> Contract | None:
        row = await self._one(f"SELECT {_CONTRACT_COLS} FROM contracts WHERE contract = ?", (number,))
        return _contract(row) if row else None

    async def contracts(self, numbers: Iterable[str] | None = None) -> list[Contract]:
        if numbers is None:
            rows = await self._all(f"SELECT {_CONTRACT_COLS} FROM contracts ORDER BY contract")
        else:
            numbers = list(numbers)
            if not numbers:
                return []
            marks = ",".join("?" * len(numbers))
            rows = await self._all(
                f"SELECT {_CONTRACT_COLS} FROM contracts WHERE contract IN ({marks}) ORDER BY contract", numbers
            )
        return [_contract(r) for r in rows]

    async def meters(self, kind: str) -> list[tuple[str, int]]:
        return await self._all(
            "SELECT contract, meter_digits FROM contracts WHERE meter_kind = ? ORDER BY contract", (kind,)
        )

    async def contracts_with_phone(self, phone_e164: str) -> list[Contract]:
        rows = await self._all(
            f"SELECT {_CONTRACT_COLS} FROM contracts WHERE phone = ? ORDER BY contract", (phone_e164,)
        )
        return [_contract(r) for r in rows]

    async def existing_contracts(self, numbers: Iterable[str]) -> set[str]:
        numbers = list(set(numbers))
        found: set[str] = set()
        for i in range(0, len(numbers), 500):
            chunk = numbers[i : i + 500]
            rows = await self._all(
                f"SELECT contract FROM contracts WHERE contract IN ({','.join('?' * len(chunk))})", chunk
            )
            found.update(r[0] for r in rows)
        return found

    async def count_contracts(self) -> int:
        return await self._count("SELECT count(*) FROM contracts")


class SqliteLinks(_Repository):
    """Which contracts a chat has proved it may see."""

    __slots__ = ()

    async def link_chat(
        self, channel: str, user_id: str, contract: str, method: str, *, now: datetime | None = None
    ) -> None:
        await self._exec(
            "INSERT INTO chat_links (channel, user_id, contract, method, verified_at) VALUES (?,?,?,?,?) "
            "ON CONFLICT (channel, user_id, contract) DO UPDATE SET method=excluded.method, "
            "verified_at=excluded.verified_at",
            (channel, user_id, contract, method, _ts(self._now(now))),
            key=(channel, user_id),
        )

    async def unlink_chat(self, channel: str, user_id: str, contract: str) -> bool:
        return (
            await self._exec(
                "DELETE FROM chat_links WHERE channel=? AND user_id=? AND contract=?",
                (channel, user_id, contract),
                key=(channel, user_id),
            )
            > 0
        )

    async def chat_links(self, channel: str, user_id: str) -> list[ChatLink]:
        rows = await self._all(
            "SELECT channel, user_id, contract, method, verified_at FROM chat_links "
            "WHERE channel=? AND user_id=? ORDER BY verified_at, contract",
            (channel, user_id),
        )
        return [ChatLink(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4])) for r in rows]

    async def linked_contracts(self, channel: str, user_id: str) -> list[Contract]:
        return await self._all(_LINKED_SQL, (channel, user_id), _contract, ("links", (channel, user_id)))

    async def is_linked(self, channel: str, user_id: str, contract: str) -> bool:
        return (
            await self._one(
                "SELECT 1 FROM chat_links WHERE channel=? AND user_id=? AND contract=?", (channel, user_id, contract)
            )
            is not None
        )


class SqliteReadings(_Repository):
    """Meter readings: the distributor's history and the customers' own."""

    __slots__ = ()

    async def upsert_history_reading(
        self, contract: str, day: date, index: int, source: str, *, now: datetime | None = None
    ) -> Upsert:
        """A reading from the distributor's history (actual, estimated or customer), keyed by day and source."""
        row = await self._one(
            "SELECT id, index_value FROM readings WHERE contract=? AND reading_date=? AND source=? AND status='valid'",
            (contract, day.isoformat(), source),
        )
        if row is None:
            await self._exec(
                "INSERT INTO readings (contract, reading_date, index_value, source, submitted_at) VALUES (?,?,?,?,?)",
                (contract, day.isoformat(), index, source, _ts(self._now(now))),
                key=contract,
            )
            return "inserted"
        if row[1] == index:
            return "unchanged"
        await self._exec("UPDATE readings SET index_value=? WHERE id=?", (index, row[0]), key=contract)
        return "updated"

    async def add_customer_reading(
        self,
        *,
        contract: str,
        day: date,
        index: int,
        reference: str,
        channel: str,
        user_id: str,
        photo_ref: str | None,
        previous_index: int | None,
        previous_date: date | None,
        consumption: int | None,
        rollover: bool = False,
        review_reason: str | None = None,
        details: dict[str, Any] | None = None,
        replaces: int | None = None,
        now: datetime | None = None,
        photo_sha256: str | None = None,
        ocr_index: int | None = None,
    ) -> int:
        """Record a confirmed customer reading; `replaces` marks an earlier one of the cycle as replaced."""
        if replaces is not None:
            await self._exec(
                "UPDATE readings SET status='replaced' WHERE id=? AND contract=? AND status='valid'",
                (replaces, contract),
                key=contract,
            )
        # A same-day customer reading is replaced too (the unique index allows one valid per day).
        await self._exec(
            "UPDATE readings SET status='replaced' WHERE contract=? AND reading_date=? "
            "AND source='customer' AND status='valid'",
            (contract, day.isoformat()),
            key=contract,
        )
        new_id = await self._insert(
            "INSERT INTO readings (contract, reading_date, index_value, source, reference, channel, user_id, "
            "photo_ref, previous_index, previous_date, consumption, rollover, review, review_reason, details, "
            "submitted_at, photo_sha256, ocr_index) VALUES (?,?,?, 'customer', ?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                contract,
                day.isoformat(),
                index,
                reference,
                channel,
                user_id,
                photo_ref,
                previous_index,
                previous_date.isoformat() if previous_date else None,
                consumption,
                int(rollover),
                int(review_reason is not None),
                review_reason,
                _json(details or {}),
                _ts(self._now(now)),
                photo_sha256,
                ocr_index,
            ),
            key=contract,
        )
        if replaces is not None:
            await self._exec(
                "UPDATE readings SET replaced_by=? WHERE id=? AND contract=?",
                (new_id, replaces, contract),
                key=contract,
            )
        return new_id

    async def readings(
        self,
        contract: str,
        *,
        include_replaced: bool = False,
        newest: int | None = None,
        sources: tuple[str, ...] | None = None,
        since: date | None = None,
    ) -> list[Reading]:
        """Readings of a contract, oldest first; with `newest`, only that many of the latest; with
        `sources`, only those; with `since`, only those dated that day or later."""
        params: list[Any] = [contract]
        if sources is not None:
            params.extend(sources)
        if since is not None:
            params.append(since.isoformat())
        sql = _readings_sql(include_replaced, None if sources is None else len(sources), since is not None, newest)
        rows = await self._all(sql, params, _reading, ("readings", contract))
        if newest is not None:
            rows.reverse()
        return rows

    async def last_reading(
        self, contract: str, *, sources: tuple[str, ...] = ("actual", "customer", "estimated")
    ) -> Reading | None:
        marks = ",".join("?" * len(sources))
        row = await self._one(
            f"SELECT {_READING_COLS} FROM readings WHERE contract = ? AND status = 'valid' "
            f"AND source IN ({marks}) ORDER BY reading_date DESC, id DESC LIMIT 1",
            (contract, *sources),
            ("readings", contract),
        )
        return _reading(row) if row else None

    async def customer_readings(self, *, since: date | None = None, include_replaced: bool = False) -> list[Reading]:
        """Customer readings for the billing system, by reading date then submission."""
        sql = f"SELECT {_READING_COLS} FROM readings WHERE source = 'customer'"
        params: list[Any] = []
        if since:
            sql += " AND reading_date >= ?"
            params.append(since.isoformat())
        if not include_replaced:
            sql += " AND status = 'valid'"
        sql += " ORDER BY reading_date, submitted_at, id"
        return [_reading(r) for r in await self._all(sql, params)]

    def export_customer_readings(self, *, since: date | None = None, batch: int = 2000) -> AsyncIterator[list[tuple]]:
        sql = (
            "SELECT r.contract, c.meter_number, r.reading_date, r.index_value, r.source, r.previous_date, "
            "r.previous_index, r.consumption, r.rollover, r.review, r.review_reason, r.photo_ref, r.channel, "
            "r.reference, r.submitted_at, r.status, r.photo_sha256, r.ocr_index "
            "FROM readings r LEFT JOIN contracts c ON c.contract = r.contract WHERE r.source = 'customer'"
        )
        params: list[Any] = []
        if since:
            sql += " AND r.reading_date >= ?"
            params.append(since.isoformat())
        return self._stream(sql + " ORDER BY r.reading_date, r.submitted_at, r.id", params, batch)

    async def reading_points_of(self, contracts: Sequence[str], *, newest: int) -> dict[str, list[ReadingPoint]]:
        found = await self._newest_of(
            "SELECT contract, reading_date, index_value, source, review FROM readings "
            "WHERE contract IN ({marks}) AND status = 'valid' ORDER BY contract, reading_date DESC, id DESC",
            list(contracts),
            lambda r: (date.fromisoformat(r[1]), r[2], r[3], bool(r[4])),
            newest,
        )
        for points in found.values():
            points.reverse()  # oldest first, as `readings` gives them
        return found

    async def add_estimated_readings(self, rows: Iterable[EstimatedReading], *, now: datetime | None = None) -> None:
        stamp = _ts(self._now(now))
        await self._write_many(
            "INSERT INTO readings (contract, reading_date, index_value, source, previous_index, previous_date, "
            "consumption, details, submitted_at) VALUES (?,?,?, 'estimated', ?,?,?,?,?)",
            [
                (contract, day.isoformat(), index, previous, previous_day.isoformat(), used, _json(details), stamp)
                for contract, day, index, used, previous, previous_day, details in rows
            ],
        )

    async def add_estimated_reading(
        self,
        contract: str,
        day: date,
        index: int,
        *,
        consumption: int,
        previous_index: int,
        previous_date: date,
        details: dict[str, Any],
        now: datetime | None = None,
    ) -> int:
        return await self._insert(
            "INSERT INTO readings (contract, reading_date, index_value, source, previous_index, previous_date, "
            "consumption, details, submitted_at) VALUES (?,?,?, 'estimated', ?,?,?,?,?)",
            (
                contract,
                day.isoformat(),
                index,
                previous_index,
                previous_date.isoformat(),
                consumption,
                _json(details),
                _ts(self._now(now)),
            ),
            key=contract,
        )


class SqliteBills(_Repository):
    """Bills, imported."""

    __slots__ = ()

    async def upsert_bill(self, b: Bill, *, now: datetime | None = None) -> Upsert:
        values = (
            b.bill_number,
            b.contract,
            b.period_start.isoformat(),
            b.period_end.isoformat(),
            b.issue_date.isoformat(),
            b.due_date.isoformat(),
            b.index_start,
            b.index_end,
            b.consumption,
            int(b.estimated),
            b.amount,
            b.paid_amount,
        )
        existing = await self._one(f"SELECT {_BILL_COLS} FROM bills WHERE bill_number = ?", (b.bill_number,))
        stamp = _ts(self._now(now))
        if existing is None:
            await self._exec(
                f"INSERT INTO bills ({_BILL_COLS}, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (*values, stamp),
            )
            return "inserted"
        if tuple(existing) == values:
            return "unchanged"
        await self._exec(
            "UPDATE bills SET contract=?, period_start=?, period_end=?, issue_date=?, due_date=?, "
            "index_start=?, index_end=?, consumption=?, estimated=?, amount=?, paid_amount=?, "
            "updated_at=? WHERE bill_number=?",
            (*values[1:], stamp, b.bill_number),
        )
        return "updated"

    async def bills(
        self, contract: str, *, unpaid_only: bool = False, limit: int | None = None, since: date | None = None
    ) -> list[Bill]:
        """Bills of a contract, newest period first; with `since`, those whose period starts that day or later."""
        sql = f"SELECT {_BILL_COLS} FROM bills WHERE contract = ?"
        params: list[Any] = [contract]
        if unpaid_only:
            sql += " AND paid_amount < amount"
        if since is not None:  # (period_end: the index's range; period_start: the condition)
            sql += " AND period_end >= ? AND period_start >= ?"
            params.extend((since.isoformat(), since.isoformat()))
        sql += " ORDER BY period_end DESC, bill_number DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return await self._all(sql, params, _bill, ("bills", contract))

    async def bill_periods_of(self, contracts: Sequence[str], *, limit: int) -> dict[str, list[BillPeriod]]:
        return await self._newest_of(
            "SELECT contract, period_start, period_end, consumption, estimated FROM bills "
            "WHERE contract IN ({marks}) ORDER BY contract, period_end DESC, bill_number DESC",
            list(contracts),
            lambda r: (date.fromisoformat(r[1]), date.fromisoformat(r[2]), r[3], bool(r[4])),
            limit,
        )

    async def bill(self, bill_number: str) -> Bill | None:
        row = await self._one(f"SELECT {_BILL_COLS} FROM bills WHERE bill_number = ?", (bill_number,))
        return _bill(row) if row else None


class SqliteSessions(_Repository):
    """Conversation sessions, and the turns already handled (inbound de-duplication)."""

    __slots__ = ()

    async def load_session(self, channel: str, user_id: str) -> SessionRecord | None:
        # The row is what is cached, not the record: a turn changes its session's data in place.
        row = await self._one(_SESSION_SQL, (channel, user_id), ("session", (channel, user_id)))
        if row is None:
            return None
        return SessionRecord(channel, user_id, row[0], orjson.loads(row[1]), row[2], row[3], _dt(row[4]))

    async def save_session(self, s: SessionRecord, *, now: datetime | None = None) -> int:
        """Write the session if nobody changed it since it was loaded; returns the new version."""
        stamp = _ts(self._now(now))
        data = _json(s.data)
        chat = (s.channel, s.user_id)
        if s.version == 0:
            changed = await self._exec(
                "INSERT INTO sessions (channel, user_id, state, data, lang, version, updated_at) "
                "VALUES (?,?,?,?,?,1,?) ON CONFLICT DO NOTHING",
                (s.channel, s.user_id, s.state, data, s.lang, stamp),
                key=chat,
                light=True,
            )
        else:
            changed = await self._exec(
                "UPDATE sessions SET state=?, data=?, lang=?, version=version+1, updated_at=? "
                "WHERE channel=? AND user_id=? AND version=?",
                (s.state, data, s.lang, stamp, s.channel, s.user_id, s.version),
                key=chat,
                light=True,
            )
        if changed != 1:
            raise ConcurrentUpdate(f"session {s.channel}:{s.user_id} changed since version {s.version}")
        s.version += 1
        if self._cache is not None:  # the next turn of this chat reads what was written
            self._cache.put(
                ("session", chat), self._key(_SESSION_SQL, chat), [(s.state, data, s.lang, s.version, stamp)]
            )
        return s.version

    async def last_customer_turn(self, channel: str, user_id: str) -> datetime | None:
        """When this person last wrote (sessions are written only by their own messages)."""
        row = await self._one("SELECT updated_at FROM sessions WHERE channel=? AND user_id=?", (channel, user_id))
        return _dt(row[0]) if row else None

    async def record_turn(self, channel: str, message_id: str, replies: str, *, now: datetime | None = None) -> bool:
        """Claim a message at the end of its turn, with the turn's replies (JSON, sent again if a
        crash comes before them). False if it was already handled: the caller rolls back."""
        return (
            await self._exec(
                "INSERT INTO processed_messages (channel, message_id, processed_at, replies) "
                "VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
                (channel, message_id, _ts(self._now(now)), replies),
                light=True,
            )
            == 1
        )

    async def kept_replies(self, channel: str, message_id: str) -> str | None:
        row = await self._one(
            "SELECT replies FROM processed_messages WHERE channel=? AND message_id=?", (channel, message_id)
        )
        return row[0] if row else None


class SqliteRequests(_Repository):
    """Requests customers file (instalments, deferrals, callbacks …)."""

    __slots__ = ()

    async def _request(self, r: tuple, tag: Tag | None = None) -> Request:
        lines = tuple(
            InstalmentLine(l[0], date.fromisoformat(l[1]), l[2])
            for l in await self._all(
                "SELECT seq, due_date, amount FROM instalment_lines WHERE request_id=? ORDER BY seq", (r[0],), tag=tag
            )
        )
        return Request(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            r[7],
            r[8],
            r[9],
            _d(r[10]),
            r[11],
            r[12],
            json.loads(r[13] or "{}"),
            datetime.fromisoformat(r[14]),
            datetime.fromisoformat(r[15]),
            _dt(r[16]),
            r[17],
            r[18],
            lines,
        )

    async def add_request(
        self,
        *,
        reference: str,
        kind: str,
        contract: str | None,
        channel: str,
        user_id: str,
        lang: str,
        amount: int | None = None,
        months: int | None = None,
        defer_until: date | None = None,
        reason: str | None = None,
        reason_text: str | None = None,
        details: dict[str, Any] | None = None,
        lines: Iterable[InstalmentLine] = (),
        now: datetime | None = None,
    ) -> int:
        stamp = _ts(self._now(now))
        request_id = await self._insert(
            "INSERT INTO requests (reference, kind, contract, channel, user_id, lang, amount, months, defer_until, "
            "reason, reason_text, details, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                reference,
                kind,
                contract,
                channel,
                user_id,
                lang,
                amount,
                months,
                defer_until.isoformat() if defer_until else None,
                reason,
                reason_text,
                _json(details or {}),
                stamp,
                stamp,
            ),
        )
        lines = list(lines)
        if lines:
            await self._write_many(
                "INSERT INTO instalment_lines (request_id, seq, due_date, amount) VALUES (?,?,?,?)",
                [(request_id, l.seq, l.due_date.isoformat(), l.amount) for l in lines],
            )
        return request_id

    async def request(self, reference: str) -> Request | None:
        row = await self._one(f"SELECT {_REQUEST_COLS} FROM requests WHERE reference = ?", (reference,))
        return await self._request(row) if row else None

    async def requests(
        self,
        *,
        status: str | None = None,
        contract: str | None = None,
        chat: tuple[str, str] | None = None,
        kinds: Iterable[str] | None = None,
    ) -> list[Request]:
        sql = f"SELECT {_REQUEST_COLS} FROM requests WHERE 1=1"
        params: list[Any] = []
        if status:
            sql += " AND status = ?"
            params.append(status)
        if contract:
            sql += " AND contract = ?"
            params.append(contract)
        if chat:
            sql += " AND channel = ? AND user_id = ?"
            params.extend(chat)
        if kinds is not None:
            kinds = list(kinds)
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            params.extend(kinds)
        sql += " ORDER BY created_at, id"
        # A contract's requests are read on every balance turn (bills.py): kept in the read cache,
        # which any write to requests or instalment lines empties of them (cache.py CACHED).
        tag: Tag | None = ("requests", contract) if contract and not chat else None
        return [await self._request(r, tag) for r in await self._all(sql, params, tag=tag)]

    def export_requests(self, *, status: str | None = None, batch: int = 500) -> AsyncIterator[list[tuple]]:
        cols = ", ".join("r." + c.strip() for c in _REQUEST_COLS.split(","))
        sql = (
            f"SELECT {cols}, (SELECT group_concat(due_date || ':' || amount, ';') FROM "
            "(SELECT due_date, amount FROM instalment_lines l WHERE l.request_id = r.id ORDER BY seq) AS lines), "
            "coalesce(json_extract(r.details, '$.phone'), c.phone) "
            "FROM requests r LEFT JOIN contracts c ON c.contract = r.contract"
        )
        params: list[Any] = []
        if status:
            sql += " WHERE r.status = ?"
            params.append(status)
        return self._stream(sql + " ORDER BY r.created_at, r.id", params, batch)

    async def set_request_status(
        self,
        reference: str,
        status: str,
        *,
        expected: str | None = None,
        decided_by: str | None = None,
        note: str | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Change a request's status; with `expected`, only from that status. True if it changed."""
        stamp = _ts(self._now(now))
        decided = status in ("approved", "rejected")
        sql = (
            "UPDATE requests SET status=?, updated_at=?, decided_at=coalesce(?, decided_at), "
            "decided_by=coalesce(?, decided_by), decision_note=coalesce(?, decision_note) WHERE reference=?"
        )
        params: list[Any] = [status, stamp, stamp if decided else None, decided_by, note, reference]
        if expected:
            sql += " AND status=?"
            params.append(expected)
        return await self._exec(sql, params) == 1


@functools.cache
def _outbox_for_chat_sql(statuses: int) -> str:
    """Read on every turn: built once per number of statuses."""
    marks = ",".join("?" * statuses)
    return f"SELECT {_OUTBOX_COLS} FROM outbox WHERE channel=? AND user_id=? AND status IN ({marks}) ORDER BY id"


@functools.lru_cache(maxsize=256)
def _readings_sql(include_replaced: bool, sources: int | None, since: bool, newest: int | None) -> str:
    """`readings`' statement for its options (asked several times a turn: built once)."""
    sql = f"SELECT {_READING_COLS} FROM readings WHERE contract = ?"
    if not include_replaced:
        sql += " AND status = 'valid'"
    if sources is not None:
        sql += f" AND source IN ({','.join('?' * sources)})"
    if since:
        sql += " AND reading_date >= ?"
    if newest is None:
        return sql + " ORDER BY reading_date, id"
    return sql + f" ORDER BY reading_date DESC, id DESC LIMIT {int(newest)}"


class SqliteOutbox(_Repository):
    """Messages queued for customers."""

    __slots__ = ()

    async def enqueue_outbox(
        self,
        *,
        channel: str,
        user_id: str,
        lang: str,
        kind: str,
        payload: dict[str, Any],
        dedupe_key: str | None = None,
        now: datetime | None = None,
    ) -> int | None:
        """Queue a message for a customer; a repeated dedupe_key queues nothing and returns None."""
        stamp = _ts(self._now(now))
        cursor = await self._write(
            "INSERT INTO outbox (channel, user_id, lang, kind, payload, dedupe_key, next_attempt_at, created_at) "
            "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (dedupe_key) DO NOTHING",
            (channel, user_id, lang, kind, _json(payload), dedupe_key, stamp, stamp),
            key=(channel, user_id),
        )
        return int(cast(int, cursor.lastrowid)) if cursor.rowcount == 1 else None

    async def outbox_due(
        self, *, now: datetime | None = None, channels: Iterable[str] | None = None, limit: int = 50
    ) -> list[OutboxMessage]:
        sql = f"SELECT {_OUTBOX_COLS} FROM outbox WHERE status IN ('pending') AND next_attempt_at <= ?"
        params: list[Any] = [_ts(self._now(now))]
        if channels is not None:
            channels = list(channels)
            sql += f" AND channel IN ({','.join('?' * len(channels))})"
            params += channels
        # Reminders and notices after any other message due: a campaign never delays a decision.
        sql += f" ORDER BY kind IN ('reminder', 'notice'), next_attempt_at, id LIMIT {int(limit)}"
        return [_outbox(r) for r in await self._all(sql, params)]

    async def outbox_for_chat(
        self, channel: str, user_id: str, *, statuses: tuple[str, ...] = ("pending", "held")
    ) -> list[OutboxMessage]:
        return [
            _outbox(r)
            for r in await self._all(
                _outbox_for_chat_sql(len(statuses)),
                (channel, user_id, *statuses),
                tag=("outbox", (channel, user_id)),
            )
        ]

    async def outbox_message(self, message_id: int) -> OutboxMessage | None:
        row = await self._one(f"SELECT {_OUTBOX_COLS} FROM outbox WHERE id=?", (message_id,))
        return _outbox(row) if row else None

    async def claim_outbox(self, message_id: int, *, now: datetime | None = None, by: str | None = None) -> bool:
        """pending → sending (by the worker `by`, when several share the database); False if
        someone else has it or it is done."""
        return (
            await self._exec(
                "UPDATE outbox SET status='sending', claimed_at=?, claimed_by=?, attempts=attempts+1 "
                "WHERE id=? AND status='pending'",
                (_ts(self._now(now)), by, message_id),
            )
            == 1
        )

    async def outbox_claimers(self, ids: Iterable[int]) -> dict[int, str | None]:
        """The worker that claimed each message (None: claimed by one process alone)."""
        ids = list(ids)
        if not ids:
            return {}
        rows = await self._bulk(f"SELECT id, claimed_by FROM outbox WHERE id IN ({','.join('?' * len(ids))})", ids)
        return {int(r[0]): r[1] for r in rows}

    async def mark_outbox_sent(
        self, message_id: int, *, external_id: str | None = None, now: datetime | None = None
    ) -> None:
        await self._exec(
            "UPDATE outbox SET status='sent', sent_at=?, external_id=coalesce(?, external_id), "
            "last_error=NULL WHERE id=?",
            (_ts(self._now(now)), external_id, message_id),
        )

    async def interrupted_outbox(self, *, channels: Iterable[str], claimed_before: datetime) -> list[OutboxMessage]:
        """Messages a dispatcher claimed and never marked: it stopped between claiming and marking."""
        channels = list(channels)
        return [
            _outbox(r)
            for r in await self._all(
                f"SELECT {_OUTBOX_COLS} FROM outbox WHERE status='sending' AND claimed_at < ? "
                f"AND channel IN ({','.join('?' * len(channels))}) ORDER BY id",
                (_ts(claimed_before), *channels),
            )
        ]

    async def settle_outbox(
        self, message_id: int, status: str, *, error: str, next_attempt_at: datetime | None = None
    ) -> None:
        """A message leaves 'sending' for good ('failed'), for the chat ('held'), or for a resend ('pending')."""
        if status not in ("failed", "held", "pending"):
            raise ValueError(status)
        await self._exec(
            "UPDATE outbox SET status=?, last_error=?, next_attempt_at=coalesce(?, next_attempt_at) WHERE id=?",
            (status, error[:500], _ts(next_attempt_at) if next_attempt_at else None, message_id),
        )

    async def outbox_by_external_id(self, channel: str, external_id: str) -> OutboxMessage | None:
        row = await self._one(
            f"SELECT {_OUTBOX_COLS} FROM outbox WHERE channel=? AND external_id=?", (channel, external_id)
        )
        return _outbox(row) if row else None

    async def retry_outbox(
        self, message_id: int, *, error: str, delay: timedelta, max_attempts: int, now: datetime | None = None
    ) -> str:
        """After a failed send: back to pending after `delay`, or failed for good; returns the new status."""
        now = self._now(now)
        row = await self._one("SELECT attempts FROM outbox WHERE id=?", (message_id,))
        status = "failed" if row and row[0] >= max_attempts else "pending"
        await self._exec(
            "UPDATE outbox SET status=?, last_error=?, next_attempt_at=? WHERE id=?",
            (status, error[:500], _ts(now + delay), message_id),
        )
        return status


class SqliteAudit(_Repository):
    """The audit log."""

    __slots__ = ()

    async def audit(
        self,
        action: str,
        *,
        actor: str = "customer",
        channel: str | None = None,
        user_id: str | None = None,
        contract: str | None = None,
        details: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> None:
        await self._exec(
            "INSERT INTO audit_log (at, actor, action, channel, user_id, contract, details) VALUES (?,?,?,?,?,?,?)",
            (_ts(self._now(now)), actor, action, channel, user_id, contract, _json(details or {})),
        )

    async def audit_many(
        self,
        action: str,
        entries: Iterable[tuple[str | None, dict[str, Any]]],
        *,
        actor: str = "system",
        now: datetime | None = None,
    ) -> None:
        stamp = _ts(self._now(now))
        await self._write_many(
            "INSERT INTO audit_log (at, actor, action, contract, details) VALUES (?,?,?,?,?)",
            [(stamp, actor, action, contract, _json(details)) for contract, details in entries],
        )

    async def count_audit(self, action: str, *, channel: str, user_id: str, since: datetime) -> int:
        return await self._count(
            "SELECT count(*) FROM audit_log WHERE channel=? AND user_id=? AND action=? AND at>=?",
            (channel, user_id, action, _ts(since)),
        )

    async def count_contract_audit(self, action: str, *, contract: str, since: datetime) -> int:
        return await self._count(
            "SELECT count(*) FROM audit_log WHERE contract=? AND action=? AND at>=?", (contract, action, _ts(since))
        )

    async def last_audit_at(self, action: str, *, channel: str, user_id: str) -> datetime | None:
        row = await self._one(
            "SELECT max(at) FROM audit_log WHERE channel=? AND user_id=? AND action=?", (channel, user_id, action)
        )
        return _dt(row[0]) if row else None

    async def audit_entries(self, *, contract: str | None = None, action: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT at, actor, action, channel, user_id, contract, details FROM audit_log WHERE 1=1"
        params: list[Any] = []
        if contract:
            sql += " AND contract=?"
            params.append(contract)
        if action:
            sql += " AND action=?"
            params.append(action)
        rows = await self._all(sql + " ORDER BY id", params)
        return [
            dict(at=r[0], actor=r[1], action=r[2], channel=r[3], user_id=r[4], contract=r[5], details=json.loads(r[6]))
            for r in rows
        ]


class SqliteInbox(_Repository):
    """Updates kept before they are acknowledged to the channel."""

    __slots__ = ()

    async def accept_inbound(
        self, channel: str, message_id: str, body: str, *, now: datetime | None = None, chat: str | None = None
    ) -> bool:
        """Keep an update before acknowledging it to the channel; False if it was already kept."""
        if chat is None:
            return (
                await self._exec(
                    "INSERT INTO inbox (channel, message_id, body, received_at) VALUES (?,?,?,?) "
                    "ON CONFLICT DO NOTHING",
                    (channel, message_id, body, _ts(self._now(now))),
                )
                == 1
            )
        return (
            await self._exec(
                "INSERT INTO inbox (channel, message_id, body, received_at, chat) VALUES (?,?,?,?,?) "
                "ON CONFLICT DO NOTHING",
                (channel, message_id, body, _ts(self._now(now)), chat),
            )
            == 1
        )

    async def chat_unanswered(self, channel: str, chat: str, *, limit: int = 20) -> list[tuple[str, str, bool]]:
        """(message_id, body, processed) of one chat's unanswered rows, in arrival order (rowid)."""
        rows = await self._all(
            "SELECT i.message_id, i.body, EXISTS (SELECT 1 FROM processed_messages p WHERE p.channel=i.channel "
            "AND p.message_id=i.message_id) FROM inbox i WHERE i.channel=? AND i.chat=? AND i.answered_at IS NULL "
            f"ORDER BY i.rowid LIMIT {int(limit)}",
            (channel, chat),
        )
        return [(r[0], r[1], bool(r[2])) for r in rows]

    async def unanswered_chats(self, channel: str, *, upto: int | None = None, limit: int = 200) -> list[str]:
        """The chats with an unanswered row (among the rows up to `upto`, a `last_inbound` value),
        the oldest waiting first."""
        sql = "SELECT chat, min(rowid) AS first FROM inbox WHERE channel=? AND chat IS NOT NULL AND answered_at IS NULL"
        params: list[Any] = [channel]
        if upto is not None:
            sql += " AND rowid <= ?"
            params.append(upto)
        rows = await self._all(sql + f" GROUP BY chat ORDER BY first LIMIT {int(limit)}", params)
        return [r[0] for r in rows]

    async def name_chats(self, channel: str, chats: Iterable[tuple[str, str]]) -> None:
        """Give (message_id, chat) rows kept without a chat (by one process alone, or before
        version 13) their chat, so any worker can take them."""
        await self._write_many(
            "UPDATE inbox SET chat=? WHERE channel=? AND message_id=? AND chat IS NULL",
            [(chat, channel, m) for m, chat in chats],
        )

    async def inbound_answered(self, channel: str, message_id: str) -> bool:
        """Whether a kept update is answered (or gone: pruned once answered)."""
        row = await self._one(
            "SELECT answered_at IS NOT NULL FROM inbox WHERE channel=? AND message_id=?", (channel, message_id)
        )
        return row is None or bool(row[0])

    async def unanswered_inbound(
        self, channel: str, *, after: InboxKey | None = None, upto: int | None = None, limit: int = 500
    ) -> list[tuple[str, str, bool, InboxKey]]:
        """(message_id, body, processed, key) of kept updates not answered yet, oldest first, from
        after the key `after` (keyset pagination on (received_at, rowid)), up to the row `upto`
        (a `last_inbound` value): either their turn never ran, or it ran and its replies may not
        have been sent."""
        sql = (
            "SELECT i.message_id, i.body, EXISTS (SELECT 1 FROM processed_messages p WHERE p.channel=i.channel "
            "AND p.message_id=i.message_id), i.received_at, i.rowid FROM inbox i "
            "WHERE i.channel=? AND i.answered_at IS NULL"
        )
        params: list[Any] = [channel]
        if after is not None:
            sql += " AND (i.received_at > ? OR (i.received_at = ? AND i.rowid > ?))"
            params += [after[0], after[0], after[1]]
        if upto is not None:
            sql += " AND i.rowid <= ?"
            params.append(upto)
        rows = await self._all(sql + f" ORDER BY i.received_at, i.rowid LIMIT {int(limit)}", params)
        return [(r[0], r[1], bool(r[2]), (r[3], r[4])) for r in rows]

    async def last_inbound(self) -> int:
        """Where the inbox ends now (its highest rowid, 0 if empty): rows kept later are above it."""
        row = await self._one("SELECT max(rowid) FROM inbox", ())
        return int(row[0] or 0) if row else 0

    async def mark_answered(self, channel: str, message_ids: Iterable[str], *, now: datetime | None = None) -> None:
        stamp = _ts(self._now(now))
        await self._write_many(
            "UPDATE inbox SET answered_at=? WHERE channel=? AND message_id=?",
            [(stamp, channel, m) for m in message_ids],
            light=True,  # lost in a power cut: the turn is replayed, finds its key, resends its replies
        )

    async def prune_inbox(self, channel: str | None = None, *, older_than: datetime) -> int:
        """Delete kept updates answered and received before `older_than` (one channel's, or all);
        an unanswered update is never deleted."""
        sql = "DELETE FROM inbox WHERE answered_at IS NOT NULL AND received_at < ?"
        if channel is None:
            return await self._exec(sql, (_ts(older_than),))
        return await self._exec(sql + " AND channel=?", (_ts(older_than), channel))

    async def forget_replies(self, *, older_than: datetime) -> int:
        """Empty the kept replies of messages handled before `older_than` whose inbox row (if any)
        is answered; the key stays, so a redelivery is still recognised."""
        return await self._exec(
            "UPDATE processed_messages SET replies=NULL WHERE replies IS NOT NULL AND processed_at < ? AND NOT EXISTS "
            + _UNANSWERED,
            (_ts(older_than),),
        )

    async def prune_processed(self, *, older_than: datetime) -> int:
        """Delete the keys of messages handled before `older_than` with no unanswered inbox row."""
        return await self._exec(
            "DELETE FROM processed_messages WHERE processed_at < ? AND NOT EXISTS " + _UNANSWERED, (_ts(older_than),)
        )


# An inbox row of this processed message whose replies may not have been sent yet.
_UNANSWERED = (
    "(SELECT 1 FROM inbox i WHERE i.channel=processed_messages.channel "
    "AND i.message_id=processed_messages.message_id AND i.answered_at IS NULL)"
)


class SqliteDeadLetters(_Repository):
    """Messages a channel delivered that the bot cannot read, parked for the back office."""

    __slots__ = ()

    async def park_message(
        self, channel: str, message_id: str, reason: str, body: str, *, notified: bool, now: datetime | None = None
    ) -> bool:
        """Park a message (once: False if it was parked before)."""
        return (
            await self._exec(
                "INSERT INTO dead_letters (channel, message_id, reason, body, notified, parked_at) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (channel, message_id, reason, body, int(notified), _ts(self._now(now))),
            )
            == 1
        )

    async def dead_letters(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first: channel, message_id, reason, body, notified, parked_at."""
        rows = await self._all(
            "SELECT channel, message_id, reason, body, notified, parked_at FROM dead_letters "
            f"ORDER BY parked_at DESC, rowid DESC LIMIT {int(limit)}",
            (),
        )
        keys = ("channel", "message_id", "reason", "body", "notified", "parked_at")
        return [dict(zip(keys, (*r[:4], bool(r[4]), _dt(r[5])), strict=True)) for r in rows]

    async def count_dead_letters(self) -> int:
        return int((await self._all("SELECT COUNT(*) FROM dead_letters", ()))[0][0])

    async def prune_dead_letters(self, *, older_than: datetime) -> int:
        return await self._exec("DELETE FROM dead_letters WHERE parked_at < ?", (_ts(older_than),))


class SqliteAgencies(_Repository):
    """Agencies (offices) by city."""

    __slots__ = ()

    async def upsert_agency(self, a: Agency) -> Upsert:
        key = fold(a.city)
        values = (a.city, a.name, a.address, a.phone, a.hours, a.city_ar, a.name_ar, a.address_ar, a.hours_ar)
        row = await self._one(f"SELECT {_AGENCY_COLS} FROM agencies WHERE city_key=? AND name=?", (key, a.name))
        if row is None:
            await self._exec(
                f"INSERT INTO agencies ({_AGENCY_COLS}, city_key) VALUES (?,?,?,?,?,?,?,?,?,?)", (*values, key)
            )
            return "inserted"
        if tuple(row) == values:
            return "unchanged"
        await self._exec(
            "UPDATE agencies SET city=?, address=?, phone=?, hours=?, city_ar=?, name_ar=?, address_ar=?, "
            "hours_ar=? WHERE city_key=? AND name=?",
            (a.city, a.address, a.phone, a.hours, a.city_ar, a.name_ar, a.address_ar, a.hours_ar, key, a.name),
        )
        return "updated"

    async def agencies(self, city: str | None = None) -> list[Agency]:
        if city is None:
            rows = await self._all(f"SELECT {_AGENCY_COLS} FROM agencies ORDER BY city_key, name")
        else:
            rows = await self._all(f"SELECT {_AGENCY_COLS} FROM agencies WHERE city_key=? ORDER BY name", (fold(city),))
        return [Agency(*r) for r in rows]

    async def agency_cities(self) -> list[str]:
        return [r[0] for r in await self._all("SELECT min(city) FROM agencies GROUP BY city_key ORDER BY city_key")]


class SqliteLegacy(_Repository):
    """The previous operators' references (issue 24), by their digits."""

    __slots__ = ()

    async def legacy_reference(self, key: str) -> tuple[str, str, str] | None:
        row = await self._one(
            "SELECT legacy_operator, reference, contract FROM legacy_references WHERE reference_key=?", (key,)
        )
        return (row[0], row[1], row[2]) if row is not None else None


class SqliteLearning(_Repository):
    """Messages the bot did not understand, masked, kept a while for the operator to label."""

    __slots__ = ()

    async def keep_unrecognised(
        self,
        text: str,
        *,
        lang: str,
        intent: str,
        confidence: float,
        channel: str,
        state: str,
        now: datetime | None = None,
    ) -> None:
        await self._exec(
            "INSERT INTO unrecognised (text, lang, intent, confidence, channel, state, seen_at) VALUES (?,?,?,?,?,?,?)",
            (text, lang, intent, confidence, channel, state, _ts(self._now(now))),
            light=True,  # kept with the turn's key: lost with it, kept again when it is replayed
        )

    async def unrecognised(self, *, since: datetime | None = None) -> list[dict[str, Any]]:
        rows = await self._all(
            "SELECT text, lang, intent, confidence, channel, state, seen_at FROM unrecognised "
            "WHERE seen_at >= ? ORDER BY seen_at, id",
            (_ts(since) if since else "",),
        )
        keys = ("text", "lang", "intent", "confidence", "channel", "state", "seen_at")
        return [dict(zip(keys, (*r[:6], _dt(r[6])), strict=True)) for r in rows]

    async def prune_unrecognised(self, *, older_than: datetime) -> int:
        return await self._exec("DELETE FROM unrecognised WHERE seen_at < ?", (_ts(older_than),))


class SqliteMedia(_Repository):
    """Meter photos kept as files named by their SHA-256 (storage/media.py): when each arrived."""

    __slots__ = ()

    async def keep_media(self, sha256: str, *, size: int, format: str, now: datetime | None = None) -> None:
        await self._exec(
            "INSERT INTO media (sha256, bytes, format, received_at) VALUES (?,?,?,?) "
            "ON CONFLICT (sha256) DO UPDATE SET received_at = max(media.received_at, excluded.received_at)",
            (sha256, size, format, _ts(self._now(now))),
        )

    async def prune_media(self, *, unused_before: datetime, kept_before: datetime) -> list[str]:
        cursor = await self._write(
            "DELETE FROM media WHERE received_at < ? AND NOT EXISTS (SELECT 1 FROM readings r "
            "WHERE r.photo_sha256 = media.sha256 AND (r.review = 1 OR r.submitted_at >= ?)) RETURNING sha256",
            (_ts(unused_before), _ts(kept_before)),
        )
        return sorted(r[0] for r in cursor.fetchall())


class SqliteReferences(_Repository):
    """Per-prefix, per-year reference sequences."""

    __slots__ = ()

    async def next_reference(self, prefix: str, year: int) -> str:
        """`DF-2026-000123`: a per-prefix, per-year sequence, allocated inside the caller's transaction."""
        name = f"{prefix}-{year}"
        cursor = await self._write(
            "INSERT INTO counters (name, value) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
            (name,),
        )
        return f"{name}-{cursor.fetchone()[0]:06d}"


_STAGE = "temp.import_stage"
# Per kind, the staged columns (c0, c1, …) in the order of its table's columns.
_STAGE_WIDTH = {"contracts": 13, "bills": 12, "readings": 4, "agencies": 10, "legacy": 4}  # agencies: + city_key
_LEGACY_COLS = "reference_key, legacy_operator, reference, contract"
_AGENCY_STAGE_COLS = _AGENCY_COLS + ", city_key"


def _cols(text: str) -> list[str]:
    return [c.strip() for c in text.split(",")]


def _differs(a: str, b: str, cols: list[str]) -> str:
    """SQL: the row values `a.cols` and `b.cols` differ (NULLs compared as values)."""
    return f"({', '.join(f'{a}.{c}' for c in cols)}) IS NOT ({', '.join(f'{b}.{c}' for c in cols)})"


class SqliteImports(_Repository):
    """Bulk loads (storage/csvio.py): a file's rows staged in a TEMP table of this connection
    (written without the database's write lock, spilled to a temporary file, so memory stays
    flat), checked for duplicates there, then merged with INSERT … SELECT upserts in one
    statement per table: nothing goes through the read memo or the read cache row by row."""

    __slots__ = ()

    async def stage_open(self, kind: str) -> None:
        width = _STAGE_WIDTH[kind]
        await self._write(f"DROP TABLE IF EXISTS {_STAGE}")
        await self._write(
            f"CREATE TEMP TABLE import_stage (line INTEGER PRIMARY KEY, key TEXT, "
            f"{', '.join(f'c{i}' for i in range(width))})"
        )

    async def stage_rows(self, rows: Sequence[tuple]) -> None:
        if rows:
            marks = ",".join("?" * len(rows[0]))
            await self._write_many(f"INSERT INTO temp.import_stage VALUES ({marks})", rows)

    async def stage_duplicates(self, limit: int) -> tuple[list[tuple[int, int]], int]:
        sql = (
            f"SELECT s.line, d.first FROM {_STAGE} s JOIN (SELECT key, min(line) AS first FROM {_STAGE} "
            "WHERE key IS NOT NULL GROUP BY key HAVING count(*) > 1) d ON s.key = d.key WHERE s.line > d.first"
        )
        total = (await self._bulk(f"SELECT count(*) FROM ({sql}) AS repeated"))[0][0]
        if not total:
            return [], 0
        rows = await self._bulk(f"{sql} ORDER BY s.line LIMIT ?", (limit,))
        return [(r[0], r[1]) for r in rows], int(total)

    async def contract_dials(self, numbers: Iterable[str]) -> dict[str, int]:
        rows = await self._bulk(
            "SELECT contract, meter_digits FROM contracts WHERE contract IN (SELECT value FROM json_each(?))",
            (orjson.dumps(list(numbers)).decode(),),
        )
        return {r[0]: r[1] for r in rows}

    async def stage_close(self) -> None:
        await self._write(f"DROP TABLE IF EXISTS {_STAGE}")

    async def merge_stage(self, kind: str, *, now: datetime) -> dict[str, int]:
        stamp = _ts(now)
        if kind == "bills":
            counts = await self._merge_keyed("INSERT INTO bills", _cols(_BILL_COLS), ["bill_number"], stamp)
        elif kind == "contracts":
            counts = await self._merge_keyed("INSERT INTO contracts", _cols(_CONTRACT_COLS), ["contract"], stamp)
            # each contract's last index, as an actual reading (upsert_contract does the same)
            await self._merge_readings("s.c0", "s.c10", "s.c9", "'actual'", stamp)
        elif kind == "readings":
            counts = await self._merge_readings("s.c0", "s.c1", "s.c2", "s.c3", stamp)
        elif kind == "legacy":
            counts = await self._merge_keyed(
                "INSERT INTO legacy_references", _cols(_LEGACY_COLS), ["reference_key"], stamp
            )
        else:
            agencies = _cols(_AGENCY_STAGE_COLS)
            counts = await self._merge_keyed("INSERT INTO agencies", agencies, ["city_key", "name"], stamp)
        return counts

    async def _merge_keyed(self, insert: str, cols: list[str], keys: list[str], stamp: str) -> dict[str, int]:
        """Upsert (`insert`: "INSERT INTO table") into a table with a unique key; a row whose every
        column is as staged is not written."""
        table = insert.split()[-1]
        staged = [f"c{i}" for i in range(len(cols))]
        s_cols = {c: f"s.{s}" for c, s in zip(cols, staged, strict=True)}
        join = " AND ".join(f"t.{k} = {s_cols[k]}" for k in keys)
        data = [c for c in cols if c not in keys and c != "city_key"]
        compare = [c for c in cols if c not in keys]  # (an agency's city may change case: city_key is a key)
        inserted = (
            await self._bulk(f"SELECT count(*) FROM {_STAGE} s WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {join})")
        )[0][0]
        total = (await self._bulk(f"SELECT count(*) FROM {_STAGE}"))[0][0]
        stamped = table != "agencies"
        sets = [f"{c}=excluded.{c}" for c in data] + (["updated_at=excluded.updated_at"] if stamped else [])
        # The rows it changes are those inserted plus those updated (a row as staged is not:
        # the WHERE); the staged keys are unique (stage_duplicates refused the file otherwise),
        # so the updated are counted without a pass of their own comparing every existing row.
        written = await self._exec(
            f"{insert} ({', '.join(cols)}{', updated_at' if stamped else ''}) "
            f"SELECT {', '.join(staged)}{', ?' if stamped else ''} FROM {_STAGE} WHERE true "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(sets)} "
            f"WHERE {_differs(table, 'excluded', compare)}",
            (stamp,) if stamped else (),
        )
        changed = written - inserted
        return {"inserted": inserted, "updated": changed, "unchanged": total - inserted - changed}

    async def _merge_readings(self, contract: str, day: str, index: str, source: str, stamp: str) -> dict[str, int]:
        """History readings (upsert_history_reading): keyed by contract, day and source among the valid ones."""
        match = f"r.contract = {contract} AND r.reading_date = {day} AND r.source = {source} AND r.status = 'valid'"
        missing = f"NOT EXISTS (SELECT 1 FROM readings r WHERE {match})"
        inserted = (await self._bulk(f"SELECT count(*) FROM {_STAGE} s WHERE {missing}"))[0][0]
        changed = (
            await self._bulk(
                f"SELECT count(*) FROM {_STAGE} s JOIN readings r ON {match} WHERE r.index_value IS NOT {index}"
            )
        )[0][0]
        total = (await self._bulk(f"SELECT count(*) FROM {_STAGE}"))[0][0]
        await self._write(
            f"UPDATE readings AS r SET index_value = {index} FROM {_STAGE} s WHERE {match} "
            f"AND r.index_value IS NOT {index}"
        )
        await self._write(
            "INSERT INTO readings (contract, reading_date, index_value, source, submitted_at) "
            f"SELECT {contract}, {day}, {index}, {source}, ? FROM {_STAGE} s WHERE {missing}",
            (stamp,),
        )
        return {"inserted": inserted, "updated": changed, "unchanged": total - inserted - changed}


class SqliteReminders(_Repository):
    """Consent to proactive messages and the reminders queued (issue 22, migration 0011)."""

    __slots__ = ()

    async def reminder_consent(self, channel: str, user_id: str) -> ReminderConsent | None:
        row = await self._one(
            "SELECT kinds, asked_at, answered_at, how FROM reminder_consents WHERE channel=? AND user_id=?",
            (channel, user_id),
        )
        if row is None:
            return None
        kinds = tuple(k for k in row[0].split(",") if k)
        return ReminderConsent(channel, user_id, kinds, datetime.fromisoformat(row[1]), _dt(row[2]), row[3])

    async def set_reminder_consent(
        self, channel: str, user_id: str, kinds: Sequence[str], *, how: str, now: datetime | None = None
    ) -> None:
        stamp = _ts(self._now(now))
        if how == "asked":
            await self._exec(
                "INSERT INTO reminder_consents (channel, user_id, kinds, asked_at) VALUES (?,?,'',?) "
                "ON CONFLICT (channel, user_id) DO NOTHING",
                (channel, user_id, stamp),
            )
            return
        if how in ("shown", "shown_twice"):
            # The question put to the chat (not an answer): when, and whether for the last time.
            await self._exec(
                "UPDATE reminder_consents SET how=?, asked_at=? WHERE channel=? AND user_id=? AND answered_at IS NULL",
                (how, stamp, channel, user_id),
            )
            return
        await self._exec(
            "INSERT INTO reminder_consents (channel, user_id, kinds, asked_at, answered_at, how) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT (channel, user_id) DO UPDATE SET kinds=excluded.kinds, "
            "answered_at=excluded.answered_at, how=excluded.how",
            (channel, user_id, ",".join(kinds), stamp, stamp, how),
        )

    _TARGETS = (
        "SELECT l.channel, l.user_id, l.contract, coalesce(s.lang, c.language, 'fr'), l.verified_at, c.city "
        "FROM chat_links l JOIN reminder_consents r ON r.channel=l.channel AND r.user_id=l.user_id "
        "JOIN contracts c ON c.contract=l.contract "
        "LEFT JOIN sessions s ON s.channel=l.channel AND s.user_id=l.user_id "
        "WHERE r.answered_at IS NOT NULL AND (',' || r.kinds || ',') LIKE ?"
    )

    @staticmethod
    def _target(r: tuple) -> ReminderTarget:
        lang = r[3] if r[3] in ("ar", "fr") else "fr"
        return ReminderTarget(r[0], r[1], r[2], lang, datetime.fromisoformat(r[4]), r[5])

    async def reminder_targets(
        self, kind: str, *, after: str | None = None, limit: int | None = None
    ) -> list[ReminderTarget]:
        sql, params = self._TARGETS, [f"%,{kind},%"]
        if after is not None:
            sql += " AND l.contract > ?"
            params.append(after)
        sql += " ORDER BY l.contract, l.verified_at DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._target(r) for r in await self._bulk(sql, params)]

    async def queue_reminder(
        self,
        *,
        contract: str,
        occasion: str,
        target: ReminderTarget,
        kind: str,
        payload: dict[str, Any],
        not_before: datetime,
        now: datetime | None = None,
    ) -> int | None:
        stamp = _ts(self._now(now))
        claimed = await self._exec(
            "INSERT INTO reminders_sent (contract, occasion, kind, channel, user_id, queued_at) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT (contract, occasion) DO NOTHING",
            (contract, occasion, kind, target.channel, target.user_id, stamp),
        )
        if not claimed:
            return None
        outbox_id = await self._insert(
            "INSERT INTO outbox (channel, user_id, lang, kind, payload, dedupe_key, next_attempt_at, created_at) "
            "VALUES (?,?,?,'reminder',?,?,?,?)",
            (
                target.channel,
                target.user_id,
                target.lang,
                _json({**payload, "kind": kind, "contract": contract}),
                f"remind:{contract}:{occasion}",
                _ts(not_before),
                stamp,
            ),
            key=(target.channel, target.user_id),
        )
        await self._exec(
            "UPDATE reminders_sent SET outbox_id=? WHERE contract=? AND occasion=?", (outbox_id, contract, occasion)
        )
        return outbox_id

    async def reminder_allowed(self, channel: str, user_id: str, contract: str | None, kind: str) -> bool:
        sql = "SELECT 1 FROM chat_links l JOIN reminder_consents r ON r.channel=l.channel AND r.user_id=l.user_id "
        sql += "WHERE l.channel=? AND l.user_id=? AND r.answered_at IS NOT NULL AND (',' || r.kinds || ',') LIKE ?"
        params: list[Any] = [channel, user_id, f"%,{kind},%"]
        if contract is not None:
            sql += " AND l.contract=?"
            params.append(contract)
        return bool(await self._bulk(sql + " LIMIT 1", params))

    async def add_notice(
        self, *, key: str, city: str, service: str | None, text_ar: str, text_fr: str, now: datetime | None = None
    ) -> int:
        await self._exec(
            "INSERT INTO notices (key, city, service, text_ar, text_fr, created_at) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT (key) DO NOTHING",
            (key, city, service, text_ar, text_fr, _ts(self._now(now))),
        )
        row = await self._bulk("SELECT id FROM notices WHERE key=?", (key,))
        return int(row[0][0])

    async def notice_targets(self, service: str | None) -> list[ReminderTarget]:
        sql = self._TARGETS
        params: list[Any] = ["%,notice,%"]
        if service is not None:
            sql += " AND c.service=?"
            params.append(service)
        return [self._target(r) for r in await self._bulk(sql + " ORDER BY l.channel, l.user_id, l.contract", params)]

    async def reminder_queued(self, contract: str, occasion: str) -> bool:
        return bool(
            await self._bulk("SELECT 1 FROM reminders_sent WHERE contract=? AND occasion=?", (contract, occasion))
        )

    async def queue_notice(
        self,
        notice_id: int,
        target: ReminderTarget,
        *,
        payload: dict[str, Any],
        not_before: datetime,
        now: datetime | None = None,
    ) -> int | None:
        stamp = _ts(self._now(now))
        cursor = await self._write(
            "INSERT INTO outbox (channel, user_id, lang, kind, payload, dedupe_key, next_attempt_at, created_at) "
            "VALUES (?,?,?,'notice',?,?,?,?) ON CONFLICT (dedupe_key) DO NOTHING",
            (
                target.channel,
                target.user_id,
                target.lang,
                _json({**payload, "notice": notice_id, "contract": target.contract}),
                f"notice:{notice_id}:{target.channel}:{target.user_id}",
                _ts(not_before),
                stamp,
            ),
            key=(target.channel, target.user_id),
        )
        return int(cast(int, cursor.lastrowid)) if cursor.rowcount == 1 else None


from .review import SqliteHandoffs, SqliteReviews, SqliteStatistics  # noqa: E402  (issue 20; it builds on the classes above)

# The workspace's repository builds on this module's helpers: imported once they exist.
from .workspace import SqliteWorkspace  # noqa: E402


class SqliteTx(
    SqliteContracts,
    SqliteLinks,
    SqliteReadings,
    SqliteBills,
    SqliteSessions,
    SqliteRequests,
    SqliteOutbox,
    SqliteAudit,
    SqliteInbox,
    SqliteDeadLetters,
    SqliteAgencies,
    SqliteLegacy,
    SqliteLearning,
    SqliteMedia,
    SqliteReferences,
    SqliteImports,
    SqliteReviews,
    SqliteHandoffs,
    SqliteStatistics,
    SqliteWorkspace,
    SqliteReminders,
):
    """Every repository, bound to one open transaction (satisfies storage.Tx)."""

    __slots__ = ("_c", "_cache", "_clock", "_held", "_held_ops", "_seen")

    def __init__(
        self,
        conn: Connection,
        cache: ReadCache | None = None,
        clock: Clock = system_clock,
        held: HeldChatLog | None = None,
    ) -> None:
        self._c = conn
        # The chat lines this process holds instead of writing (chatlog.py), and what this
        # transaction adds to or takes from them once it commits (`_settle_held`).
        self._held = held
        self._held_ops: list[tuple[tuple[str, str], list | None]] = []
        self._clock = clock  # the store's clock: a write given no `now` is stamped by it
        # Reads repeated within one transaction (a turn asks for the linked contracts or the
        # readings of a contract several times) are answered from memory. Any write empties it;
        # no other writer can change what this transaction sees (BEGIN IMMEDIATE, or a snapshot).
        self._seen = {}
        # In a write transaction, tagged reads are kept across transactions (cache.py).
        self._cache = cache
