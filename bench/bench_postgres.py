"""One worker's turns per second on PostgreSQL against SQLite, in one run, and the balance p99.

    .venv/bin/python bench/bench_postgres.py --admin postgresql://addad:addad@127.0.0.1:54329/postgres
        [--chats 300] [--concurrency 32] [--workers 2] [--pgdata DIR]

The same workload as bench_engine.py (each customer greets, picks the menu, links a contract by
its last bill's amount and asks the balance: 5 turns, each writing its claim and session) on a
fresh SQLite file and on a fresh PostgreSQL database made on the `--admin` server, both opened
as the bot opens them (bot/wiring.py). For a fair ratio the server must fsync (PG_FSYNC=on
.ci/postgres start DIR PORT): SQLite fsyncs its WAL after every durable group. With `--workers N`
(issue 23's several workers) the same chats then run on a third database split over N processes
started together, each with its own store and engine (as N `addad serve`): their turns/s
against the one worker's, once as the backend writes now (the writers' lock shared:
storage/postgres/db.py) and once with it exclusive (the code before, `exclusive_writes`), on a
fresh database each. `--pgdata DIR` (the server's data folder, as given to .ci/postgres) also
counts the server's CPU per turn (its processes' from /proc), so the CPU ceiling of the
machine can be said: cores / (worker + server CPU per turn).
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


def server_cpu(pgdata: str | None) -> float:
    """CPU seconds used so far by the server of `pgdata` (postmaster and its children), or 0."""
    if not pgdata:
        return 0.0
    root = int(Path(pgdata, "postmaster.pid").read_text().split()[0])
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(proc.name) == root:  # its own, and its exited children's (cutime, cstime)
            total += sum(int(f) for f in fields[11:15])
        elif int(fields[1]) == root:  # a live backend: utime, stime
            total += int(fields[11]) + int(fields[12])
    return total / tick


async def run(
    url: str, chats: int, concurrency: int, first: int = 0, seeded: bool = False, exclusive: bool = False
) -> tuple[float, float, dict[str, list[float]]]:
    store = await open_store(url)
    store.db.exclusive_writes = exclusive  # type: ignore[attr-defined]
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
    ap.add_argument("--pgdata", help="the server's data folder: its CPU per turn is counted too")
    args = ap.parse_args()
    name = f"addad_bench_{os.getpid()}"
    admin = await asyncpg.connect(args.admin)
    await admin.execute(f"CREATE DATABASE {name}")
    fsync = await admin.fetchval("SHOW fsync")
    try:
        results = {}
        results["sqlite"] = await run(os.path.join(tempfile.mkdtemp(), "bench.sqlite3"), args.chats, args.concurrency)
        cpu0 = server_cpu(args.pgdata)
        results["postgresql"] = await run(
            re.sub(r"/[^/?]*(\?|$)", rf"/{name}\1", args.admin, count=1), args.chats, args.concurrency
        )
        turns = args.chats * 10
        server = {"postgresql": (server_cpu(args.pgdata) - cpu0) / turns}
        several = {}
        for mode in ("shared", "exclusive") if args.workers else ():
            await admin.execute(f"CREATE DATABASE {name}_{mode}")
            url = re.sub(r"/[^/?]*(\?|$)", rf"/{name}_{mode}\1", args.admin, count=1)
            store = await open_store(url)
            await seed(store, args.chats)
            await store.close()
            cpu0 = server_cpu(args.pgdata)
            several[mode] = await asyncio.to_thread(
                workers, url, args.chats, args.concurrency, args.workers, mode == "exclusive"
            )
            server[mode] = (server_cpu(args.pgdata) - cpu0) / turns
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        for mode in ("shared", "exclusive"):
            await admin.execute(f"DROP DATABASE IF EXISTS {name}_{mode} WITH (FORCE)")
        await admin.close()
    print(f"{args.chats} chats x 10 turns, concurrency {args.concurrency}; PostgreSQL fsync={fsync}")
    for backend, (rate, cpu, latencies) in results.items():
        print(f"{backend:10s} {rate:7,.0f} turns/s  CPU {cpu * 1e6:6,.0f} µs/turn", end="")
        print(f"  balance p50 {pct(latencies['balance'], 0.5):5.2f} ms p99 {pct(latencies['balance'], 0.99):5.2f} ms")
    print(f"PostgreSQL / SQLite turns/s: {results['postgresql'][0] / results['sqlite'][0]:.2f}")
    one = results["postgresql"][0]
    if args.pgdata:
        print(f"server CPU, one worker: {server['postgresql'] * 1e6:,.0f} µs/turn")
    for mode, (rate, cpu) in several.items():
        lock = "writers' lock shared (now)" if mode == "shared" else "writers' lock exclusive (before)"
        print(f"{args.workers} workers, {lock}: {rate:7,.0f} turns/s ({rate / one:.2f}x one worker)", end="")
        print(f"  worker CPU {cpu * 1e6:,.0f} µs/turn", end="")
        print(f"  server CPU {server[mode] * 1e6:,.0f} µs/turn" if args.pgdata else "")
        if args.pgdata:
            ceiling = (os.cpu_count() or 1) / (cpu + server[mode])
            print(f"  the CPU ceiling at these costs: {ceiling:,.0f} turns/s ({ceiling / one:.2f}x one worker)")
    print(f"load average {os.getloadavg()}")


def _worker(url: str, first: int, chats: int, concurrency: int, exclusive: bool, barrier, out) -> None:
    async def go() -> None:
        store = await open_store(url)  # connected before the start, as a running worker is
        await store.close()
        barrier.wait()
        start = time.monotonic()  # (CLOCK_MONOTONIC: one clock for every process of the machine)
        _, cpu, latencies = await run(url, chats, concurrency, first=first, seeded=True, exclusive=exclusive)
        out.put((start, time.monotonic(), sum(len(v) for v in latencies.values()), cpu))

    asyncio.run(go())


def workers(url: str, chats: int, concurrency: int, n: int, exclusive: bool) -> tuple[float, float]:
    """The chats split over `n` processes started together: the turns/s of them all, and their
    CPU per turn."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(n), ctx.Queue()
    share = chats // n
    procs = [
        ctx.Process(target=_worker, args=(url, i * share, share, concurrency, exclusive, barrier, out))
        for i in range(n)
    ]
    for p in procs:
        p.start()
    done = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    turns = sum(t for _, _, t, _ in done)
    rate = turns / (max(e for _, e, _, _ in done) - min(s for s, _, _, _ in done))
    return rate, sum(c * t for _, _, t, c in done) / turns


if __name__ == "__main__":
    asyncio.run(main())
