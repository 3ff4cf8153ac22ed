"""A reminder campaign (issue 22): 100,000 reading reminders queued, then sent by the real
Telegram bot at the profile's reminder rate while customers keep writing; their replies'
latency and the process's memory are measured.

    .venv/bin/python bench/bench_remind.py [--customers 100000] [--seconds 60] [--rate 20]
        [--channel-rate R] [--rtt-ms 50] [--writers 200] [--reply-rate 5] [--all] [--tracemalloc N]

    # the whole campaign, every reminder sent (bench/README.md): about 8 minutes
    .venv/bin/python bench/bench_remind.py --rate 250 --all --seconds 600

1. A file database with --customers contracts, each linked to its own Telegram chat that said
   yes to all reminders (written with sqlite3 directly: a fixture, not what is measured).
2. `conversations.reminders.each_due` for 1 December 2026 (the reading window opens), as
   `addad remind` runs it: time, rows queued, resident memory before and after.
3. `run_telegram` (what `addad telegram` runs: polling, the engine, the dispatcher and its
   reminder lane, the bot's own daily reminder run) against tests/fake_botapi.py with --rtt-ms
   on every call, in this process, for --seconds: --writers of the customers send "solde"
   (their balance: a real turn) at --reply-rate a second in all. Measured: reminders sent a
   second (the lane's rate), each reply's latency from the update being offered by getUpdates
   to its sendMessage reaching the server (so one simulated round trip is in it), and resident
   memory every 5 s. With --all it runs until every reminder queued has reached the fake
   server (and 5 s more, for a duplicate), --seconds being the limit, then says how many chats
   got one, more than one, none, and the outbox's statuses in the database. --channel-rate is
   Telegram's overall limit in PTB's rate limiter (default 1.5 x --rate, as 30/s is to 20/s).
   --tracemalloc N: what was allocated and is still alive, grown between the sample at 20 s
   and the last one, by allocation site (N frames; slow).

The clock is ADDAD_CLOCK's kind (`SteadyClock`): 1 December 2026, 10:00 in Casablanca, running
at real speed (outside quiet hours).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # 10:00 in Casablanca: the profile's reminder time
FIRST_CHAT = 500_000_001


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build(path: Path, customers: int) -> None:
    """Contracts, links, consents and sessions for `customers` chats (after the migrations)."""
    con = sqlite3.connect(path)
    stamp = "2026-11-20T09:00:00+00:00"
    with con:
        con.executemany(
            "INSERT INTO contracts (contract, service, holder_name, phone, language, city, meter_number, meter_kind, "
            "meter_digits, last_index, last_index_date, tariff, low_income, updated_at) "
            "VALUES (?, 'electricity', ?, ?, 'fr', 'Casablanca', ?, 'postpaid', 6, 45210, '2026-10-31', 'BT-RES', 0, "
            "?)",
            ((str(6_000_000 + i), f"Client {i}", f"+2126{i:08d}", f"E-{i}", stamp) for i in range(customers)),
        )
        con.executemany(
            "INSERT INTO chat_links (channel, user_id, contract, method, verified_at) "
            "VALUES ('telegram', ?, ?, 'phone', ?)",
            ((str(FIRST_CHAT + i), str(6_000_000 + i), stamp) for i in range(customers)),
        )
        con.executemany(
            "INSERT INTO reminder_consents (channel, user_id, kinds, asked_at, answered_at, how) "
            "VALUES ('telegram', ?, 'reading,due,instalment,consumption,notice', ?, ?, 'button')",
            ((str(FIRST_CHAT + i), stamp, stamp) for i in range(customers)),
        )
        con.executemany(
            "INSERT INTO sessions (channel, user_id, state, data, lang, version, updated_at) "
            "VALUES ('telegram', ?, 'menu.main', '{}', 'fr', 1, ?)",
            ((str(FIRST_CHAT + i), stamp) for i in range(customers)),
        )
    con.close()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def main(args: argparse.Namespace) -> None:
    from bot.config import Settings
    from bot.runtime import run_telegram
    from conversations import reminders
    from conversations.profile import load_profile
    from storage import open_store
    from storage.clock import SteadyClock
    from tests.fake_botapi import FakeBotAPI

    work = Path(tempfile.mkdtemp(prefix="bench-remind-"))
    database = work / "addad.sqlite3"
    profile_path = work / "profile.toml"
    text = (ROOT / "profiles" / "onee.toml").read_text(encoding="utf-8")
    profile_path.write_text(text.replace("\nrate = 20 ", f"\nrate = {args.rate} ", 1), encoding="utf-8")
    profile = load_profile(profile_path)
    assert profile.reminders.rate == args.rate
    clock = SteadyClock(START)

    store = await open_store(database, clock=clock)
    await store.close()
    t0 = time.perf_counter()
    build(database, args.customers)
    print(f"fixture: {args.customers:,} linked, opted-in customers in {time.perf_counter() - t0:.1f} s")

    store = await open_store(database, clock=clock)
    before = rss_mb()
    t0 = time.perf_counter()
    queued = 0
    peak = before
    async for _ in reminders.each_due(store, profile, date(2026, 12, 1)):
        queued += 1
        if queued % 10_000 == 0:
            peak = max(peak, rss_mb())
    took = time.perf_counter() - t0
    await store.close()
    print(
        f"queue: {queued:,} reminders in {took:.1f} s ({queued / took:,.0f}/s); "
        f"RSS {before:.0f} MB before, peak {max(peak, rss_mb()):.0f} MB"
    )

    api = await FakeBotAPI(rtt=args.rtt_ms / 1000, record=False).start()
    offered: dict[int, float] = {}
    latencies: list[float] = []
    stamps: list[float] = []  # when each measured message was offered
    # Reminders received, per chat (a byte each: what the fake server counts must not be what
    # grows), and how many arrived after the bot's first 5 s, with the first and last of them.
    received = bytearray(args.customers)
    sent = {"all": 0, "late": 0, "first": 0.0, "last": 0.0}
    begin = float("inf")

    def on_send(p: dict) -> None:
        chat = int(p["chat_id"])
        now = time.perf_counter()
        if "période de relève" in str(p.get("text")):
            received[chat - FIRST_CHAT] = min(255, received[chat - FIRST_CHAT] + 1)
            sent["all"] += 1
            if now - begin > 5:
                sent["late"] += 1
                sent["first"] = sent["first"] or now
                sent["last"] = now
        elif chat in offered:
            at = offered.pop(chat)
            latencies.append(now - at)
            stamps.append(at)

    api.on_send = on_send
    settings = Settings(
        _env_file=None,
        database=str(database),
        operator=str(profile_path),
        telegram_token=api.token,
        telegram_api_url=api.base_url,
        clock=START.isoformat().replace("+00:00", "Z"),
        flood_rate=0,
        # Telegram's overall limit in PTB's rate limiter, which replies and reminders share: above
        # the reminders' rate as 30/s is above 20/s, so replies find room (at or below it, a reply
        # waits behind the reminders in flight: ~300 ms at 100/s against 30/s).
        telegram_rate_limit=args.channel_rate or args.rate * 1.5,
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    if args.tracemalloc:
        tracemalloc.start(args.tracemalloc)
    traced: list[tracemalloc.Snapshot] = []
    task = asyncio.create_task(run_telegram(settings, stop=stop, ready=ready.set))
    await asyncio.wait_for(ready.wait(), 60)
    memory: list[tuple[float, float]] = []
    begin = time.perf_counter()
    gap = 1 / args.reply_rate
    writer = 0
    next_write = begin
    next_sample = begin
    done_at = None  # --all: when the last reminder arrived (then 5 s more, for any duplicate)
    while (now := time.perf_counter()) - begin < args.seconds:
        if args.all and done_at is None and sent["all"] >= queued:
            done_at = now
        if done_at is not None and now - done_at > 5:
            break
        if now >= next_sample:
            memory.append((now - begin, rss_mb()))
            next_sample += 5
            if args.tracemalloc and ((not traced and now - begin >= 20) or now - begin >= args.seconds - 5):
                traced = [*traced[:1], tracemalloc.take_snapshot()]  # the first one, and the latest
        if not latencies and offered and now - min(offered.values()) > 30:
            print(f"at {now - begin:.0f} s: {len(offered)} customers' messages unanswered for 30 s", flush=True)
            offered.clear()  # said once; measured again from here
        if now >= next_write:
            chat = FIRST_CHAT + (writer % args.writers)
            writer += 1
            if chat not in offered:  # one message in flight per chat
                api.text(chat, "solde")
                offered[chat] = time.perf_counter()
            next_write += gap
        await asyncio.sleep(min(next_write, next_sample) - time.perf_counter())
    stop.set()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, 30)
    await api.stop()

    if len(traced) == 2:
        # What grew between the first sample and the last: the allocation sites, largest first.
        print("tracemalloc: grown since the first sample (KiB, blocks, where)")
        for stat in traced[1].compare_to(traced[0], "traceback")[:12]:
            print(
                f"  {stat.size_diff / 1024:+9.0f} KiB {stat.count_diff:+8d}  "
                + " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(stat.traceback[-5:]))
            )
    ran = time.perf_counter() - begin
    rate = (sent["late"] - 1) / (sent["last"] - sent["first"]) if sent["late"] > 1 else 0.0
    print(
        f"send: {sent['all']:,} reminders in {ran:.0f} s; {rate:.1f}/s after the first 5 s "
        f"(configured {args.rate:g}/s); the {queued:,} take {queued / args.rate / 60:.1f} min at that rate"
    )
    once = sum(1 for n in received if n == 1)
    twice = sum(1 for n in received if n > 1)
    con = sqlite3.connect(database)
    statuses = dict(con.execute("SELECT status, count(*) FROM outbox WHERE kind='reminder' GROUP BY status"))
    keys = con.execute("SELECT count(*) FROM reminders_sent").fetchone()[0]
    con.close()
    print(
        f"exactly once: the fake Bot API got a reminder in {once:,} chats, more than one in {twice:,}, "
        f"none in {args.customers - once - twice:,}; the database: {keys:,} keys, outbox {statuses}"
    )
    for label, values in (
        ("all", latencies),
        ("after the first 5 s", [v for v, at in zip(latencies, stamps, strict=True) if at - begin > 5]),
    ):
        print(
            f"replies ({label}): {len(values)} at {args.rtt_ms:g} ms round trip: p50 {pct(values, 0.5) * 1000:.0f} ms, "
            f"p99 {pct(values, 0.99) * 1000:.0f} ms, max {max(values, default=0) * 1000:.0f} ms "
            f"(mean {statistics.fmean(values) * 1000 if values else 0:.0f} ms)"
        )
    every = max(1, len(memory) // 16)  # about 16 samples shown
    print("RSS (s, MB): " + ", ".join(f"{t:.0f}: {m:.1f}" for t, m in memory[::every] + memory[-1:]))
    steady = [m for t, m in memory if t >= 60]
    if steady:
        print(f"RSS from 60 s on: min {min(steady):.1f} MB, max {max(steady):.1f} MB, last {steady[-1]:.1f} MB")
    slices = {}
    for v, at in zip(latencies, stamps, strict=True):
        slices.setdefault(int((at - begin) // 10) * 10, []).append(v)
    print("replies' max by 10 s (s: ms): " + ", ".join(f"{k}: {max(v) * 1000:.0f}" for k, v in sorted(slices.items())))


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--rate", type=float, default=20)
    p.add_argument("--channel-rate", type=float, default=0, help="Telegram's overall limit (default 1.5 x --rate)")
    p.add_argument("--rtt-ms", type=float, default=50)
    p.add_argument("--writers", type=int, default=200)
    p.add_argument("--reply-rate", type=float, default=5)
    p.add_argument("--all", action="store_true", help="run until every reminder is sent (--seconds: the limit)")
    p.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES", help="diff allocation snapshots")
    asyncio.run(main(p.parse_args()))
