"""The SQLite backend: one file, one connection per process with group commit (db.py), the
repositories (repositories.py), the read cache (cache.py) and the migrations runner (schema.py)."""

from .db import Database
from .store import SqliteStore

__all__ = ["Database", "SqliteStore"]
