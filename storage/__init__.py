"""Persistence: records and values, the repository protocols (protocols.py) a backend
implements, and `open_store(url)`, which picks the backend. SQLite is in storage/sqlite/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from .clock import Clock, ClockError, system_clock

if TYPE_CHECKING:  # at run time, looked up on first use (`__getattr__`): `storage.clock` alone stays cheap
    from .protocols import (
        AgencyRepository,
        AuditRepository,
        BillRepository,
        ConcurrentUpdate,
        ConnectionLost,
        ContractRepository,
        InboxRepository,
        LinkRepository,
        OutboxRepository,
        ReadingRepository,
        ReferenceRepository,
        RequestRepository,
        SessionRepository,
        Store,
        StoreUnavailable,
        Tx,
        Upsert,
    )
    from .records import (
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
    from .values import fold

__all__ = [
    "Agency",
    "AgencyRepository",
    "AuditRepository",
    "Bill",
    "BillRepository",
    "ChatLink",
    "Clock",
    "ClockError",
    "ConcurrentUpdate",
    "ConnectionLost",
    "Contract",
    "ContractRepository",
    "InboxRepository",
    "InstalmentLine",
    "LinkRepository",
    "OutboxMessage",
    "OutboxRepository",
    "Reading",
    "ReadingRepository",
    "ReferenceRepository",
    "ReminderConsent",
    "ReminderTarget",
    "Request",
    "RequestRepository",
    "SessionRecord",
    "SessionRepository",
    "Store",
    "StoreUnavailable",
    "Tx",
    "Upsert",
    "fold",
    "masked_url",
    "open_store",
    "system_clock",
]

BACKENDS = ("sqlite", "postgresql")  # the URL schemes open_store knows
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://(.*)$", re.I)


async def open_store(
    url: str | Path,
    *,
    migrate: bool = True,
    checkpoint_every: float | None = None,
    clock: Clock | None = None,
) -> Store:
    """The store at `url`: `sqlite:///path/to/file` or a bare path (SQLite), or
    `postgresql://user:password@host:port/database` (storage/postgres/). `checkpoint_every` (seconds) moves SQLite's
    WAL checkpoints off the turns, for the long-running bot; `clock` stamps writes given no `now`."""
    match = _SCHEME.match(str(url)) if isinstance(url, str) else None
    scheme, target = (match.group(1).lower(), match.group(2)) if match else ("sqlite", url)
    if scheme == "sqlite":
        from .sqlite import SqliteStore

        return await SqliteStore.open(target, migrate=migrate, checkpoint_every=checkpoint_every, clock=clock)
    if scheme in ("postgresql", "postgres"):
        try:
            from .postgres import PgStore
        except ImportError as exc:  # the extra is not installed
            from .protocols import StoreUnavailable

            raise StoreUnavailable(
                f"{scheme}:// needs the PostgreSQL driver: pip install 'addad[postgres]' ({exc})"
            ) from exc
        return await PgStore.open(str(url), migrate=migrate, clock=clock)
    raise ValueError(f"no storage backend for {scheme}:// (known: {', '.join(BACKENDS)})")


def masked_url(url: str | Path) -> str:
    """A database URL fit to print: without its password."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", str(url))


_LAZY = {
    **{
        name: ".protocols"
        for name in (
            "AgencyRepository",
            "AuditRepository",
            "BillRepository",
            "ConcurrentUpdate",
            "ConnectionLost",
            "ContractRepository",
            "InboxRepository",
            "LinkRepository",
            "OutboxRepository",
            "ReadingRepository",
            "ReferenceRepository",
            "RequestRepository",
            "SessionRepository",
            "Store",
            "StoreUnavailable",
            "Tx",
            "Upsert",
        )
    },
    **{
        name: ".records"
        for name in (
            "Agency",
            "Bill",
            "ChatLink",
            "Contract",
            "InstalmentLine",
            "OutboxMessage",
            "Reading",
            "ReminderConsent",
            "ReminderTarget",
            "Request",
            "SessionRecord",
        )
    },
    "fold": ".values",
}


def __getattr__(name: str):
    """The records, protocols and `fold`, imported when first asked for (PEP 562): `addad
    understand` needs only `storage.clock`, and importing this package used to cost it ~12 ms."""
    import importlib

    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value
