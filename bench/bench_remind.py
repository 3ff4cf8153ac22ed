"""A reminder campaign (issue 22): 100,000 reading reminders queued, then sent by the real
Telegram bot at the profile's reminder rate while customers keep writing; their replies'
latency and the process's memory are measured.

    .venv/bin/python bench/bench_remind.py [--customers 100000] [--seconds 60] [--rate 20]
        [--rtt-ms 50] [--writers 200] [--reply-rate 5]

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
   memory every 5 s.

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
    sent_reminders: list[float] = []

    def on_send(p: dict) -> None:
        chat = int(p["chat_id"])
        now = time.perf_counter()
        if "période de relève" in str(p.get("text")):
            sent_reminders.append(now)
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
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_telegram(settings, stop=stop, ready=ready.set))
    await asyncio.wait_for(ready.wait(), 60)
    memory: list[tuple[float, float]] = []
    begin = time.perf_counter()
    gap = 1 / args.reply_rate
    writer = 0
    next_write = begin
    next_sample = begin
    while (now := time.perf_counter()) - begin < args.seconds:
        if now >= next_sample:
            memory.append((now - begin, rss_mb()))
            next_sample += 5
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

    window = [t for t in sent_reminders if t - begin > 5]  # after the bot's start-up
    rate = (len(window) - 1) / (window[-1] - window[0]) if len(window) > 1 else 0.0
    print(
        f"send: {len(sent_reminders):,} reminders in {args.seconds:.0f} s; {rate:.1f}/s after the first 5 s "
        f"(configured {args.rate:g}/s); the {queued:,} would take {queued / args.rate / 60:.0f} min"
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
    print("RSS (s, MB): " + ", ".join(f"{t:.0f}: {m:.0f}" for t, m in memory))
    slices = {}
    for v, at in zip(latencies, stamps, strict=True):
        slices.setdefault(int((at - begin) // 10) * 10, []).append(v)
    print("replies' max by 10 s (s: ms): " + ", ".join(f"{k}: {max(v) * 1000:.0f}" for k, v in sorted(slices.items())))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--rate", type=float, default=20)
    p.add_argument("--rtt-ms", type=float, default=50)
    p.add_argument("--writers", type=int, default=200)
    p.add_argument("--reply-rate", type=float, default=5)
    asyncio.run(main(p.parse_args()))
