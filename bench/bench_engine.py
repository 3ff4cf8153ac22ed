"""Engine turns per second on a file database, with their latency.

    .venv/bin/python bench/bench_engine.py [--chats 200] [--concurrency 32]

Each simulated customer opens the chat, links a contract by the last-bill amount and asks the
balance (5 turns, writes on every turn: message claim, session, audit). Turns of different
chats run concurrently; one chat's turns run in order. Prints turns/s, CPU per turn and
p50/p99 latency of each kind of turn.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.wiring import open_store
from conversations.engine import Engine
from conversations.events import Inbound
from conversations.profile import load_profile
from storage import Bill, Contract, Store


async def seed(store: Store, n: int) -> None:
    async with store.transaction() as tx:
        for i in range(n):
            number = f"{2000000 + i}"
            await tx.upsert_contract(
                Contract(
                    number,
                    "electricity",
                    f"Client {i}",
                    f"+2126{i:08d}",
                    "fr",
                    "Rabat",
                    f"M{i}",
                    "postpaid",
                    6,
                    1000,
                    date(2026, 10, 31),
                    "BT-RES",
                    False,
                )
            )
            for m in range(1, 7):
                await tx.upsert_bill(
                    Bill(
                        f"B{i}-{m}",
                        number,
                        date(2026, m, 1),
                        date(2026, m, 28),
                        date(2026, m, 28),
                        date(2026, m + 1, 15),
                        0,
                        100,
                        100,
                        False,
                        10000 + m,
                        0 if m > 3 else 10000 + m,
                    )
                )


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chats", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    folder = tempfile.mkdtemp()
    store = await open_store(os.path.join(folder, "bench.sqlite3"))  # as the bot opens it
    await seed(store, args.chats)
    engine = Engine(store, load_profile())
    latencies: dict[str, list[float]] = {}
    sem = asyncio.Semaphore(args.concurrency)

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

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(customer(i) for i in range(args.chats)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    turns = sum(len(v) for v in latencies.values())
    print(
        f"{turns} turns from {args.chats} chats, concurrency {args.concurrency}, file database (WAL, synchronous=FULL)"
    )
    print(f"throughput: {turns / wall:,.0f} turns/s; CPU {cpu / turns * 1e6:,.0f} µs/turn")
    for kind, values in latencies.items():
        print(f"  {kind:18s} p50 {pct(values, 0.5):6.2f} ms   p99 {pct(values, 0.99):6.2f} ms")
    await store.close()


if __name__ == "__main__":
    asyncio.run(main())
