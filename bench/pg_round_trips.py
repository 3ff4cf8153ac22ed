"""Round trips per turn on PostgreSQL, counted in each of N worker processes at once.

    .venv/bin/python bench/pg_round_trips.py --admin postgresql://addad:addad@127.0.0.1:54329/postgres
        [--chats 300] [--concurrency 32] [--workers 2]

bench_postgres.py's workload (each customer greets, links a contract, asks the balance six
times) on a fresh database, the chats split over `--workers` processes started together; in
each, every call to the server (asyncpg's execute, fetch, fetchrow, fetchval, executemany,
COPY) is counted by its statement's first words. Prints the round trips per turn, all
processes together, by kind. ADDAD_ROOT=DIR runs another tree's code (a base worktree) with
this script.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import sys
from pathlib import Path

ROOT = Path(os.environ.get("ADDAD_ROOT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))


def _kind(query: str) -> str:
    words = re.sub(r"\s+", " ", query.strip())
    if words.startswith("WITH w0 AS"):
        return "a turn's end (deferred writes in one WITH)"
    if "addad_changes" in words and "SELECT" in words[:7]:
        return "BEGIN's change log read"
    if "addad_epochs" in words and words.startswith("SELECT"):
        return "BEGIN's epoch read"
    if "COMMIT" in words:
        return "COMMIT"
    if words.startswith("BEGIN"):
        return "BEGIN + the writers' lock"
    if "SAVEPOINT" in words:
        return "SAVEPOINT"
    m = re.match(r"(SELECT|INSERT INTO|UPDATE|DELETE FROM)\s+(?:.*?\bFROM\s+)?(\w+)", words)
    return f"{m.group(1)} {m.group(2)}" if m else words[:40]


def _counting(counts: collections.Counter) -> None:
    import asyncpg

    for name in ("execute", "fetch", "fetchrow", "fetchval", "executemany", "copy_records_to_table"):
        original = getattr(asyncpg.Connection, name)

        def wrapper(self, query, *args, __original=original, __name=name, **kw):
            counts["COPY" if __name == "copy_records_to_table" else _kind(query)] += 1
            return __original(self, query, *args, **kw)

        setattr(asyncpg.Connection, name, wrapper)


def _worker(url: str, first: int, chats: int, concurrency: int, barrier, out) -> None:
    from bench_postgres import run

    from bot.wiring import open_store

    async def go() -> None:
        store = await open_store(url)
        await store.close()
        counts: collections.Counter = collections.Counter()
        _counting(counts)
        barrier.wait()
        _, _, latencies = await run(url, chats, concurrency, first=first, seeded=True)
        out.put((sum(len(v) for v in latencies.values()), dict(counts)))

    asyncio.run(go())


async def main() -> None:
    import multiprocessing

    import asyncpg
    from bench_engine import seed

    from bot.wiring import open_store

    ap = argparse.ArgumentParser()
    ap.add_argument("--admin", required=True)
    ap.add_argument("--chats", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    name = f"addad_trips_{os.getpid()}"
    admin = await asyncpg.connect(args.admin)
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        url = re.sub(r"/[^/?]*(\?|$)", rf"/{name}\1", args.admin, count=1)
        store = await open_store(url)
        await seed(store, args.chats)
        await store.close()
        ctx = multiprocessing.get_context("spawn")
        barrier, out = ctx.Barrier(args.workers), ctx.Queue()
        share = args.chats // args.workers
        procs = [
            ctx.Process(target=_worker, args=(url, i * share, share, args.concurrency, barrier, out))
            for i in range(args.workers)
        ]
        for p in procs:
            p.start()
        done = [out.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
    turns = sum(t for t, _ in done)
    total: collections.Counter = collections.Counter()
    for _, counts in done:
        total.update(counts)
    print(f"{ROOT}: {args.workers} workers, {args.chats} chats x 10 turns, concurrency {args.concurrency}")
    print(f"round trips per turn: {sum(total.values()) / turns:.2f}")
    for kind, n in total.most_common():
        if n / turns >= 0.01:
            print(f"  {n / turns:5.2f}  {kind}")


if __name__ == "__main__":
    asyncio.run(main())
