"""Persistence: one SQLite file, versioned migrations, repositories with intent-named methods."""
from .db import Database
from .records import (Agency, Bill, ChatLink, Contract, InstalmentLine, OutboxMessage, Reading, Request,
                      SessionRecord)
from .store import ConcurrentUpdate, Store, Tx, fold, utcnow

__all__ = ["Agency", "Bill", "ChatLink", "ConcurrentUpdate", "Contract", "Database", "InstalmentLine",
           "OutboxMessage", "Reading", "Request", "SessionRecord", "Store", "Tx", "fold", "utcnow"]
