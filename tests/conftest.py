import pytest

from storage import Store

from .chat import open_engine
from .fake_botapi import FakeBotAPI
from .test_storage_contract import C1, NOW


@pytest.fixture
async def api():
    """The fake Telegram Bot API server on 127.0.0.1."""
    server = await FakeBotAPI().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def store(tmp_path):
    """A file database holding one contract, C1 (modules testing the storage contract on
    every backend define their own)."""
    s = await Store.open(tmp_path / "addad.sqlite3")
    async with s.transaction() as tx:
        await tx.upsert_contract(C1, now=NOW)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def engine(tmp_path):
    """The engine on a seeded file database, at the test clock (modules needing more data
    define their own)."""
    engine = await open_engine(tmp_path / "addad.sqlite3")
    try:
        yield engine
    finally:
        await engine.store.close()
