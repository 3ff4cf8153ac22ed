"""PostgreSQL writers without the global lock (storage/postgres/db.py): two processes writing
the same rows at once get what one after the other would have given.

Each test opens two stores on one database — two server sessions, as two workers have — and
makes them meet on one row: a contract's same-day reading, its pending-request check, a chat's
inbox order, a reference counter, an outbox claim, a deadlock. The last test runs two real
processes against each other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from storage import ConcurrentUpdate, open_store

from . import pg
from .test_storage_contract import C1, NOW

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def url():
    with pg.fresh() as url:
        yield url


@pytest.fixture
async def two(url):
    """Two stores on one database (two workers' sessions), a contract in it."""
    a = await open_store(url, clock=lambda: NOW)
    b = await open_store(url, clock=lambda: NOW)
    async with a.transaction() as tx:
        await tx.upsert_contract(C1)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


def _reading(reference: str, user: str) -> dict:
    return dict(
        contract=C1.contract,
        day=date(2026, 11, 23),
        index=45300 if user == "a" else 45310,
        reference=reference,
        channel="whatsapp",
        user_id=user,
        photo_ref=None,
        previous_index=45210,
        previous_date=date(2026, 10, 31),
        consumption=90,
    )


async def _blocked(task: asyncio.Task, release: asyncio.Event, seconds: float = 0.3) -> bool:
    """Whether `task` is still waiting after a while; the holder is let go either way (a test
    that fails here must not leave a transaction open)."""
    await asyncio.sleep(seconds)
    waiting = not task.done()
    release.set()
    return waiting


async def test_two_chats_confirming_one_contracts_reading_the_same_day(two):
    """Two chats linked to one contract confirm a reading at the same moment on two workers: the
    second replaces the first, as it would one after the other (no unique-index failure)."""
    a, b = two
    inside, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with a.transaction() as tx:
            await tx.add_customer_reading(**_reading("RL-A", "a"))
            inside.set()
            await release.wait()

    async def second() -> None:
        async with b.transaction() as tx:
            await tx.add_customer_reading(**_reading("RL-B", "b"))

    one = asyncio.create_task(first())
    await asyncio.wait_for(inside.wait(), 10)
    two_ = asyncio.create_task(second())
    assert await _blocked(two_, release), "the second worker did not wait for the first's reading"
    await asyncio.wait_for(asyncio.gather(one, two_), 10)
    rows = pg.query(
        a.db.url, "SELECT reference, status, index_value FROM readings WHERE source='customer' ORDER BY reference"
    )
    assert rows == [("RL-A", "replaced", 45300), ("RL-B", "valid", 45310)]


async def test_the_pending_request_check_waits_for_the_other_workers_filing(two):
    """A deferral is filed only if none is pending for the contract: the second worker's check
    sees the first worker's request once it is committed, not an empty list before."""
    a, b = two
    inside, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with a.transaction() as tx:
            assert await tx.requests(status="pending", contract=C1.contract) == []
            ref = await tx.next_reference("DR", 2026)
            await tx.add_request(
                reference=ref, kind="deferral", contract=C1.contract, channel="whatsapp", user_id="a", lang="fr"
            )
            inside.set()
            await release.wait()

    seen: list = []

    async def second() -> None:
        async with b.transaction() as tx:
            seen.extend(r.reference for r in await tx.requests(status="pending", contract=C1.contract))

    one = asyncio.create_task(first())
    await asyncio.wait_for(inside.wait(), 10)
    two_ = asyncio.create_task(second())
    assert await _blocked(two_, release)
    await asyncio.wait_for(asyncio.gather(one, two_), 10)
    assert seen == ["DR-2026-000001"]
    # A snapshot (a page, the tracking list) waits on nobody.
    inside.clear()

    async def holder() -> None:
        async with a.transaction() as tx:
            await tx.requests(status="pending", contract=C1.contract)
            inside.set()
            await asyncio.sleep(3)

    one = asyncio.create_task(holder())
    await asyncio.wait_for(inside.wait(), 10)
    async with asyncio.timeout(2), b.snapshot() as tx:
        assert [r.reference for r in await tx.requests(status="pending", contract=C1.contract)] == ["DR-2026-000001"]
    await one


async def test_one_chats_rows_get_their_rowids_in_commit_order(two):
    """Worker A keeps a chat's first message (its transaction not yet committed), worker B its
    second: B waits, so the second row's rowid is higher and becomes visible after the first
    (conversations/workers.py runs a chat by rowid). Another chat's row does not wait."""
    a, b = two
    inside, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with a.transaction() as tx:
            assert await tx.accept_inbound("whatsapp", "m1", "{}", chat="212600000001")
            inside.set()
            await release.wait()

    async def second() -> None:
        async with b.transaction() as tx:
            assert await tx.accept_inbound("whatsapp", "m2", "{}", chat="212600000001")

    one = asyncio.create_task(first())
    await asyncio.wait_for(inside.wait(), 10)
    async with asyncio.timeout(2), b.transaction() as tx:  # another chat: no wait
        assert await tx.accept_inbound("whatsapp", "x1", "{}", chat="212600000002")
    two_ = asyncio.create_task(second())
    assert await _blocked(two_, release)
    await asyncio.wait_for(asyncio.gather(one, two_), 10)
    async with b.snapshot() as tx:
        assert [m for m, _, _ in await tx.chat_unanswered("whatsapp", "212600000001")] == ["m1", "m2"]
    rows = dict(pg.query(a.db.url, "SELECT message_id, rowid FROM inbox"))
    assert rows["m1"] < rows["m2"]


async def test_counters_and_claims_across_two_workers(two):
    """References from both workers at once are distinct and without gaps; an outbox message
    claimed by both at once goes to exactly one."""
    a, b = two

    async def refs(store, n: int) -> list[str]:
        out = []
        for _ in range(n):
            async with store.transaction() as tx:
                out.append(await tx.next_reference("RL", 2026))
        return out

    got = await asyncio.gather(refs(a, 40), refs(b, 40))
    every = sorted(got[0] + got[1])
    assert every == [f"RL-2026-{i:06d}" for i in range(1, 81)]
    async with a.transaction() as tx:
        ids = [
            await tx.enqueue_outbox(channel="whatsapp", user_id=str(i), lang="fr", kind="notice", payload={"i": i})
            for i in range(30)
        ]

    async def claim(store, by: str) -> list[int]:
        won = []
        for message_id in ids:
            async with store.transaction() as tx:
                if await tx.claim_outbox(message_id, by=by):
                    won.append(message_id)
        return won

    wa, wb = await asyncio.gather(claim(a, "wa"), claim(b, "wb"))
    assert sorted(wa + wb) == sorted(ids) and not set(wa) & set(wb)


async def test_a_deadlock_rolls_one_group_back_whole_and_says_run_again(two):
    """Worker A holds contract 1's lock and wants contract 2's, B the other way round: the
    server breaks the cycle; the victim's transaction is rolled back whole and raised as a
    ConcurrentUpdate (the engine runs the turn again), the other commits."""
    a, b = two
    async with a.transaction() as tx:
        await tx.upsert_contract(dataclasses.replace(C1, contract="1000002"))
    held = [asyncio.Event(), asyncio.Event()]

    async def writer(store, mine: int, first: str, then: str) -> str:
        try:
            async with store.transaction() as tx:
                await tx.link_chat("whatsapp", f"w{mine}", first, "phone")
                await tx.add_customer_reading(**{**_reading(f"RL-{mine}", "a"), "contract": first})
                held[mine].set()
                await held[1 - mine].wait()
                await tx.add_customer_reading(**{**_reading(f"RL-{mine}b", "a"), "contract": then})
            return "committed"
        except ConcurrentUpdate:
            return "conflict"

    outcomes = await asyncio.wait_for(
        asyncio.gather(writer(a, 0, "1000001", "1000002"), writer(b, 1, "1000002", "1000001")), 20
    )
    assert sorted(outcomes) == ["committed", "conflict"]
    winner = outcomes.index("committed")
    links = pg.query(a.db.url, "SELECT user_id FROM chat_links")
    assert links == [(f"w{winner}",)]  # nothing of the victim's kept, its earlier writes included
    refs = {r for (r,) in pg.query(a.db.url, "SELECT reference FROM readings WHERE source='customer'")}
    assert refs == {f"RL-{winner}", f"RL-{winner}b"}
    assert a.db.conflicts + b.db.conflicts == 1
    # Both go on writing afterwards (nothing left held).
    async with asyncio.timeout(5):
        for store in (a, b):
            async with store.transaction() as tx:
                await tx.link_chat("whatsapp", "after", "1000001", "phone")


_RACER = r"""
import asyncio, json, sys
from datetime import date, datetime, UTC
sys.path.insert(0, sys.argv[3])
from storage import ConcurrentUpdate, open_store

async def main(url, me):
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    store = await open_store(url, clock=lambda: now)
    refs, errors, retries = [], [], 0
    async def one(i):
        nonlocal retries
        for attempt in range(10):
            try:
                async with store.transaction() as tx:
                    await tx.link_chat("whatsapp", f"{me}-{i}", "1000001", "phone")
                    await tx.add_customer_reading(
                        contract="1000001", day=date(2026, 11, 23), index=45300 + i, reference=f"{me}-{i}",
                        channel="whatsapp", user_id=f"{me}-{i}", photo_ref=None, previous_index=45210,
                        previous_date=date(2026, 10, 31), consumption=90 + i)
                    await tx.enqueue_outbox(channel="whatsapp", user_id="all", lang="fr", kind="notice",
                                            payload={}, dedupe_key=f"same-{i}")
                    ref = await tx.next_reference("IN", 2026)  # last: a counter row taken first would
                    # make the two processes' groups wait on each other, and race on nothing else
                refs.append((f"{me}-{i}", ref))
                return
            except ConcurrentUpdate:
                retries += 1
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return
    print("ready", flush=True)
    sys.stdin.readline()  # both processes start together
    await asyncio.gather(*(one(i) for i in range(60)))
    await store.close()
    print(json.dumps({"refs": refs, "errors": errors, "retries": retries}))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_two_processes_racing_on_one_contract(url):
    """Two real processes, 60 transactions each at once (group commit and all), every one taking
    a reference, linking a chat to the same contract, confirming that contract's reading of the
    same day and queueing the same notices: no error, every reference distinct and without gap,
    one valid reading of the day (the others replaced), each notice queued once."""

    async def seed() -> None:
        store = await open_store(url, clock=lambda: NOW)
        async with store.transaction() as tx:
            await tx.upsert_contract(C1)
        await store.close()

    pg._run(seed())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, url, me, str(ROOT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me in ("a", "b")
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    outs = []
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert [o["errors"] for o in outs] == [[], []]
    pairs = [tuple(p) for o in outs for p in o["refs"]]
    assert len(pairs) == 120
    told = {r for (r,) in pg.query(url, "SELECT reference FROM readings WHERE source='customer'")}
    assert told == {reading for reading, _ in pairs}  # every reading a customer would be told of is stored, once
    # distinct and without a gap: a transaction rolled back for a conflict rolls its number back too
    assert sorted(int(r.rsplit("-", 1)[1]) for _, r in pairs) == list(range(1, 121))
    assert pg.query(
        url, "SELECT status, count(*) FROM readings WHERE source='customer' GROUP BY status ORDER BY status"
    ) == [("replaced", 119), ("valid", 1)]
    assert pg.query(url, "SELECT count(*) FROM chat_links") == [(120,)]
    assert pg.query(url, "SELECT count(*) FROM outbox") == [(60,)]
