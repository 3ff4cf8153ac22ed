"""PostgreSQL for the tests: a fresh database per test, created from a migrated template.

ADDAD_TEST_POSTGRES is the URL of a server's maintenance database where the tests may create
databases (.ci/run starts a throwaway cluster and sets it: .ci/postgres). Without it, the tests
that need PostgreSQL are skipped, saying so; ADDAD_TEST_BACKEND=postgresql runs the
conversation tests' engine (tests/conftest.py `engine`, tests/chat.py) on PostgreSQL too.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ADMIN_URL = os.environ.get("ADDAD_TEST_POSTGRES", "")
SKIP_REASON = "PostgreSQL tests need ADDAD_TEST_POSTGRES=postgresql://… (.ci/run starts a server: .ci/postgres)"
TEMPLATE = f"addad_test_template_{os.getpid()}"
_made = threading.Lock()
_template_ready = False
_names = itertools.count(1)


# The driver comes with the `postgres` extra; README's command 2 installs only `test`.
HAS_DRIVER = importlib.util.find_spec("asyncpg") is not None
NO_DRIVER = "PostgreSQL tests need the postgres extra: pip install -e '.[test,postgres]'"


def available() -> bool:
    return bool(ADMIN_URL) and HAS_DRIVER


def skip_reason() -> str:
    return NO_DRIVER if not HAS_DRIVER else SKIP_REASON


def skip_unless_available() -> None:
    if not available():
        pytest.skip(skip_reason())


def engine_backend() -> str:
    """Which backend the conversation tests' engine runs on (ADDAD_TEST_BACKEND)."""
    return os.environ.get("ADDAD_TEST_BACKEND", "sqlite")


def url_of(name: str) -> str:
    return re.sub(r"/[^/?]*(\?|$)", rf"/{name}\1", ADMIN_URL, count=1)


def _run(coro: Any) -> Any:
    """Run a coroutine to its end on a loop of its own (fixtures are called inside and outside loops)."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = asyncio.run(coro)
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


async def _admin(*statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_URL)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def admin(*statements: str) -> None:
    _run(_admin(*statements))


def _ensure_template() -> None:
    global _template_ready
    with _made:
        if _template_ready:
            return

        async def make() -> None:
            from storage import open_store

            await _admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)", f"CREATE DATABASE {TEMPLATE}")
            store = await open_store(url_of(TEMPLATE))
            await store.close()

        _run(make())
        _template_ready = True


@contextmanager
def fresh() -> Iterator[str]:
    """`with pg.fresh() as url:` a new, migrated, empty database, dropped after (skipped without a server)."""
    url = fresh_database()
    try:
        yield url
    finally:
        drop(url)


def fresh_database() -> str:
    """The URL of a new, migrated, empty database (drop it with `drop`)."""
    skip_unless_available()
    _ensure_template()
    name = f"addad_test_{os.getpid()}_{next(_names)}"
    admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return url_of(name)


def drop(url: str) -> None:
    name = url.rsplit("/", 1)[1].split("?")[0]
    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def drop_template() -> None:
    if _template_ready:
        admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")


def query(database: Any, sql: str) -> list[tuple]:
    """Rows of `sql` read straight from a test's database (a SQLite file, or a PostgreSQL URL),
    as an operator would look: not through the store."""
    if str(database).startswith(("postgresql://", "postgres://")):

        async def fetch() -> list[tuple]:
            import asyncpg

            conn = await asyncpg.connect(str(database))
            try:
                return [tuple(r) for r in await conn.fetch(sql)]
            finally:
                await conn.close()

        return _run(fetch())
    import sqlite3

    con = sqlite3.connect(database)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


class Cluster:
    """A PostgreSQL server of a test's own (.ci/postgres), to stop and start under the bot."""

    SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "postgres"

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.url = ""

    @staticmethod
    def can_run() -> str | None:
        """Why a test cannot run a server of its own here, or None."""
        if not HAS_DRIVER:
            return NO_DRIVER
        if not Path("/usr/lib/postgresql/15/bin/initdb").exists():
            return "PostgreSQL 15's initdb is not installed"
        if os.geteuid() != 0 and os.environ.get("USER") != "postgres":
            return "a test's own PostgreSQL server is started as the user postgres (needs root)"
        return None

    def start(self) -> str:
        out = subprocess.run(
            [str(self.SCRIPT), "start", str(self.folder), str(self.port)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        self.url = out.stdout.strip().splitlines()[-1]
        return self.url

    def stop(self) -> None:
        subprocess.run([str(self.SCRIPT), "stop", str(self.folder)], capture_output=True, timeout=60)
