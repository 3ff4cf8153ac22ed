"""The PostgreSQL backend (issue 23): SQLite's repositories (storage/sqlite/repositories.py) over
one asyncpg connection per process, through a thin dialect layer (dialect.py); migrations
ported from SQLite's (port.py, migrations/); transactions, group commit, durability and the
read cache's cross-process epoch in db.py. Needs the `postgres` extra (asyncpg)."""

from .store import PgStore

__all__ = ["PgStore"]
