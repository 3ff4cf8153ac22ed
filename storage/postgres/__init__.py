"""The PostgreSQL backend (issue 23): SQLite's repositories (storage/sqlite/repositories.py) over
one asyncpg connection per process, through a thin dialect layer (dialect.py); migrations
ported from SQLite's (port.py, migrations/); transactions, group commit, durability and the
read cache's cross-process epoch in db.py. Needs the `postgres` extra (asyncpg).

`PgStore` is imported when first asked for: the migrations' port (port.py) and its tests run
without the extra."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import PgStore

__all__ = ["PgStore"]


def __getattr__(name: str) -> object:
    if name == "PgStore":
        from .store import PgStore

        return PgStore
    raise AttributeError(name)
