"""Persistence: one SQLite file, versioned migrations, repositories with intent-named methods."""

from .clock import Clock, ClockError, system_clock
from .db import Database
from .records import Agency, Bill, ChatLink, Contract, InstalmentLine, OutboxMessage, Reading, Request, SessionRecord
from .store import ConcurrentUpdate, Store, Tx, fold

__all__ = [
    "Agency",
    "Bill",
    "ChatLink",
    "Clock",
    "ClockError",
    "ConcurrentUpdate",
    "Contract",
    "Database",
    "InstalmentLine",
    "OutboxMessage",
    "Reading",
    "Request",
    "SessionRecord",
    "Store",
    "Tx",
    "fold",
    "system_clock",
]
