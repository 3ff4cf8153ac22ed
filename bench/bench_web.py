"""The web workspace's page times on a distributor-sized database: 100,000 contracts,
1,000,000 bills (bench_bigdata.py's), 20,000 requests (instalments with their schedules,
deferrals, callbacks) and 20,000 linked chats.

    .venv/bin/python bench/bench_web.py [--contracts 100000] [--requests 20000] [--n 200] [--keep DIR]

The workspace is served for real on 127.0.0.1 (aiohttp, the bot's store as `addad web` opens
it); one signed-in supervisor (it sees the most: full phones, the decisions log) fetches each
page `--n` times, one at a time, and the time of each request is taken from its start to the
last byte. Decisions are POSTs through the CSRF check, each on another pending request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_bigdata import CITIES, generate, pct  # noqa: E402

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KINDS = ("instalment", "deferral", "callback")


def add_requests(path: str, contracts: int, count: int) -> None:
    rng = random.Random(11)
    con = sqlite3.connect(path)
    con.execute("BEGIN")
    reqs, lines, links = [], [], []
    for i in range(count):
        number = f"{2_000_000 + rng.randrange(contracts)}"
        kind = KINDS[i % 3]
        filed = (NOW - timedelta(minutes=30 * (count - i))).isoformat()
        status = "pending" if i % 4 else ("approved" if i % 8 else "rejected")
        prefix = {"instalment": "IN", "deferral": "DF", "callback": "CB"}[kind]
        reqs.append(
            (
                i + 1,
                f"{prefix}-2026-{i + 1:06d}",
                kind,
                number,
                "telegram",
                str(10_000 + i),
                "fr" if i % 3 else "ar",
                status,
                30_000 + rng.randrange(60_000) if kind != "callback" else None,
                3 if kind == "instalment" else None,
                "2026-12-10" if kind == "deferral" else None,
                "job",
                None,
                json.dumps({"phone": "+212612345678"} if kind == "callback" else {}),
                filed,
                filed,
            )
        )
        if kind == "instalment":
            for seq in (1, 2, 3):
                lines.append((i + 1, seq, f"2027-0{seq}-23", 15_000))
        links.append(("telegram", str(10_000 + i), number, "phone", filed))
    con.executemany(
        "INSERT INTO requests (id, reference, kind, contract, channel, user_id, lang, status, amount, months, "
        "defer_until, reason, reason_text, details, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        reqs,
    )
    con.executemany("INSERT INTO instalment_lines VALUES (?,?,?,?)", lines)
    con.executemany("INSERT OR IGNORE INTO chat_links VALUES (?,?,?,?,?)", links)
    con.commit()
    con.execute("ANALYZE")
    con.close()


async def main(args) -> None:
    import aiohttp
    from aiohttp import web

    from bot.web import app as web_app
    from bot.web.accounts import hash_password
    from bot.web.server import HANDLER_ARGS
    from bot.wiring import open_store
    from conversations.profile import load_profile

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-web-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = str(folder / "web.sqlite3")
    if not Path(path).exists():
        store = await open_store(path)  # the schema, by the migrations
        await store.close()
        took = generate(path, args.contracts, 10)
        add_requests(path, args.contracts, args.requests)
        print(
            f"generated {args.contracts} contracts, {args.contracts * 10} bills, "
            f"{args.requests} requests in {took:.0f} s"
        )
    clock_now = [NOW]
    store = await open_store(path, lambda: clock_now[0])
    async with store.transaction() as tx:
        if await tx.account("bench") is None:
            await tx.add_account("bench", "supervisor", hash_password("bench password"))
    root = web.Application()
    web_app.mount(root, web_app.make_app(store, load_profile(), clock=lambda: clock_now[0], secret=b"bench"))
    runner = web.AppRunner(root, access_log=None, **HANDLER_ARGS)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    rng = random.Random(3)
    con = sqlite3.connect(path)
    pending = [r[0] for r in con.execute("SELECT reference FROM requests WHERE status='pending' ORDER BY id")]
    con.close()
    rng.shuffle(pending)
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[base])
    results: dict[str, list[float]] = {}
    try:
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.get(base + "/web/signin") as r:
                csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text()).group(1)  # type: ignore[union-attr]
            async with http.post(
                base + "/web/signin", data={"name": "bench", "password": "bench password", "csrf": csrf}
            ) as r:
                assert r.status == 200, r.status
                csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text()).group(1)  # type: ignore[union-attr]

            def contract() -> str:
                return f"{2_000_000 + rng.randrange(args.contracts)}"

            pages = {
                "queue (pending)": lambda: "/web/requests",
                "queue filtered (kind, city, age)": lambda: (
                    f"/web/requests?kind=instalment&city={CITIES[rng.randrange(len(CITIES))]}&age=3"
                ),
                "queue, page 20": lambda: "/web/requests?status=&page=20",
                "request page": lambda: f"/web/requests/{pending[rng.randrange(len(pending))]}",
                "search by contract": lambda: f"/web/customers?q={contract()}",
                "search by phone": lambda: f"/web/customers?q=06{rng.randrange(args.contracts):08d}",
                "search by name": lambda: f"/web/customers?q=Client+{rng.randrange(args.contracts)}",
                "customer page": lambda: f"/web/customers/{contract()}",
            }
            for name, make in pages.items():
                times = results.setdefault(name, [])
                for _ in range(args.n):
                    url = base + make()
                    started = time.perf_counter()
                    async with http.get(url) as r:
                        body = await r.read()
                        assert r.status == 200, (url, r.status)
                    assert b"bench \xc2\xb7 " in body, url  # signed in ("bench · superviseur")
                    times.append(time.perf_counter() - started)
            times = results.setdefault("decision (POST, approve)", [])
            for reference in pending[: args.n]:
                started = time.perf_counter()
                async with http.post(
                    base + f"/web/requests/{reference}/decide", data={"decision": "approved", "csrf": csrf}
                ) as r:
                    await r.read()
                    assert r.status == 200, r.status
                times.append(time.perf_counter() - started)
    finally:
        await runner.cleanup()
        await store.close()
    print(f"{'page':36} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, times in results.items():
        print(f"{name:36} {pct(times, 0.5):8.1f} {pct(times, 0.99):8.1f} {max(times) * 1000:8.1f}")
    worst = max(pct(t, 0.99) for t in results.values())
    print(f"worst p99: {worst:.1f} ms (target <= 100 ms: {'met' if worst <= 100 else 'NOT met'})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contracts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--n", type=int, default=200, help="requests per page")
    parser.add_argument("--keep", help="keep (and reuse) the database in this folder")
    asyncio.run(main(parser.parse_args()))
