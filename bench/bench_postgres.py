"""One worker's turns per second on PostgreSQL against SQLite, in one run, and the balance p99.

    .venv/bin/python bench/bench_postgres.py --admin postgresql://addad:addad@127.0.0.1:54329/postgres
        [--chats 300] [--concurrency 32] [--workers 2]

The same workload as bench_engine.py (each customer greets, picks the menu, links a contract by
its last bill's amount and asks the balance: 5 turns, each writing its claim and session) on a
fresh SQLite file and on a fresh PostgreSQL database made on the `--admin` server, both opened
as the bot opens them (bot/wiring.py). For a fair ratio the server must fsync (PG_FSYNC=on
.ci/postgres start DIR PORT): SQLite fsyncs its WAL after every durable group. With `--workers N`
(issue 23's several workers) the same chats then run on a third database split over N processes
started together, each with its own store and engine (as N `addad serve`): their turns/s
against the one worker's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_engine import pct, seed  # the same data set

from bot.wiring import open_store
from conversations.engine import Engine
from conversations.events import Inbound
from conversations.profile import load_profile


async def run(
    url: str, chats: int, concurrency: int, first: int = 0, seeded: bool = False
) -> tuple[float, float, dict[str, list[float]]]:
    store = await open_store(url)
    if not seeded:
        await seed(store, chats)
    engine = Engine(store, load_profile())
    latencies: dict[str, list[float]] = {}
    sem = asyncio.Semaphore(concurrency)

    async def turn(kind: str, chat: int, step: int, **kw) -> None:
        async with sem:
            start = time.perf_counter()
            replies = await engine.handle(Inbound("bench", f"u{chat}", f"{chat}-{step}", **kw))
            latencies.setdefault(kind, []).append(time.perf_counter() - start)
            assert replies, kind

    async def customer(i: int) -> None:
        await turn("greeting", i, 0, text="bonjour")
        await turn("menu choice", i, 1, payload="go:link")
        await turn("contract number", i, 2, text=f"{2000000 + i}")
        await turn("bill amount proof", i, 3, text=f"{(10006) / 100:.2f}".replace(".", ","))
        await turn("balance", i, 4, text="combien je dois")
        for j in range(5, 10):  # a linked customer asking again: the read cache's path
            await turn("balance", i, j, text="combien je dois")

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(customer(i) for i in range(first, first + chats)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    await store.close()
    turns = sum(len(v) for v in latencies.values())
    return turns / wall, cpu / turns, latencies


async def main() -> None:
    import asyncpg

    ap = argparse.ArgumentParser()
    ap.add_argument("--admin", required=True, help="a PostgreSQL server's maintenance database URL")
    ap.add_argument("--chats", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--workers", type=int, default=0, help="also run the chats split over N processes")
    args = ap.parse_args()
    name = f"addad_bench_{os.getpid()}"
    admin = await asyncpg.connect(args.admin)
    await admin.execute(f"CREATE DATABASE {name}")
    fsync = await admin.fetchval("SHOW fsync")
    try:
        results = {}
        results["sqlite"] = await run(os.path.join(tempfile.mkdtemp(), "bench.sqlite3"), args.chats, args.concurrency)
        results["postgresql"] = await run(
            re.sub(r"/[^/?]*(\?|$)", rf"/{name}\1", args.admin, count=1), args.chats, args.concurrency
        )
        if args.workers:
            await admin.execute(f"CREATE DATABASE {name}_w")
            url = re.sub(r"/[^/?]*(\?|$)", rf"/{name}_w\1", args.admin, count=1)
            store = await open_store(url)
            await seed(store, args.chats)
            await store.close()
            several = await asyncio.to_thread(workers, url, args.chats, args.concurrency, args.workers)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"DROP DATABASE IF EXISTS {name}_w WITH (FORCE)")
        await admin.close()
    print(f"{args.chats} chats x 10 turns, concurrency {args.concurrency}; PostgreSQL fsync={fsync}")
    for backend, (rate, cpu, latencies) in results.items():
        print(f"{backend:10s} {rate:7,.0f} turns/s  CPU {cpu * 1e6:6,.0f} µs/turn", end="")
        print(f"  balance p50 {pct(latencies['balance'], 0.5):5.2f} ms p99 {pct(latencies['balance'], 0.99):5.2f} ms")
    print(f"PostgreSQL / SQLite turns/s: {results['postgresql'][0] / results['sqlite'][0]:.2f}")
    if args.workers:
        ratio = several / results["postgresql"][0]
        print(f"{args.workers} workers  {several:7,.0f} turns/s  ({ratio:.2f}x one worker)")


def _worker(url: str, first: int, chats: int, concurrency: int, barrier, out) -> None:
    async def go() -> None:
        store = await open_store(url)  # connected before the start, as a running worker is
        await store.close()
        barrier.wait()
        start = time.monotonic()  # (CLOCK_MONOTONIC: one clock for every process of the machine)
        _, _, latencies = await run(url, chats, concurrency, first=first, seeded=True)
        out.put((start, time.monotonic(), sum(len(v) for v in latencies.values())))

    asyncio.run(go())


def workers(url: str, chats: int, concurrency: int, n: int) -> float:
    """The chats split over `n` processes started together: the turns/s of them all."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(n), ctx.Queue()
    share = chats // n
    procs = [ctx.Process(target=_worker, args=(url, i * share, share, concurrency, barrier, out)) for i in range(n)]
    for p in procs:
        p.start()
    done = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return sum(t for _, _, t in done) / (max(e for _, e, _ in done) - min(s for s, _, _ in done))


if __name__ == "__main__":
    asyncio.run(main())
