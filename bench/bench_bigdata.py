"""Turns on a distributor-sized database: 100,000 contracts and 1,000,000 bills.

    /tmp/venv/bin/python bench/bench_bigdata.py [--contracts 100000] [--bills-per-contract 10]
        [--turns 2000] [--keep DIR] [--sync both|light|full] [--turns-only]
        [--postgres postgresql://addad:addad@127.0.0.1:54339/postgres]

1. Generates the database with the real schema (`open_store` runs the migrations), rows written
   with `executemany` in one transaction (the import command's upserts are measured elsewhere).
2. Links 2,000 chats to random contracts and measures, through the engine (storage included,
   no channel), the balance turn ("combien je dois ?") and the three reading turns ("<index>",
   "Sans photo", "Confirmer"), one at a time: p50/p99/max per turn, every other customer with
   SQLite syncing every COMMIT (`--sync full`, the code before the light commits) and the
   others as the bot commits now (`--sync light`), side by side in the same run.
3. Prints the process RSS after opening 10,000 conversations (sessions read and written).
4. Times `python -m bot telegram` on that database, from the process start to its first
   `getUpdates` on the fake Bot API server (median of 5 starts).
5. Reads the RSS of that bot process once 10,000 new chats have each sent a message through
   the fake Bot API and been answered.

With `--postgres ADMIN_URL` (a server's maintenance database) step 2 runs on PostgreSQL instead:
the SQLite file of step 1 is copied into a fresh database on that server with `addad db copy`'s
code (storage/copy.py: COPY in batches), ANALYZEd, and the same turns run against it, opened as
the bot opens it; steps 3-5 are skipped. Run the server with fsync on (PG_FSYNC=on .ci/postgres
start DIR PORT) for figures a deployment would see.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CITIES = ["Casablanca", "Rabat", "Fès", "Marrakech", "Tanger", "Agadir", "Meknès", "Oujda", "Kénitra", "Tétouan"]


def generate(path: str, contracts: int, per_contract: int) -> float:
    started = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    stamp = "2026-11-01T00:00:00+00:00"
    rng = random.Random(7)
    con.execute("BEGIN")
    rows, bills = [], []
    for i in range(contracts):
        number = f"{2_000_000 + i}"
        last = 10_000 + rng.randrange(50_000)
        rows.append(
            (
                number,
                "electricity",
                f"Client {i}",
                f"+2126{i:08d}",
                "fr" if i % 3 else "ar",
                CITIES[i % len(CITIES)],
                f"E-{number}",
                "postpaid",
                6,
                last,
                "2026-10-31",
                "BT-RES",
                i % 17 == 0,
                stamp,
            )
        )
        index = last
        for k in range(per_contract):  # newest first, one bill a month
            end = date(2026, 10, 31) - timedelta(days=30 * k)
            use = 120 + rng.randrange(120)
            amount = use * 107
            bills.append(
                (
                    f"B{number}-{k}",
                    number,
                    (end - timedelta(days=30)).isoformat(),
                    end.isoformat(),
                    (end + timedelta(days=5)).isoformat(),
                    (end + timedelta(days=25)).isoformat(),
                    index - use,
                    index,
                    use,
                    int(k % 4 == 1),
                    amount,
                    amount if k > 1 else 0,
                    stamp,
                )
            )
            index -= use
        if len(bills) >= 100_000:
            con.executemany("INSERT INTO contracts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            con.executemany("INSERT INTO bills VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", bills)
            rows, bills = [], []
    con.executemany("INSERT INTO contracts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.executemany("INSERT INTO bills VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", bills)
    con.execute(
        "INSERT INTO readings (contract, reading_date, index_value, source, submitted_at) "
        "SELECT contract, last_index_date, last_index, 'actual', updated_at FROM contracts"
    )
    con.commit()
    con.execute("ANALYZE")
    con.close()
    return time.perf_counter() - started


_SYNC = {"light": "NORMAL", "full": "FULL"}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] * 1000


async def main(args) -> None:
    import storage
    from bot.wiring import open_store
    from conversations.engine import Engine
    from conversations.events import Inbound
    from conversations.profile import load_profile
    from conversations.understanding import warm_up
    from storage.records import SessionRecord

    folder = args.keep or tempfile.mkdtemp(prefix="bench-bigdata-")
    path = os.path.join(folder, "big.sqlite3")
    if not os.path.exists(path):
        store = await storage.open_store(path)
        await store.close()
        took = generate(path, args.contracts, args.bills_per_contract)
        print(
            f"generated {args.contracts:,} contracts and {args.contracts * args.bills_per_contract:,} bills "
            f"in {took:.1f} s ({os.path.getsize(path) / 1e6:,.0f} MB)"
        )
    pg_name = None
    if args.postgres:
        pg_name, target = await _to_postgres(path, args.postgres)
    clock_start, t0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC), time.monotonic()
    warm_up(clock_start.date())
    try:
        if pg_name is not None:
            await _turns_postgres(args, target, clock_start, t0)
            return
    finally:
        if pg_name is not None:
            await _drop_postgres(args.postgres, pg_name)
    store = await open_store(path)  # as the bot opens it
    engine = Engine(store, load_profile(), clock=lambda: clock_start + timedelta(seconds=time.monotonic() - t0))
    rng = random.Random()
    # New chat ids on every run: with --keep the database already holds the last run's chats.
    # and contracts a customer already sent a reading for are left out (a second one the same
    # day is another journey: "replace it?").
    base = 10**7 * (1 + int(time.time()) % 10**5)
    async with store.snapshot() as tx:
        sent = {r.contract for r in await tx.customer_readings()}
    picks = [
        c
        for c in (f"{2_000_000 + n}" for n in rng.sample(range(args.contracts), args.turns + len(sent)))
        if c not in sent
    ][: args.turns]
    chats = [(str(base + i), contract) for i, contract in enumerate(picks)]
    async with store.transaction() as tx:
        for chat, contract in chats:
            await tx.link_chat("bench", chat, contract, "phone")
            await tx.save_session(SessionRecord("bench", chat, "menu.main", {}, "fr", 0, None))
    ids = iter(range(10**9))

    async def turn(chat: str, text: str) -> tuple[float, str]:
        start = time.perf_counter()
        replies = await engine.handle(
            Inbound(channel="bench", user_id=chat, message_id=f"b{base}-{next(ids)}", text=text)
        )
        return time.perf_counter() - start, "\n".join(r.text for r in replies)

    # Side by side, customer by customer: every other one with SQLite syncing every COMMIT
    # (synchronous=FULL: the code before the light commits), the others as the bot runs now
    # (NORMAL, the WAL fsynced only after a turn that records something: storage/sqlite/db.py).
    modes = {"light": "NORMAL", "full": "FULL"} if args.sync == "both" else {args.sync: _SYNC[args.sync]}
    timings = {m: {"balance": [], "index": [], "no photo": [], "confirm": []} for m in modes}
    raw, wal = store.db.conn.raw, store.db.wal_path
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    for i, (chat, contract) in enumerate(chats):
        mode = list(modes)[i % len(modes)]
        raw.execute(f"PRAGMA synchronous = {modes[mode]}")  # between turns: no transaction open
        store.db.wal_path = wal if mode == "light" else None  # full: SQLite's own sync alone
        cpu_start = time.thread_time()
        took, text = await turn(chat, "combien je dois ?")
        assert "Total" in text or "Aucune facture" in text or "payé" in text, text[:200]
        timings[mode]["balance"].append(took)
        cpu[mode].append(time.thread_time() - cpu_start)
        async with store.snapshot() as tx:
            last = (await tx.last_reading(contract)).index_value
        for name, text in (("index", str(last + 150)), ("no photo", "Sans photo"), ("confirm", "Confirmer")):
            took, said = await turn(chat, text)
            timings[mode][name].append(took)
        assert "RL-" in said, said[:300]
    raw.execute("PRAGMA synchronous = NORMAL")
    store.db.wal_path = wal
    print(f"\n{args.turns:,} customers, one turn at a time (engine + storage, file database)\n")
    print("| turn | commits | p50 | p99 | max |\n|---|---|---|---|---|")
    for name in ("balance", "index", "no photo", "confirm"):
        for mode in modes:
            values = timings[mode][name]
            print(
                f"| {name} | {mode} | {pct(values, 0.5):.2f} ms | {pct(values, 0.99):.2f} ms "
                f"| {max(values) * 1000:.2f} ms |"
            )
    for mode in modes:
        print(f"balance CPU ({mode}, this thread): p50 {pct(cpu[mode], 0.5):.2f} ms, p99 {pct(cpu[mode], 0.99):.2f} ms")
    if len(modes) == 2:
        for name in ("balance", "confirm"):
            ratio = pct(timings["light"][name], 0.99) / pct(timings["full"][name], 0.99)
            print(f"{name} p99, light / full: {ratio:.2f}")
    if args.turns_only:
        await store.close()
        return

    # 10,000 open conversations: sessions in the database, nothing per chat kept in memory.
    before = rss_mb()
    for i in range(10_000):
        await turn(f"open-{base}-{i}", "bonjour")
    print(f"\nRSS (max resident) after 10,000 open conversations: {rss_mb():.0f} MB (before them: {before:.0f} MB)")
    await store.close()
    print(f"startup to the first getUpdates: {await startup(path):.2f} s (median of 5)")
    current, peak = await bot_rss(path, 10_000)
    print(
        f"the bot process (python -m bot telegram) after 10,000 new chats said bonjour through the fake "
        f"Bot API: RSS {current:.0f} MB, peak {peak:.0f} MB"
    )


def _admin_to(admin: str, name: str) -> str:
    import re

    return re.sub(r"/[^/?]*(\?|$)", rf"/{name}\1", admin, count=1)


async def _to_postgres(path: str, admin_url: str) -> tuple[str, str]:
    """A fresh database on the server holding the SQLite file's rows (`addad db copy`'s code)."""
    import asyncpg

    import storage
    from storage.copy import copy_store

    name = f"addad_big_{os.getpid()}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        fsync = await admin.fetchval("SHOW fsync")
    finally:
        await admin.close()
    url = _admin_to(admin_url, name)
    started = time.perf_counter()
    src, dst = await storage.open_store(path), await storage.open_store(url)
    try:
        report = await copy_store(src, dst)
    finally:
        await src.close()
        await dst.close()
    pg = await asyncpg.connect(url)
    try:
        await pg.execute("ANALYZE")
        size = await pg.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await pg.close()
    rows = sum(report.rows.values())
    print(
        f"copied into PostgreSQL (fsync={fsync}) with storage.copy and ANALYZEd in "
        f"{time.perf_counter() - started:.1f} s: {rows:,} rows, {size / 1e6:,.0f} MB"
    )
    return name, url


async def _drop_postgres(admin_url: str, name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


async def _turns_postgres(args, url: str, clock_start: datetime, t0: float) -> None:
    """Step 2 on PostgreSQL: the balance and reading turns, one at a time, p50/p99/max."""
    from bot.wiring import open_store
    from conversations.engine import Engine
    from conversations.events import Inbound
    from conversations.profile import load_profile
    from storage.records import SessionRecord

    store = await open_store(url)
    engine = Engine(store, load_profile(), clock=lambda: clock_start + timedelta(seconds=time.monotonic() - t0))
    rng = random.Random()
    picks = [f"{2_000_000 + n}" for n in rng.sample(range(args.contracts), args.turns)]
    chats = [(f"pg{i}", contract) for i, contract in enumerate(picks)]
    async with store.transaction() as tx:
        for chat, contract in chats:
            await tx.link_chat("bench", chat, contract, "phone")
            await tx.save_session(SessionRecord("bench", chat, "menu.main", {}, "fr", 0, None))
    timings: dict[str, list[float]] = {"balance": [], "index": [], "no photo": [], "confirm": []}
    cpu: list[float] = []
    ids = iter(range(10**9))

    async def turn(chat: str, text: str) -> tuple[float, str]:
        start = time.perf_counter()
        replies = await engine.handle(Inbound(channel="bench", user_id=chat, message_id=f"pg-{next(ids)}", text=text))
        return time.perf_counter() - start, "\n".join(r.text for r in replies)

    try:
        for chat, contract in chats:
            cpu_start = time.thread_time()
            took, text = await turn(chat, "combien je dois ?")
            assert "Total" in text or "Aucune facture" in text or "payé" in text, text[:200]
            timings["balance"].append(took)
            cpu.append(time.thread_time() - cpu_start)
            async with store.snapshot() as tx:
                last = (await tx.last_reading(contract)).index_value
            for name, text in (("index", str(last + 150)), ("no photo", "Sans photo"), ("confirm", "Confirmer")):
                took, said = await turn(chat, text)
                timings[name].append(took)
            assert "RL-" in said, said[:300]
    finally:
        await store.close()
    print(f"\n{args.turns:,} customers, one turn at a time (engine + storage, PostgreSQL)\n")
    print("| turn | p50 | p99 | max |\n|---|---|---|---|")
    for name, values in timings.items():
        print(f"| {name} | {pct(values, 0.5):.2f} ms | {pct(values, 0.99):.2f} ms | {max(values) * 1000:.2f} ms |")
    print(f"balance CPU (this thread): p50 {pct(cpu, 0.5):.2f} ms, p99 {pct(cpu, 0.99):.2f} ms")
    print(f"load average {os.getloadavg()}")


async def spawn_bot(path: str, api, **env: str) -> asyncio.subprocess.Process:
    """`python -m bot telegram` on `path`, talking to the fake Bot API `api`. An asyncio
    subprocess: the fake server runs on this loop, and the bot calls it while it stops (a
    blocking wait would leave the bot waiting for the server)."""
    env = {
        **os.environ,
        "ADDAD_DATABASE": path,
        "ADDAD_TELEGRAM_TOKEN": api.token,
        "ADDAD_TELEGRAM_API_URL": api.base_url,
        "PYTHONPATH": str(ROOT),
        **env,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "telegram",
        env=env,
        cwd=os.path.dirname(path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def bot_rss(path: str, chats: int) -> tuple[float, float]:
    """RSS of the real bot process once `chats` new conversations are open (one message each)."""
    from tests.fake_botapi import FakeBotAPI

    first = 9 * 10**8 + int(time.time()) % 10**6 * 100  # chat ids never seen in this database
    # Update ids too: a database kept from an earlier run (--keep) has handled 1…10,000, and
    # the bot rightly takes those as redeliveries.
    api = await FakeBotAPI(record=False, first_update_id=first).start()
    # No 30 messages/s cap here: it would make 10,000 answers take 6 minutes, and memory is the point.
    proc = await spawn_bot(path, api, ADDAD_TELEGRAM_RATE_LIMIT="0")
    try:
        for i in range(chats):
            api.text(first + i, "bonjour")
        deadline = time.monotonic() + 300
        while api.sent_count < chats and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert api.sent_count >= chats, f"only {api.sent_count} answers"
        status = Path(f"/proc/{proc.pid}/status").read_text()
        kb = {
            line.split(":")[0]: int(line.split()[1])
            for line in status.splitlines()
            if line.startswith(("VmRSS", "VmHWM"))
        }
        return kb["VmRSS"] / 1024, kb["VmHWM"] / 1024
    finally:
        proc.kill()
        await proc.wait()
        await api.stop()


async def startup(path: str) -> float:
    from tests.fake_botapi import FakeBotAPI

    api = await FakeBotAPI().start()
    first = asyncio.Event()
    polls = api._m_getUpdates

    async def polled(p: dict) -> list:
        first.set()
        return await polls(p)

    api._m_getUpdates = polled
    times = []
    try:
        for _ in range(5):
            first.clear()
            start = time.perf_counter()
            proc = await spawn_bot(path, api)
            try:
                await asyncio.wait_for(first.wait(), 60)
                times.append(time.perf_counter() - start)
            finally:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 30)
    finally:
        await api.stop()
    return statistics.median(times)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--contracts", type=int, default=100_000)
    ap.add_argument("--bills-per-contract", type=int, default=10)
    ap.add_argument("--turns", type=int, default=2000)
    ap.add_argument("--keep", help="a folder to keep (and reuse) the generated database")
    ap.add_argument(
        "--sync",
        choices=("both", "light", "full"),
        default="both",
        help="light: as the bot commits (fsync only after recording turns); full: every COMMIT synced "
        "(the code before); both: customers alternated between the two in the same run",
    )
    ap.add_argument("--turns-only", action="store_true", help="skip the RSS and start-up measures")
    ap.add_argument("--postgres", metavar="ADMIN_URL", help="run the turns on a PostgreSQL copy (module docstring)")
    asyncio.run(main(ap.parse_args()))
