"""The SQLite side of issue 20's back office: readings under review, human handoffs, the recent
messages of each chat, and the workspace's statistics (composed into SqliteTx)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from ..review_records import ChatLine, Handoff, ReviewItem
from .repositories import _READING_COLS, _dt, _reading, _Repository, _ts

_R_COLS = ", ".join("r." + c.strip() for c in _READING_COLS.split(","))
_REVIEW_SQL = (
    f"SELECT {_R_COLS}, (SELECT p.reference FROM readings p WHERE p.replaced_by = r.id LIMIT 1), "
    "c.meter_digits, c.service, c.tariff, v.outcome, v.reviewed_by, v.reviewed_at, v.note, "
    "v.original_index, v.corrected_index "
    "FROM readings r JOIN contracts c ON c.contract = r.contract "
    "LEFT JOIN reading_reviews v ON v.reading_id = r.id WHERE r.source = 'customer'"
)
# The candidates through the two partial indexes (0009_review.sql), then what still waits.
_FLAGGED = (
    " AND r.id IN (SELECT id FROM readings INDEXED BY readings_flagged WHERE source = 'customer' "
    "AND (review = 1 OR rollover = 1) "
    "UNION SELECT replaced_by FROM readings WHERE replaced_by IS NOT NULL) "
    "AND r.status = 'valid' AND v.reading_id IS NULL"
)
_HANDOFF_COLS = (
    "id, channel, user_id, lang, contract, status, requested_at, taken_by, taken_at, last_agent_at, "
    "closed_at, closed_by, close_reason"
)
# Read on every turn: built once (an f-string in the call is built, and hashed for the cache, each time).
_CHAT_HANDOFF_SQL = f"SELECT {_HANDOFF_COLS} FROM handoffs WHERE channel = ? AND user_id = ? AND status != 'closed'"


def _item(row: tuple) -> ReviewItem:
    reading = _reading(row[:19])
    replaces = row[19]
    flags = tuple(
        name
        for name, on in (
            (reading.review_reason or "outlier", reading.review or bool(reading.review_reason)),
            ("rollover", reading.rollover),
            ("replaces", replaces is not None),
        )
        if on
    )
    return ReviewItem(reading, flags, replaces, row[20], row[21], row[22], row[23], row[24], _dt(row[25]), *row[26:29])


def _handoff(r: tuple) -> Handoff:
    return Handoff(
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        datetime.fromisoformat(r[6]),
        r[7],
        _dt(r[8]),
        _dt(r[9]),
        _dt(r[10]),
        r[11],
        r[12],
    )


class SqliteReviews(_Repository):
    """Customer readings under review (reading_reviews, 0009_review.sql)."""

    __slots__ = ()

    async def review_items(
        self, *, flagged: bool = True, since: date | None = None, limit: int = 500, newest_first: bool = False
    ) -> list[ReviewItem]:
        sql, params = _REVIEW_SQL, []
        if flagged:
            sql += _FLAGGED
        if since is not None:
            sql += " AND r.reading_date >= ?"
            params.append(since.isoformat())
        order = "DESC" if newest_first else ""
        sql += f" ORDER BY r.submitted_at {order}, r.id {order} LIMIT {int(limit)}"
        return [_item(r) for r in await self._bulk(sql, params)]

    async def review_item(self, reading_id: int) -> ReviewItem | None:
        rows = await self._bulk(_REVIEW_SQL + " AND r.id = ?", (reading_id,))
        return _item(rows[0]) if rows else None

    async def reading_id_of(self, reference: str) -> int | None:
        rows = await self._bulk("SELECT id FROM readings WHERE reference = ?", (reference,))
        return int(rows[0][0]) if rows else None

    async def record_review(
        self,
        reading_id: int,
        outcome: str,
        *,
        actor: str,
        note: str | None,
        original_index: int,
        index: int | None = None,
        consumption: int | None = None,
        rollover: bool = False,
        now: datetime | None = None,
    ) -> None:
        """The outcome, and what it changes on the reading: checked (review 0), its index
        corrected, or no longer valid (with the reading it had replaced valid again)."""
        row = await self._one("SELECT contract FROM readings WHERE id = ?", (reading_id,))
        if row is None:
            raise KeyError(reading_id)
        contract = row[0]
        await self._exec(
            "INSERT INTO reading_reviews (reading_id, outcome, reviewed_by, reviewed_at, note, original_index, "
            "corrected_index) VALUES (?,?,?,?,?,?,?)",
            (reading_id, outcome, actor, _ts(self._now(now)), note, original_index, index),
        )
        if outcome == "accepted":
            await self._exec("UPDATE readings SET review = 0 WHERE id = ?", (reading_id,), key=contract)
        elif outcome == "corrected":
            await self._exec(
                "UPDATE readings SET review = 0, index_value = ?, consumption = ?, rollover = ? WHERE id = ?",
                (index, consumption, int(rollover), reading_id),
                key=contract,
            )
        else:
            await self._exec(
                "UPDATE readings SET review = 0, status = 'replaced' WHERE id = ?", (reading_id,), key=contract
            )
            # The reading it had replaced stands again, unless another valid one took its day.
            await self._exec(
                "UPDATE readings SET status = 'valid', replaced_by = NULL WHERE replaced_by = ? AND NOT EXISTS "
                "(SELECT 1 FROM readings o WHERE o.contract = readings.contract AND o.reading_date = "
                "readings.reading_date AND o.source = readings.source AND o.status = 'valid')",
                (reading_id,),
                key=contract,
            )


class SqliteHandoffs(_Repository):
    """Chats handed to a human (handoffs) and the chats' recent messages (chat_messages)."""

    __slots__ = ()

    async def open_handoff(
        self, channel: str, user_id: str, *, lang: str, contract: str | None, now: datetime | None = None
    ) -> int | None:
        """A new waiting handoff; None if the chat has one open already."""
        cursor = await self._write(
            "INSERT INTO handoffs (channel, user_id, lang, contract, requested_at) VALUES (?,?,?,?,?) "
            "ON CONFLICT DO NOTHING",
            (channel, user_id, lang, contract, _ts(self._now(now))),
        )
        opened = int(cursor.lastrowid) if cursor.rowcount and cursor.lastrowid is not None else None
        if opened is not None and self._held is not None:
            # What led to the handoff, held in memory until now (chatlog.py): the agent reads it.
            chat = (channel, user_id)
            await self._insert_chat_lines(chat, self._held_lines(chat))
            self._held_ops[:] = [op for op in self._held_ops if op[0] != chat] + [(chat, None)]
        return opened

    async def handoff(self, handoff_id: int) -> Handoff | None:
        rows = await self._bulk(f"SELECT {_HANDOFF_COLS} FROM handoffs WHERE id = ?", (handoff_id,))
        return _handoff(rows[0]) if rows else None

    async def chat_handoff(self, channel: str, user_id: str) -> Handoff | None:
        """The chat's open handoff (waiting or taken), if any: read on every turn (a partial index)."""
        found = await self._all(
            _CHAT_HANDOFF_SQL,
            (channel, user_id),
            _handoff,
            tag=("handoff", (channel, user_id)),
        )
        return found[0] if found else None

    async def handoffs(self, *, statuses: Iterable[str] = ("waiting", "taken"), limit: int = 200) -> list[Handoff]:
        wanted = list(statuses)
        return [
            _handoff(r)
            for r in await self._bulk(
                f"SELECT {_HANDOFF_COLS} FROM handoffs WHERE status IN ({','.join('?' * len(wanted))}) "
                f"ORDER BY requested_at, id LIMIT {int(limit)}",
                wanted,
            )
        ]

    async def update_handoff(self, handoff_id: int, *, expected: str, **fields: Any) -> bool:
        """Set columns of a handoff still in status `expected`; True if it was."""
        allowed = {"status", "taken_by", "taken_at", "last_agent_at", "closed_at", "closed_by", "close_reason"}
        if not fields or set(fields) - allowed:
            raise ValueError(f"handoff fields: {sorted(fields)}")
        values = [_ts(v) if isinstance(v, datetime) else v for v in fields.values()]
        return bool(
            await self._exec(
                f"UPDATE handoffs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ? AND status = ?",
                (*values, handoff_id, expected),
            )
        )

    async def log_chat(
        self, channel: str, user_id: str, lines: Iterable[tuple[str, str | None, str]], *, now: datetime
    ) -> None:
        """Append (sender, author, text) lines: this runs on every turn. A chat with no open
        handoff has them held in memory where the store holds them (chatlog.py: SQLite), else
        they are written in one statement. Light writes: a lost line of this log after a power
        cut breaks no promise. The chat's older lines go at the daily prune (`prune_chat_log`)."""
        stamp = _ts(now)
        rows = [(stamp, sender, author, text) for sender, author, text in lines]
        if not rows:
            return
        chat = (channel, user_id)
        if self._held is not None and await self.chat_handoff(channel, user_id) is None:
            self._held_ops.append((chat, rows))
            return
        await self._insert_chat_lines(chat, rows)

    async def _insert_chat_lines(self, chat: tuple[str, str], rows: list) -> None:
        if rows:
            await self._write(
                "INSERT INTO chat_messages (channel, user_id, at, sender, author, text) VALUES "
                + ",".join(["(?,?,?,?,?,?)"] * len(rows)),
                tuple(v for row in rows for v in (*chat, *row)),
                light=True,
            )

    def _held_lines(self, chat: tuple[str, str]) -> list:
        """The chat's lines held in memory, with those this transaction adds, oldest first."""
        assert self._held is not None
        lines = self._held.lines(chat)
        for held_chat, rows in self._held_ops:
            if held_chat == chat:
                lines = lines + rows if rows is not None else []
        return lines

    def _settle_held(self) -> None:
        """The transaction committed: what it held or flushed applies (called by the store)."""
        if self._held is not None:
            for chat, rows in self._held_ops:
                if rows is None:
                    self._held.drop(chat)
                else:
                    self._held.add(chat, rows)
        self._held_ops.clear()

    async def chat_log(self, channel: str, user_id: str, *, limit: int = 50) -> list[ChatLine]:
        """The chat's last `limit` lines, oldest first."""
        rows = await self._bulk(
            "SELECT at, sender, author, text FROM chat_messages WHERE channel = ? AND user_id = ? "
            f"ORDER BY id DESC LIMIT {int(limit)}",
            (channel, user_id),
        )
        rows.reverse()
        if self._held is not None:  # held lines are newer than any written (chatlog.py)
            rows = (rows + self._held_lines((channel, user_id)))[-int(limit) :] if limit > 0 else []
        return [ChatLine(datetime.fromisoformat(r[0]), r[1], r[2], r[3]) for r in rows]

    async def prune_chat_log(self, *, older_than: datetime, keep: int) -> int:
        """Forget the lines older than `older_than`, and all but each chat's last `keep`."""
        old = await self._exec("DELETE FROM chat_messages WHERE at < ?", (_ts(older_than),))
        extra = await self._exec(
            "DELETE FROM chat_messages WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER "
            "(PARTITION BY channel, user_id ORDER BY id DESC) AS n FROM chat_messages) AS ranked WHERE n > ?)",
            (keep,),
        )
        held = self._held.prune(_ts(older_than), keep) if self._held is not None else 0
        return old + extra + held


class SqliteStatistics(_Repository):
    """The figures of the workspace's statistics page, each one grouped read."""

    __slots__ = ()

    async def readings_by_day(self, *, since: datetime) -> list[tuple[str, str, int]]:
        """(reading_date, channel, count) of customer readings submitted since `since`."""
        rows = await self._bulk(
            "SELECT reading_date, coalesce(channel, '-'), count(*) FROM readings INDEXED BY readings_customer_days "
            "WHERE source = 'customer' AND submitted_at >= ? GROUP BY reading_date, channel "
            "ORDER BY reading_date, channel",
            (_ts(since),),
        )
        return [(r[0], r[1], int(r[2])) for r in rows]

    async def cycle_sources(self, *, first: date, last: date) -> dict[str, int]:
        """Contracts with a valid reading dated in [first, last], by source (a contract counts
        once per source), from the covering index readings_cycle; and `postpaid`, the contracts to read."""
        out: dict[str, int] = {}
        for source in ("customer", "estimated", "actual"):
            rows = await self._bulk(
                "SELECT count(DISTINCT contract) FROM readings INDEXED BY readings_cycle "
                "WHERE status = 'valid' AND source = ? AND reading_date BETWEEN ? AND ?",
                (source, first.isoformat(), last.isoformat()),
            )
            out[source] = int(rows[0][0])
        rows = await self._bulk("SELECT count(*) FROM contracts WHERE meter_kind = 'postpaid'")
        out["postpaid"] = int(rows[0][0])
        return out

    async def request_figures(self, *, decided_since: datetime) -> dict[str, Any]:
        """Requests by (kind, status), and (kind, hours to decide) of those decided since."""
        counts = await self._bulk("SELECT kind, status, count(*) FROM requests GROUP BY kind, status ORDER BY kind")
        decided = await self._bulk(
            "SELECT kind, (julianday(decided_at) - julianday(created_at)) * 24 FROM requests "
            "WHERE status IN ('approved', 'rejected') AND decided_at >= ?",
            (_ts(decided_since),),
        )
        return {
            "counts": [(r[0], r[1], int(r[2])) for r in counts],
            "hours": [(r[0], float(r[1])) for r in decided if r[1] is not None],
        }

    async def plan_figures(self, *, today: date) -> dict[str, int]:
        """Approved instalment plans and deferrals: how many, the arrears they cover (centimes),
        and what is still scheduled from today on."""
        rows = await self._bulk(
            "SELECT kind, count(*), coalesce(sum(amount), 0) FROM requests "
            "WHERE status = 'approved' AND kind IN ('instalment', 'deferral') GROUP BY kind"
        )
        out = {"instalment": 0, "instalment_amount": 0, "deferral": 0, "deferral_amount": 0}
        for kind, count, amount in rows:
            out[kind], out[f"{kind}_amount"] = int(count), int(amount)
        due = await self._bulk(
            "SELECT coalesce(sum(l.amount), 0) FROM instalment_lines l JOIN requests q ON q.id = l.request_id "
            "WHERE q.status = 'approved' AND l.due_date >= ?",
            (today.isoformat(),),
        )
        out["scheduled_ahead"] = int(due[0][0])
        return out

    async def audit_counts(self, actions: Iterable[str], *, since: datetime) -> dict[str, int]:
        wanted = list(actions)
        rows = await self._bulk(
            f"SELECT action, count(*) FROM audit_log WHERE action IN ({','.join('?' * len(wanted))}) AND at >= ? "
            "GROUP BY action",
            (*wanted, _ts(since)),
        )
        found = {r[0]: int(r[1]) for r in rows}
        return {a: found.get(a, 0) for a in wanted}

    async def frequent_unrecognised(self, *, since: datetime, limit: int = 10) -> list[tuple[str, str, int]]:
        """(masked text, lang, times) of the messages most often not understood since `since`."""
        rows = await self._bulk(
            "SELECT text, lang, count(*) AS n FROM unrecognised WHERE seen_at >= ? GROUP BY text, lang "
            f"ORDER BY n DESC, text LIMIT {int(limit)}",
            (_ts(since),),
        )
        return [(r[0], r[1], int(r[2])) for r in rows]
