"""Several workers on one PostgreSQL database (conversations/workers.py, docs/deploy.md "Two
workers"): each chat's messages run once, in inbox order, whichever worker received them; a
killed worker's chats are taken over; a starting worker never takes what a live one holds.
Skipped without ADDAD_TEST_POSTGRES (tests/pg.py)."""

from __future__ import annotations

import asyncio
import json
import random

import aiohttp
import pytest

from conversations.dispatch import Dispatcher
from conversations.workers import SharedChats, chat_locks
from storage import open_store

from . import pg
from .chat import Clock
from .telegram_harness import seeded_database
from .whatsapp_harness import FakeGraphAPI, delivery, message, text_of, workers_on

pytestmark = pytest.mark.skipif(not pg.available(), reason=pg.skip_reason())


@pytest.fixture
def database():
    with pg.fresh() as url:
        yield url


class Worker:
    """One process's SharedChats on a store (a connection, and chat locks, of its own)."""

    def __init__(self, name: str, store, ran: list, *, slow: float = 0.005) -> None:
        self.name, self.store, self.ran, self.slow = name, store, ran, slow
        locks = chat_locks(store)
        assert locks is not None
        self.chats = SharedChats(store, "whatsapp", locks, self.run, lambda m, body: json.loads(body)["chat"],
                                 sweep_every=0.2)  # fmt: skip

    async def run(self, message_id: str, body: str, processed: bool, here: bool) -> None:
        self.ran.append((self.name, message_id))
        await asyncio.sleep(self.slow * random.random())  # a turn and its replies take a while

    async def receive(self, chat: str, message_id: str) -> asyncio.Task:
        """As the webhook does: kept durably, then handled in the background."""
        async with self.store.transaction() as tx:
            assert await tx.accept_inbound("whatsapp", message_id, json.dumps({"chat": chat}), chat=chat)
        return asyncio.create_task(self.chats.received(chat, message_id))


async def test_two_workers_run_each_row_once_in_its_chats_order(database):
    """Messages of five chats spread at random over two workers: every row runs once, each chat's
    rows in the order they were kept, and both workers did part of the work."""
    clock = Clock()
    a, b = await open_store(database, clock=clock), await open_store(database, clock=clock)
    ran: list[tuple[str, str]] = []
    workers = [Worker("a", a, ran), Worker("b", b, ran)]
    try:
        jobs = []
        for i in range(60):
            chat = f"2126000000{i % 5}"
            jobs.append(await random.choice(workers).receive(chat, f"m{i:03d}"))
        await asyncio.wait_for(asyncio.gather(*jobs), 30)
    finally:
        for w in workers:
            await w.chats.close()
        await a.close()
        await b.close()
    ids = [m for _, m in ran]
    assert sorted(ids) == [f"m{i:03d}" for i in range(60)]  # each once
    for c in range(5):
        mine = [m for m in ids if int(m[1:]) % 5 == c]
        assert mine == sorted(mine)  # the chat's order: the order kept
    assert {w for w, _ in ran} == {"a", "b"}
    unanswered = pg.query(database, "SELECT count(*) FROM inbox WHERE answered_at IS NULL")
    assert unanswered == [(0,)]


async def test_a_live_workers_chat_is_not_replayed_and_a_dead_ones_is_taken_over(database):
    """Worker A holds a chat mid-way (its turn slow); B starts and sweeps: it leaves A's chat alone.
    A's lock connection dies (its process killed): B takes the chat over, the row in hand again
    (marked `processed` if its turn had run) and the rest in order."""
    clock = Clock()
    a, b = await open_store(database, clock=clock), await open_store(database, clock=clock)
    ran: list[tuple[str, str]] = []
    stuck = asyncio.Event()
    wa = Worker("a", a, ran)

    async def slow_run(message_id: str, body: str, processed: bool, here: bool) -> None:
        ran.append(("a", message_id))
        await stuck.wait()  # never returns: A "hangs" holding the chat

    wa.chats.run = slow_run
    wb = Worker("b", b, ran)
    try:
        first = await wa.receive("212600000001", "x1")
        async with a.transaction() as tx:
            await tx.accept_inbound("whatsapp", "x2", json.dumps({"chat": "212600000001"}), chat="212600000001")
        while not ran:
            await asyncio.sleep(0.01)
        wb.chats.start()  # B's start: its first sweep is the replay
        await asyncio.sleep(1.0)
        assert ran == [("a", "x1")]  # B resent nothing A is handling
        locks = chat_locks(a)
        assert locks is not None
        await locks.close()  # A's sessions go (kill -9): so do its locks
        a.db._lost()  # type: ignore[attr-defined]  # (its store's too: the chat's fence is there)
        deadline = asyncio.get_running_loop().time() + 10
        while len(ran) < 3:
            assert asyncio.get_running_loop().time() < deadline, ran
            await asyncio.sleep(0.05)
        assert ran == [("a", "x1"), ("b", "x1"), ("b", "x2")]
        assert wb.chats.taken_over == 2
        first.cancel()
    finally:
        stuck.set()
        await wb.chats.close()
        await wa.chats.close()
        await a.close()
        await b.close()


async def test_rows_kept_without_a_chat_are_replayed_at_start_in_order(database):
    """Rows kept by one process alone (no chat named: an older version, or before migration 13)
    are given their chat at a worker's start and run, each chat in its order."""
    clock = Clock()
    store = await open_store(database, clock=clock)
    ran: list[tuple[str, str]] = []
    w = Worker("a", store, ran)
    try:
        async with store.transaction() as tx:
            for i in range(6):
                body = json.dumps({"chat": f"21260000000{i % 2}"})
                assert await tx.accept_inbound("whatsapp", f"old{i}", body)
        w.chats.start()
        deadline = asyncio.get_running_loop().time() + 10
        while len(ran) < 6:
            assert asyncio.get_running_loop().time() < deadline, ran
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # (and nothing more)
    finally:
        await w.chats.close()
        await store.close()
    ids = [m for _, m in ran]
    assert sorted(ids) == [f"old{i}" for i in range(6)]
    assert [m for m in ids if int(m[3:]) % 2 == 0] == ["old0", "old2", "old4"]
    assert pg.query(database, "SELECT count(*) FROM inbox WHERE answered_at IS NULL OR chat IS NULL") == [(0,)]


async def test_a_starting_dispatcher_leaves_a_live_workers_send_alone(database):
    """Outbox claims name their worker: a starting dispatcher settles at once the claims of a worker
    that is gone (its session ended: kill -9), leaves alone a live worker's send within the lease,
    and takes over a live one's claim older than the lease (a worker stuck)."""
    clock = Clock()
    store = await open_store(database, clock=clock)
    live, dead = await open_store(database, clock=clock), await open_store(database, clock=clock)
    try:
        from .chat import seed

        await seed(store)
        live_locks, dead_locks = chat_locks(live), chat_locks(dead)
        assert live_locks is not None and dead_locks is not None
        await live_locks.ensure()
        await dead_locks.ensure()
        ids = {}
        lease = Dispatcher(store, _profile(), []).lease
        async with store.transaction() as tx:
            for name, by, at in (
                ("in flight", live_locks.worker_id, clock()),
                ("stuck", live_locks.worker_id, clock() - lease * 2),
                ("orphan", dead_locks.worker_id, clock()),
            ):
                ids[name] = await tx.enqueue_outbox(channel="whatsapp", user_id="212600000001", lang="fr",
                                                    kind="reply", payload={"messages": [], "text": name})  # fmt: skip
                assert await tx.claim_outbox(ids[name], now=at, by=by)
        await dead_locks.close()  # that worker is killed: its session, and its lock, end

        class Sender:
            channel, confirms_delivery = "whatsapp", True

            async def send_outbox(self, msg, text):  # pragma: no cover - nothing due is sent here
                raise AssertionError("sent")

        dispatcher = Dispatcher(store, _profile(), [Sender()])
        stop = asyncio.Event()
        stop.set()
        await dispatcher.run(stop)  # its start: the recovery, then nothing (stopped)
        rows = dict(pg.query(database, "SELECT id, status FROM outbox"))
        assert {name: rows[i] for name, i in ids.items()} == {
            "in flight": "sending",  # a live worker's send: left alone
            "stuck": "pending",  # past its lease: sent again (WhatsApp confirms deliveries)
            "orphan": "pending",  # its worker is gone: at once
        }
    finally:
        await store.close()
        await live.close()
        await dead.close()


def _profile():
    from conversations.profile import load_profile

    return load_profile()


# ---------------------------------------------------------------------- two real processes
CUSTOMERS = [f"2126610000{i:02d}" for i in range(6)]
PER_CUSTOMER = 8


async def test_two_whatsapp_workers_one_killed_under_load(tmp_path, database, process_clock):
    """Two `addad whatsapp` processes on one PostgreSQL database, the webhooks spread over both
    (round robin, as a load balancer; a refused connection goes to the other); each customer
    writes without waiting for answers. One worker is killed with SIGKILL mid-traffic. Then:
    every message answered 200 is in the inbox and answered (its turn ran, its replies went
    out), no turn ran twice, each chat's turns ran in the order its messages were kept, and each
    customer got at least one answer per message."""
    await seeded_database(database)
    graph = await FakeGraphAPI().start()
    workers = workers_on(graph, database, tmp_path)
    acked: dict[str, list[str]] = {c: [] for c in CUSTOMERS}
    refused: list[str] = []  # what the balancer saw besides a 200
    turn = 0
    try:
        for w in workers:
            await w.start()
        async with aiohttp.ClientSession() as http:

            async def post(payload: dict) -> bool:
                """Round robin; a worker that refuses the connection, drops it or does not answer
                200, then the other: Meta redelivers an unanswered webhook (a repeat is recognised
                by its key and answered 200)."""
                nonlocal turn
                turn += 1
                for attempt in range(10):
                    w = workers[(turn + attempt) % 2]
                    try:
                        status = await w.post(http, payload)
                    except aiohttp.ClientError as exc:
                        refused.append(type(exc).__name__)
                    else:
                        if status == 200:
                            return True
                        refused.append(str(status))
                    await asyncio.sleep(0.05 * attempt)
                return False

            async def customer(phone: str) -> None:
                for i in range(PER_CUSTOMER):
                    text = "bonjour" if i % 2 == 0 else "menu"
                    m = message(phone, "text", {"body": text}, wamid=f"wamid.{phone}.{i}")
                    if await post(delivery([m])):
                        acked[phone].append(m["id"])
                    await asyncio.sleep(0)  # the next at once: a chat's messages in flight on both workers

            load = asyncio.gather(*(customer(c) for c in CUSTOMERS))
            while sum(map(len, acked.values())) < len(CUSTOMERS) * PER_CUSTOMER // 3:
                await asyncio.sleep(0.02)
            workers[0].kill()
            await asyncio.wait_for(load, 120)
            every = [m for ms in acked.values() for m in ms]
            assert len(every) == len(CUSTOMERS) * PER_CUSTOMER, refused  # the survivor took every later message
            assert [r for r in refused if r.isdecimal()] == []  # only the dead worker's refusals: no error
            deadline = asyncio.get_running_loop().time() + 60
            while pg.query(database, "SELECT count(*) FROM inbox WHERE answered_at IS NULL") != [(0,)]:
                assert asyncio.get_running_loop().time() < deadline, workers[1].output()[-3000:]
                await asyncio.sleep(0.2)
        assert await workers[1].stop() == 0, workers[1].output()[-3000:]
        inbox = pg.query(database, "SELECT message_id, chat, rowid FROM inbox ORDER BY rowid")
        assert sorted(m for m, _, _ in inbox) == sorted(every)  # nothing confirmed lost
        turns = pg.query(database, "SELECT message_id FROM processed_messages WHERE channel='whatsapp' ORDER BY rowid")
        ran = [m for (m,) in turns]
        assert sorted(ran) == sorted(every)  # every message's turn ran, none twice
        for phone in CUSTOMERS:
            kept = [m for m, chat, _ in inbox if chat == phone]
            assert kept == acked[phone]  # kept in the order the customer wrote
            assert [m for m in ran if m in set(kept)] == kept  # run in that order
            answers = [s for s in graph.sent if s["to"] == phone]
            assert len(answers) >= PER_CUSTOMER
            assert all("Que puis-je faire pour vous" in text_of(s) for s in answers), [text_of(s) for s in answers]
        assert "Traceback" not in workers[1].output()
    finally:
        for w in workers:
            if w.proc is not None and w.proc.poll() is None:
                await w.stop()
        await graph.stop()


async def test_a_killed_workers_chats_are_answered_by_the_survivors_sweep(tmp_path, database, process_clock):
    """Worker A runs three chats' messages and is killed while sending their replies (the Graph API
    holds them); those customers write nothing more. Worker B's sweep takes the three chats over:
    each customer gets the answer, the turn ran once (its kept replies sent again), and B's log
    says it took them over. A fourth chat B is serving meanwhile is not touched by A's death."""
    await seeded_database(database)
    graph = await FakeGraphAPI().start()
    a, b = workers_on(graph, database, tmp_path)
    stranded = CUSTOMERS[:3]
    try:
        await a.start()
        await b.start()
        async with aiohttp.ClientSession() as http:
            graph.stall = True  # every reply is held: A's turns are run and stuck sending
            for phone in stranded:
                m = message(phone, "text", {"body": "bonjour"}, wamid=f"wamid.{phone}.stranded")
                assert await a.post(http, delivery([m])) == 200
            deadline = asyncio.get_running_loop().time() + 20
            while {s["to"] for s in graph.attempts} != set(stranded):
                assert asyncio.get_running_loop().time() < deadline, a.output()[-2000:]
                await asyncio.sleep(0.05)
            a.kill()
            graph.stall = False  # what A was sending is refused: it reached no one
            ran = pg.query(database, "SELECT count(*) FROM processed_messages WHERE message_id LIKE '%.stranded'")
            assert ran == [(3,)]  # the turns had run and committed
            # B, meanwhile, serves a chat of its own.
            m = message(CUSTOMERS[3], "text", {"body": "bonjour"}, wamid=f"wamid.{CUSTOMERS[3]}.b")
            assert await b.post(http, delivery([m])) == 200
            for phone in [*stranded, CUSTOMERS[3]]:
                reply = await graph.wait_for(lambda s, phone=phone: s["to"] == phone, timeout=20)
                assert "Que puis-je faire pour vous" in text_of(reply)
        assert await b.stop() == 0, b.output()[-3000:]
        assert "waiting message(s) of a chat taken over" in b.output()
        assert "Traceback" not in b.output()
        assert pg.query(database, "SELECT count(*) FROM inbox WHERE answered_at IS NULL") == [(0,)]
        turns = pg.query(database, "SELECT message_id FROM processed_messages WHERE channel='whatsapp'")
        assert sorted(m for (m,) in turns) == sorted(
            [f"wamid.{p}.stranded" for p in stranded] + [f"wamid.{CUSTOMERS[3]}.b"]
        )
        assert len([s for s in graph.sent if s["to"] in stranded]) == 3  # each answered once
    finally:
        for w in (a, b):
            if w.proc is not None and w.proc.poll() is None:
                await w.stop()
        await graph.stop()


# ---------------------------------------------------------------------- Telegram webhooks
async def test_telegram_webhook_updates_of_one_chat_spread_over_two_workers_run_in_order(database, api):
    """Two bots in webhook mode on one PostgreSQL database (two `addad serve` behind a balancer),
    each chat's updates posted to either, one after the other (each kept before its 200): every
    update's turn runs once, each chat's in update_id order, and every row ends answered."""
    from .telegram_harness import seeded_database, settings_for, start_bot
    from .webhook_harness import free_port

    await seeded_database(database)
    settings = settings_for(api, database, telegram_webhook_secret="s3cret-Token_1")
    ports = [free_port(), free_port()]
    bots = [
        await start_bot(settings, webhook_url="https://bot.example/tg/hook", listen="127.0.0.1", port=port)
        for port in ports
    ]
    api.rtt = 0.03  # a distant Telegram: a turn's replies take a while, the next update comes meanwhile
    chats, texts = (8101, 8102), ["bonjour", "combien je dois", "menu", "agence rabat", "merci", "1", "2", "menu"]
    order: dict[int, list[str]] = {c: [] for c in chats}
    try:
        good = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token_1"}
        async with aiohttp.ClientSession() as http:
            update_id = 5000
            for i, text in enumerate(texts):
                for c, chat in enumerate(chats):
                    update_id += 1
                    update = {
                        "update_id": update_id,
                        "message": {
                            "message_id": update_id,
                            "date": 0,
                            "chat": {"id": chat, "type": "private"},
                            "from": {"id": chat, "is_bot": False, "first_name": "C", "language_code": "fr"},
                            "text": text,
                        },
                    }
                    port = ports[(i + c) % 2]  # alternated: a chat's next update goes to the other worker
                    async with http.post(f"http://127.0.0.1:{port}/tg/hook", json=update, headers=good) as r:
                        assert r.status == 200
                    order[chat].append(str(update_id))
            # Kept out of order while the chat is busy: 8103's first reply held at the Bot API, its
            # next two updates reach the two workers last first. They run by update_id.
            held = api.hold("sendMessage", lambda p: str(p.get("chat_id")) == "8103")

            async def post(port: int, update_id: int, text: str) -> None:
                update = {
                    "update_id": update_id,
                    "message": {
                        "message_id": update_id,
                        "date": 0,
                        "chat": {"id": 8103, "type": "private"},
                        "from": {"id": 8103, "is_bot": False, "first_name": "C", "language_code": "fr"},
                        "text": text,
                    },
                }
                async with http.post(f"http://127.0.0.1:{port}/tg/hook", json=update, headers=good) as r:
                    assert r.status == 200

            await post(ports[0], 6001, "bonjour")
            await api.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == 8103)
            await post(ports[1], 6003, "menu")
            await post(ports[0], 6002, "combien je dois")
            await asyncio.sleep(0.3)
            held.set()
        deadline = asyncio.get_running_loop().time() + 60
        while pg.query(database, "SELECT count(*) FROM inbox WHERE channel='telegram' AND answered_at IS NULL") != [
            (0,)
        ]:
            assert asyncio.get_running_loop().time() < deadline, "updates left unanswered"
            await asyncio.sleep(0.1)
    finally:
        for _task, stop in bots:
            stop.set()
        for task, _ in bots:
            await asyncio.wait_for(task, 30)
    ran = [m for (m,) in pg.query(database, "SELECT message_id FROM processed_messages WHERE channel='telegram' "
                                            "ORDER BY rowid")]  # fmt: skip
    assert sorted(ran) == sorted(order[8101] + order[8102] + ["6001", "6002", "6003"])  # each once
    for chat in chats:
        assert [m for m in ran if m in order[chat]] == order[chat]  # the chat's update_id order
    assert [m for m in ran if m.startswith("600")] == ["6001", "6002", "6003"]
    for chat in chats:  # and each chat answered in French, once per update at least
        assert len([c for c in api.calls if c.method == "sendMessage" and c.chat_id == chat]) >= len(texts)
