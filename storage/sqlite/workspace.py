"""The web workspace's SQL (bot/web/): accounts, web sessions, the sign-in throttle, its
settings, the request queue and the customer search (storage/protocols.py WorkspaceRepository)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from ..records import Account, ChatLink, Contract, QueueRow
from .repositories import _CONTRACT_COLS, _REQUEST_COLS, SqliteRequests, _contract, _dt, _Repository, _ts

_ACCOUNT_COLS = "name, role, password_hash, disabled, created_at, updated_at"


def _account(r: tuple) -> Account:
    return Account(r[0], r[1], r[2], bool(r[3]), datetime.fromisoformat(r[4]), datetime.fromisoformat(r[5]))


def _like(text: str) -> str:
    """`text` as a LIKE pattern matching it anywhere, its own % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class SqliteWorkspace(_Repository):
    """Accounts, web sessions, sign-in failures, settings, the queue and the customer search."""

    __slots__ = ()

    # ---- accounts
    async def add_account(self, name: str, role: str, password_hash: str, *, now: datetime | None = None) -> bool:
        stamp = _ts(self._now(now))
        return (
            await self._exec(
                "INSERT INTO accounts (name, role, password_hash, created_at, updated_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT (name) DO NOTHING",
                (name, role, password_hash, stamp, stamp),
            )
            == 1
        )

    async def account(self, name: str) -> Account | None:
        row = await self._one(f"SELECT {_ACCOUNT_COLS} FROM accounts WHERE name = ?", (name,))
        return _account(row) if row else None

    async def accounts(self) -> list[Account]:
        return await self._all(f"SELECT {_ACCOUNT_COLS} FROM accounts ORDER BY name", (), _account)

    async def update_account(
        self,
        name: str,
        *,
        password_hash: str | None = None,
        disabled: bool | None = None,
        now: datetime | None = None,
    ) -> bool:
        changed = await self._exec(
            "UPDATE accounts SET password_hash = coalesce(?, password_hash), disabled = coalesce(?, disabled), "
            "updated_at = ? WHERE name = ?",
            (password_hash, None if disabled is None else int(disabled), _ts(self._now(now)), name),
        )
        return changed == 1

    # ---- web sessions
    async def add_web_session(
        self, token_hash: str, account: str, address: str, *, expires_at: datetime, now: datetime | None = None
    ) -> None:
        await self._exec(
            "INSERT INTO web_sessions (token_hash, account, address, created_at, expires_at) VALUES (?,?,?,?,?)",
            (token_hash, account, address, _ts(self._now(now)), _ts(expires_at)),
        )

    async def web_session(self, token_hash: str, *, now: datetime | None = None) -> Account | None:
        """The account of a session that has not expired, if the account is not disabled."""
        row = await self._one(
            f"SELECT {', '.join('a.' + c.strip() for c in _ACCOUNT_COLS.split(','))} FROM web_sessions s "
            "JOIN accounts a ON a.name = s.account WHERE s.token_hash = ? AND s.expires_at > ? AND a.disabled = 0",
            (token_hash, _ts(self._now(now))),
        )
        return _account(row) if row else None

    async def end_web_sessions(
        self, *, token_hash: str | None = None, account: str | None = None, now: datetime | None = None
    ) -> int:
        """Delete one session, every session of an account, and (always) the expired ones."""
        ended = 0
        if token_hash is not None:
            ended += await self._exec("DELETE FROM web_sessions WHERE token_hash = ?", (token_hash,))
        if account is not None:
            ended += await self._exec("DELETE FROM web_sessions WHERE account = ?", (account,))
        await self._exec("DELETE FROM web_sessions WHERE expires_at <= ?", (_ts(self._now(now)),))
        return ended

    # ---- the sign-in throttle
    async def add_signin_failure(self, account: str, address: str, *, now: datetime | None = None) -> None:
        await self._exec(
            "INSERT INTO signin_failures (account, address, at) VALUES (?,?,?)",
            (account, address, _ts(self._now(now))),
        )

    async def signin_failures(
        self, *, since: datetime, account: str | None = None, address: str | None = None
    ) -> tuple[int, datetime | None]:
        """How many failures since `since` for that account name (or from that address), and the oldest's time."""
        column, value = ("account", account) if account is not None else ("address", address)
        row = await self._one(
            f"SELECT count(*), min(at) FROM signin_failures WHERE {column} = ? AND at > ?", (value, _ts(since))
        )
        return (int(row[0]), _dt(row[1])) if row else (0, None)

    async def clear_signin_failures(self, account: str, *, older_than: datetime) -> None:
        """A signed-in account's own failures, and everyone's older than `older_than`."""
        await self._exec("DELETE FROM signin_failures WHERE account = ? OR at <= ?", (account, _ts(older_than)))

    # ---- settings
    async def workspace_setting(self, name: str) -> str | None:
        row = await self._one("SELECT value FROM workspace_settings WHERE name = ?", (name,))
        return row[0] if row else None

    async def set_workspace_setting(self, name: str, value: str, *, if_absent: bool = False) -> str:
        """Store a setting (with `if_absent`, only if none is kept yet); returns the value kept."""
        conflict = "DO NOTHING" if if_absent else "DO UPDATE SET value = excluded.value"
        await self._exec(
            f"INSERT INTO workspace_settings (name, value) VALUES (?,?) ON CONFLICT (name) {conflict}", (name, value)
        )
        kept = await self.workspace_setting(name)
        return kept if kept is not None else value

    # ---- the request queue
    async def request_counts(self) -> list[tuple[str, str, int]]:
        """(kind, status, count) of every kind and status that has requests."""
        rows = await self._all(
            "SELECT kind, status, count(*) FROM requests GROUP BY kind, status ORDER BY kind, status"
        )
        return [(r[0], r[1], int(r[2])) for r in rows]

    async def request_queue(
        self,
        *,
        kinds: Iterable[str] | None = None,
        status: str | None = None,
        city: str | None = None,
        filed_before: datetime | None = None,
        assigned_to: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[QueueRow], int]:
        """Requests oldest first with their holder and city, filtered; and how many match in all."""
        where: list[str] = ["1=1"]
        params_: list[Any] = []
        if kinds is not None:
            kinds = list(kinds)
            where.append(f"r.kind IN ({','.join('?' * len(kinds))})")
            params_.extend(kinds)
        if status:
            where.append("r.status = ?")
            params_.append(status)
        if city:
            where.append("c.city = ? COLLATE NOCASE")
            params_.append(city)
        if filed_before is not None:
            where.append("r.created_at <= ?")
            params_.append(_ts(filed_before))
        if assigned_to is not None:
            where.append("r.assigned_to = ?")
            params_.append(assigned_to)
        where_sql = " WHERE " + " AND ".join(where)
        joined = " FROM requests r LEFT JOIN contracts c ON c.contract = r.contract" + where_sql
        # Counted on the requests' own indexes unless the city is asked (the join costs a lookup a row).
        total = await self._count("SELECT count(*)" + (joined if city else " FROM requests r" + where_sql), params_)
        cols = ", ".join("r." + c.strip() for c in _REQUEST_COLS.split(","))
        rows = await self._all(
            f"SELECT {cols}, c.holder_name, c.city, r.assigned_to" + joined + " ORDER BY r.created_at, r.id "
            "LIMIT ? OFFSET ?",
            [*params_, limit, offset],
        )
        requests = cast(SqliteRequests, self)  # (SqliteTx is both)
        out = [QueueRow(await requests._request(r[:19]), r[19], r[20], r[21]) for r in rows]
        return out, total

    async def request_assignee(self, reference: str) -> str | None:
        row = await self._one("SELECT assigned_to FROM requests WHERE reference = ?", (reference,))
        return row[0] if row else None

    async def assign_request(self, reference: str, account: str | None, *, now: datetime | None = None) -> bool:
        return (
            await self._exec(
                "UPDATE requests SET assigned_to = ?, updated_at = ? WHERE reference = ?",
                (account, _ts(self._now(now)), reference),
            )
            == 1
        )

    async def request_cities(self) -> list[str]:
        """The contracts' cities, in order (the queue's city filter): one index probe per city
        (a skip scan of contracts_city), not a scan of the contracts."""
        rows = await self._all(
            "WITH RECURSIVE c(city) AS (SELECT min(city) FROM contracts UNION ALL "
            "SELECT (SELECT min(city) FROM contracts WHERE city > c.city) FROM c WHERE c.city IS NOT NULL) "
            "SELECT city FROM c WHERE city IS NOT NULL"
        )
        return [r[0] for r in rows]

    # ---- customers
    async def search_contracts(
        self, *, number: str | None = None, phone: str | None = None, name: str | None = None, limit: int = 50
    ) -> list[Contract]:
        """Contracts whose number starts with `number`, with the phone `phone` (E.164), or whose
        holder's name holds `name` (any case), by contract number."""
        if number:
            sql, params = "contract >= ? AND contract < ?", [number, number + "\uffff"]
        elif phone:
            sql, params = "phone = ?", [phone]
        elif name:
            sql, params = "holder_name LIKE ? ESCAPE '\\'", [_like(name)]
        else:
            return []
        return await self._all(
            f"SELECT {_CONTRACT_COLS} FROM contracts WHERE {sql} ORDER BY contract LIMIT ?", [*params, limit], _contract
        )

    async def links_of_contract(self, contract: str) -> list[ChatLink]:
        """The chats that proved they hold a contract, oldest first."""
        rows = await self._all(
            "SELECT channel, user_id, contract, method, verified_at FROM chat_links WHERE contract = ? "
            "ORDER BY verified_at",
            (contract,),
        )
        return [ChatLink(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4])) for r in rows]
