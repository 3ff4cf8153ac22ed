"""A worker whose chat-lock connection dies while it runs a chat's row (issue 23's last targets):
the row's replies still go once, in order. Skipped without ADDAD_TEST_POSTGRES (tests/pg.py).

The chat lock (storage/postgres/locks.py) lives on a connection of its own; the server may end
that session alone (a restart of a pooler, an administrator's pg_terminate_backend, an idle
timeout) while the process and its store connection live on and the row's replies are on their
way. Another worker then gets the chat lock; it must not run or resend that row meanwhile."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from . import pg

pytest.importorskip("asyncpg", reason=pg.NO_DRIVER)

from storage.postgres.locks import CHAT_SPACE  # (after the skip: needs the driver)

from .telegram_harness import seeded_database
from .whatsapp_harness import FakeGraphAPI, delivery, message, text_of, workers_on

pytestmark = pytest.mark.skipif(not pg.available(), reason=pg.skip_reason())

PHONE = "212661000077"


@pytest.fixture
def database():
    with pg.fresh() as url:
        yield url


def _chat_lock_holders(database: str) -> list[tuple[int, str]]:
    """(pid, application_name) of the sessions holding the chat's lock."""
    return pg.query(
        database,
        "SELECT l.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        f"WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = {CHAT_SPACE} "
        f"AND l.objid::bigint = (hashtext('whatsapp:{PHONE}')::bigint & 4294967295) AND l.objsubid = 2",
    )


async def test_a_lock_connection_killed_mid_turn_does_not_double_the_rows_replies(tmp_path, database, process_clock):
    """Two `addad whatsapp` on one database. A runs the customer's first message and is sending its
    reply (the Graph API holds it) when the server ends A's chat-lock session; the customer's
    second message reaches B meanwhile. Then: each message is answered exactly once, the first's
    answer before the second's, each turn ran once, and nothing is left unanswered."""
    await seeded_database(database)
    graph = await FakeGraphAPI().start()
    a, b = workers_on(graph, database, tmp_path)
    try:
        await a.start()
        await b.start()
        async with aiohttp.ClientSession() as http:
            graph.hold = True  # A's reply waits at the Graph API: A is mid-row, holding the chat
            first = message(PHONE, "text", {"body": "bonjour"}, wamid="wamid.fence.1")
            assert await a.post(http, delivery([first])) == 200
            deadline = asyncio.get_running_loop().time() + 20
            while not any(s["to"] == PHONE for s in graph.attempts):
                assert asyncio.get_running_loop().time() < deadline, a.output()[-2000:]
                await asyncio.sleep(0.05)
            second = message(PHONE, "text", {"body": "combien je dois"}, wamid="wamid.fence.2")
            assert await b.post(http, delivery([second])) == 200
            holders = _chat_lock_holders(database)
            assert len(holders) == 1 and holders[0][1] == "addad-chats", holders
            assert pg.query(database, f"SELECT pg_terminate_backend({holders[0][0]})") == [(True,)]
            await asyncio.sleep(2.5)  # B retries the chat and sweeps meanwhile (every second)
            graph.hold = False
            deadline = asyncio.get_running_loop().time() + 30
            while pg.query(database, "SELECT count(*) FROM inbox WHERE answered_at IS NULL") != [(0,)]:
                assert asyncio.get_running_loop().time() < deadline, (a.output()[-2000:], b.output()[-2000:])
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # anything sent twice would arrive by now
        assert await a.stop() == 0, a.output()[-3000:]
        assert await b.stop() == 0, b.output()[-3000:]
        answers = [text_of(s) for s in graph.sent if s["to"] == PHONE]
        assert len(answers) == 2, answers  # each message answered once
        assert "Que puis-je faire pour vous" in answers[0]  # the greeting first
        assert "Que puis-je faire pour vous" not in answers[1] and answers[1] != answers[0], answers
        turns = pg.query(database, "SELECT message_id FROM processed_messages WHERE channel='whatsapp' ORDER BY rowid")
        assert turns == [("wamid.fence.1",), ("wamid.fence.2",)]
        assert "Traceback" not in a.output() + b.output()
    finally:
        for w in (a, b):
            if w.proc is not None and w.proc.poll() is None:
                await w.stop()
        await graph.stop()
