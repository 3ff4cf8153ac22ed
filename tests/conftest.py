import pytest

from .chat import open_engine
from .fake_botapi import FakeBotAPI


@pytest.fixture
async def api():
    """The fake Telegram Bot API server on 127.0.0.1."""
    server = await FakeBotAPI().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def engine(tmp_path):
    """The engine on a seeded file database, at the test clock (modules needing more data
    define their own)."""
    engine = await open_engine(tmp_path / "addad.sqlite3")
    try:
        yield engine
    finally:
        await engine.store.close()
