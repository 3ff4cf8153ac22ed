"""Other customers' reply latency while one chat floods the bot (issue 18.6), on WhatsApp and Telegram.

    .venv/bin/python bench/bench_flood.py [--channel whatsapp|telegram] [--chats 40] [--pause 1.5]
        [--flood 1000] [--seconds 12] [--rounds 3]

`addad whatsapp` (bot.runtime.run_whatsapp) against the fake Graph API of tests/whatsapp_harness.py,
or `addad telegram` polling (bot.runtime.run_telegram) against the fake Bot API of
tests/fake_botapi.py, on a seeded SQLite file, in one process. --chats customers each send "menu",
wait for the reply, pause --pause seconds (a person's pace, within the flood limit), again, for
--seconds; latency is from the signed POST (WhatsApp) or the update's queuing (Telegram) to the
first message to that customer.
Three configurations, --rounds times each, alternated:

  quiet        nobody floods;
  flood, off   one more chat posts --flood messages at once (deliveries of 10, 50 at a time)
               one second in, with the flood limit off (ADDAD_FLOOD_RATE=0: the code before 18.6);
  flood, on    the same with the default limit (a burst of 10, then 1 message a second).

Prints the median and 90th percentile of the others' latencies per configuration (all rounds
pooled) and how many of the flood's messages ran a turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import Settings
from bot.runtime import run_telegram, run_whatsapp
from tests.fake_botapi import FakeBotAPI
from tests.telegram_harness import seeded_database
from tests.whatsapp_harness import (
    FakeGraphAPI,
    delivery,
    message,
    sign,
    whatsapp_settings,
)

FLOODER = "212699999999"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def post(http: aiohttp.ClientSession, url: str, payload: dict) -> int:
    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}
    async with http.post(url, data=body, headers=headers) as r:
        return r.status


async def customer(http, url, graph: FakeGraphAPI, phone: str, until: float, latencies: list[float], args) -> None:
    n = 0
    while time.monotonic() < until:
        start = len(graph.sent)
        t0 = time.perf_counter()
        await post(http, url, delivery([message(phone, "text", {"body": "menu"}, wamid=f"wamid.{phone}.{n}")]))
        await graph.wait_for(lambda m: m["to"] == phone, after=start, timeout=60)
        latencies.append(time.perf_counter() - t0)
        n += 1
        await asyncio.sleep(args.pause)


async def flood(http, url, count: int) -> None:
    await asyncio.sleep(1.0)
    messages = [message(FLOODER, "text", {"body": f"question {i}"}, wamid=f"wamid.flood.{i}") for i in range(count)]
    deliveries = [delivery(messages[i : i + 10]) for i in range(0, count, 10)]
    for i in range(0, len(deliveries), 50):
        await asyncio.gather(*(post(http, url, d) for d in deliveries[i : i + 50]))


async def run(config: str, args, folder: Path) -> tuple[list[float], int]:
    database = await seeded_database(folder / f"{config.replace(' ', '').replace(',', '')}-{time.monotonic_ns()}.db")
    graph = await FakeGraphAPI().start()
    port = free_port()
    settings = whatsapp_settings(
        database,
        graph.url,
        flood_rate=1.0 if config == "flood, on" else 0.0,
        log_level="WARNING",
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_whatsapp(settings, listen="127.0.0.1", port=port, stop=stop, ready=ready.set))
    waiter = asyncio.ensure_future(ready.wait())
    await asyncio.wait([task, waiter], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    url = f"http://127.0.0.1:{port}/whatsapp"
    latencies: list[float] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as http:
            until = time.monotonic() + args.seconds
            jobs = [
                customer(http, url, graph, f"2126{10000000 + i}", until, latencies, args) for i in range(args.chats)
            ]
            if config != "quiet":
                jobs.append(flood(http, url, args.flood))
            await asyncio.gather(*jobs)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        await graph.stop()
    con = sqlite3.connect(database)
    ran = con.execute("SELECT count(*) FROM processed_messages WHERE message_id LIKE 'wamid.flood.%'").fetchone()[0]
    con.close()
    return latencies, ran


async def run_tg(config: str, args, folder: Path) -> tuple[list[float], int]:
    database = await seeded_database(folder / f"tg-{time.monotonic_ns()}.db")
    api = await FakeBotAPI().start()
    settings = Settings(
        _env_file=None,
        database=str(database),
        telegram_token=api.token,
        telegram_api_url=api.base_url,
        flood_rate=1.0 if config == "flood, on" else 0.0,
        log_level="WARNING",
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_telegram(settings, stop=stop, ready=ready.set))
    waiter = asyncio.ensure_future(ready.wait())
    await asyncio.wait([task, waiter], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    latencies: list[float] = []
    flood_ids: list[int] = []

    async def tg_customer(chat: int, until: float) -> None:
        while time.monotonic() < until:
            start = len(api.calls)
            t0 = time.perf_counter()
            api.text(chat, "menu")
            await api.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == chat, after=start, timeout=120)
            latencies.append(time.perf_counter() - t0)
            await asyncio.sleep(args.pause)

    async def tg_flood() -> None:
        await asyncio.sleep(1.0)
        flood_ids.extend(api.text(int(FLOODER[-7:]), f"question {i}") for i in range(args.flood))

    try:
        until = time.monotonic() + args.seconds
        jobs = [tg_customer(5000 + i, until) for i in range(args.chats)]
        if config != "quiet":
            jobs.append(tg_flood())
        await asyncio.gather(*jobs)
    finally:
        stop.set()
        await asyncio.wait_for(task, 120)
        await api.stop()
    con = sqlite3.connect(database)
    ran = {int(r[0]) for r in con.execute("SELECT message_id FROM processed_messages WHERE channel='telegram'")}
    con.close()
    return latencies, len(ran & set(flood_ids))


async def main(args) -> None:
    configs = ["quiet", "flood, off", "flood, on"]
    pooled: dict[str, list[float]] = {c: [] for c in configs}
    ran: dict[str, list[int]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for config in configs:
                print(f"… {config}", file=sys.stderr, flush=True)
                latencies, n = await (run_tg if args.channel == "telegram" else run)(config, args, Path(tmp))
                pooled[config] += latencies
                ran[config].append(n)
    print(
        f"{args.channel}: {args.chats} customers, a flood of {args.flood} messages from one more chat, "
        f"{args.rounds} rounds"
    )
    print(f"{'configuration':12} {'replies':>8} {'median ms':>10} {'p90 ms':>8} {'flood turns run':>16}")
    for config in configs:
        values = sorted(pooled[config])
        p90 = values[int(len(values) * 0.9)] if values else float("nan")
        turns = "-" if config == "quiet" else str(round(statistics.median(ran[config])))
        print(f"{config:12} {len(values):>8} {statistics.median(values) * 1000:>10.1f} {p90 * 1000:>8.1f} {turns:>16}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--channel", choices=["whatsapp", "telegram"], default="whatsapp")
    ap.add_argument("--chats", type=int, default=40)
    ap.add_argument("--pause", type=float, default=1.5, help="seconds a customer waits after each reply")
    ap.add_argument("--flood", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(ap.parse_args()))
