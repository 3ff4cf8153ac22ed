import pytest

from .fake_botapi import FakeBotAPI


@pytest.fixture
async def api():
    """The fake Telegram Bot API server on 127.0.0.1."""
    server = await FakeBotAPI().start()
    try:
        yield server
    finally:
        await server.stop()
