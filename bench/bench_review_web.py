"""Page times of issue 20's workspace pages (readings to review, the handoff queue and a
conversation, statistics, their SVG charts) on a distributor-sized database: bench_web.py's
(100,000 contracts, 1,000,000 bills, 20,000 requests) plus a year of monthly readings per
contract (1.2M), this month's customer readings (60,000, 1 % flagged) and estimates (30,000),
300 chats waiting for an adviser with 40 lines of conversation each, 20,000 unrecognised
messages and 50,000 audit entries.

    .venv/bin/python bench/bench_review_web.py [--contracts 100000] [--n 200] [--keep DIR]

Served for real on 127.0.0.1; one signed-in supervisor fetches each page `--n` times, one at a
time, start of the request to the last byte; reviews and takes are POSTs through the CSRF check.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sqlite3
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_bigdata import generate, pct  # noqa: E402
from bench_web import NOW, add_requests  # noqa: E402


def add_review_data(path: str, contracts: int) -> None:
    rng = random.Random(17)
    con = sqlite3.connect(path)
    con.execute("BEGIN")
    stamp = "2026-11-01T00:00:00+00:00"
    history, customer = [], []
    for i in range(contracts):
        number = f"{2_000_000 + i}"
        index = 10_000 + rng.randrange(40_000)
        for k in range(11, 0, -1):  # a year of monthly agent readings before the last one
            day = date(2026, 10, 31) - timedelta(days=30 * k)
            history.append((number, day.isoformat(), index, "actual", stamp))
            index += 120 + rng.randrange(120)
        if i % 10 < 6:  # this month's customer readings
            flagged = i % 100 == 0
            use = 3000 if flagged else 150 + rng.randrange(100)
            at = (NOW - timedelta(minutes=rng.randrange(20 * 24 * 60))).isoformat()
            customer.append(
                (
                    number,
                    at[:10],
                    index + use,
                    f"RL-2026-{i + 1:06d}",
                    "telegram" if i % 2 else "whatsapp",
                    str(10_000 + i),
                    index,
                    "2026-10-31",
                    use,
                    int(flagged),
                    "outlier" if flagged else None,
                    at,
                )
            )
        elif i % 10 < 9:
            history.append((number, "2026-11-20", index + 150, "estimated", "2026-11-20T05:00:00+00:00"))
    con.executemany(
        "INSERT OR IGNORE INTO readings (contract, reading_date, index_value, source, submitted_at) VALUES (?,?,?,?,?)",
        history,
    )
    con.executemany(
        "INSERT INTO readings (contract, reading_date, index_value, source, reference, channel, user_id, "
        "previous_index, previous_date, consumption, review, review_reason, submitted_at) "
        "VALUES (?,?,?, 'customer', ?,?,?,?,?,?,?,?,?)",
        customer,
    )
    lines, handoffs = [], []
    for h in range(300):
        user = str(50_000 + h)
        handoffs.append((h + 1, "telegram", user, "fr", f"{2_000_000 + h}", (NOW - timedelta(minutes=h)).isoformat()))
        for k in range(40):
            at = (NOW - timedelta(minutes=h + 40 - k)).isoformat()
            lines.append(
                ("telegram", user, at, "customer" if k % 2 else "bot", f"message {k} du client 06••••••{h % 90 + 10}")
            )
    con.executemany(
        "INSERT INTO handoffs (id, channel, user_id, lang, contract, requested_at) VALUES (?,?,?,?,?,?)", handoffs
    )
    con.executemany("INSERT INTO chat_messages (channel, user_id, at, sender, text) VALUES (?,?,?,?,?)", lines)
    con.executemany(
        "INSERT INTO unrecognised (text, lang, intent, confidence, channel, state, seen_at) VALUES (?,?,?,?,?,?,?)",
        [
            (
                f"phrase inconnue {rng.randrange(2000)}",
                "fr",
                "unknown",
                0.2,
                "telegram",
                "menu.main",
                (NOW - timedelta(minutes=rng.randrange(40_000))).isoformat(),
            )
            for _ in range(20_000)
        ],
    )
    actions = ("link_failed", "link_ok", "reading_recorded", "request_filed", "link_locked")
    con.executemany(
        "INSERT INTO audit_log (at, actor, action, channel, user_id, contract) VALUES (?,?,?,?,?,?)",
        [
            (
                (NOW - timedelta(minutes=rng.randrange(90 * 24 * 60))).isoformat(),
                "customer",
                actions[i % 5],
                "telegram",
                str(i),
                f"{2_000_000 + rng.randrange(contracts)}",
            )
            for i in range(50_000)
        ],
    )
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

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-review-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = str(folder / "review.sqlite3")
    if not Path(path).exists():
        store = await open_store(path)
        await store.close()
        started = time.perf_counter()
        generate(path, args.contracts, 10)
        add_requests(path, args.contracts, 20_000)
        add_review_data(path, args.contracts)
        print(f"generated in {time.perf_counter() - started:.0f} s")
    clock_now = [NOW]
    store = await open_store(path, lambda: clock_now[0])
    async with store.transaction() as tx:
        if await tx.account("bench") is None:
            await tx.add_account("bench", "supervisor", hash_password("bench password"))
    root = web.Application()
    web_app.mount(root, web_app.make_app(store, load_profile(), clock=lambda: clock_now[0], secret=b"bench"))
    runner = web.AppRunner(root, access_log=None, **HANDLER_ARGS)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    con = sqlite3.connect(path)
    flagged = [r[0] for r in con.execute("SELECT id FROM readings WHERE review = 1 ORDER BY id")]
    waiting = [r[0] for r in con.execute("SELECT id FROM handoffs WHERE status = 'waiting' ORDER BY id")]
    con.close()
    rng = random.Random(5)
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[base])
    results: dict[str, list[float]] = {}
    try:
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.get(base + "/web/signin") as r:
                csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text()).group(1)  # type: ignore[union-attr]
            async with http.post(
                base + "/web/signin", data={"name": "bench", "password": "bench password", "csrf": csrf}
            ) as r:
                csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text()).group(1)  # type: ignore[union-attr]
            pages = {
                "readings to review": lambda: "/web/readings",
                "all customer readings": lambda: "/web/readings?all=1",
                "a reading's page": lambda: f"/web/readings/{rng.choice(flagged)}",
                "a reading's chart (SVG)": lambda: f"/web/readings/{rng.choice(flagged)}/chart.svg",
                "handoff queue": lambda: "/web/handoffs",
                "a conversation": lambda: f"/web/handoffs/{rng.choice(waiting)}",
                "statistics": lambda: "/web/stats",
                "statistics chart (SVG)": lambda: "/web/stats/readings.svg",
            }
            for name, make in pages.items():
                times = results.setdefault(name, [])
                for _ in range(args.n):
                    url = base + make()
                    started = time.perf_counter()
                    async with http.get(url) as r:
                        await r.read()
                        assert r.status == 200, (url, r.status)
                    times.append(time.perf_counter() - started)
            for name, action, ids in (
                ("review (POST, accept)", "readings/{}/review", flagged),
                ("take a chat (POST)", "handoffs/{}/take", waiting),
            ):
                times = results.setdefault(name, [])
                for item in ids[: args.n]:
                    started = time.perf_counter()
                    async with http.post(
                        base + "/web/" + action.format(item), data={"outcome": "accepted", "csrf": csrf}
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
    parser.add_argument("--n", type=int, default=200, help="requests per page")
    parser.add_argument("--keep", help="keep (and reuse) the database in this folder")
    asyncio.run(main(parser.parse_args()))
