"""`addad export readings` of 1,000,000 customer readings against a plain sqlite3 + csv.writer
export of the same rows, run side by side (issue 19).

    .venv/bin/python bench/bench_export.py [--readings 1000000] [--contracts 100000] [--runs 3] [--keep DIR]

1. Generates a database with the real schema (`open_store` runs the migrations): `--contracts`
   contracts and `--readings` customer readings (every column filled as the bot fills them).
2. Runs, `--runs` times each and alternating, two processes writing the same CSV to a file:
   `python -m bot export readings --output FILE` (the real command: start-up, migrations check,
   the store) and a plain script (`sqlite3` + `csv.writer`, the same query, nothing else).
3. Prints each one's CPU time (user + system) and peak RSS (the child's ru_maxrss), the medians and
   the ratios, and checks the two files are the same bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The plain export: what a billing clerk's script would do with the same database.
PLAIN = r"""
import csv, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
with open(sys.argv[2], "w", encoding="utf-8", newline="") as out:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["contract", "meter_number", "date", "index", "source", "previous_date", "previous_index",
                "consumption", "rollover", "review", "review_reason", "photo_ref", "channel", "reference",
                "submitted_at", "status", "photo_sha256", "ocr_index"])
    w.writerows(con.execute(
        "SELECT r.contract, c.meter_number, r.reading_date, r.index_value, r.source, r.previous_date, "
        "r.previous_index, r.consumption, r.rollover, r.review, r.review_reason, r.photo_ref, r.channel, "
        "r.reference, r.submitted_at, r.status, r.photo_sha256, r.ocr_index "
        "FROM readings r LEFT JOIN contracts c ON c.contract = r.contract WHERE r.source = 'customer' "
        "ORDER BY r.reading_date, r.submitted_at, r.id"))
"""


def generate(path: str, contracts: int, readings: int) -> float:
    started = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    rng = random.Random(7)
    stamp = "2026-11-01T00:00:00+00:00"
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO contracts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            (
                f"{2_000_000 + i}",
                "electricity",
                f"Client {i}",
                f"+2126{i:08d}",
                "fr",
                "Rabat",
                f"E-{2_000_000 + i}",
                "postpaid",
                6,
                10_000,
                "2024-01-31",
                "BT-RES",
                0,
                stamp,
            )
            for i in range(contracts)
        ),
    )
    per = max(1, readings // contracts)
    start = date(2024, 2, 1)

    def rows():
        n = 0
        for k in range(per):
            day = start + timedelta(days=30 * k)
            for i in range(contracts):
                if n >= readings:
                    return
                n += 1
                previous = 10_000 + 150 * k
                review = rng.random() < 0.03
                yield (
                    f"{2_000_000 + i}",
                    (day + timedelta(days=i % 20)).isoformat(),
                    previous + 150,
                    "customer",
                    f"RL-{day.year}-{n:06d}",
                    "telegram" if i % 2 else "whatsapp",
                    str(10**8 + i),
                    None,
                    previous,
                    (day - timedelta(days=30)).isoformat(),
                    150,
                    0,
                    int(review),
                    "high" if review else None,
                    "{}",
                    f"{day.isoformat()}T09:{i % 60:02d}:{k % 60:02d}.{n % 10**6:06d}+00:00",
                    f"{rng.getrandbits(256):064x}" if i % 5 == 0 else None,
                )

    con.executemany(
        "INSERT INTO readings (contract, reading_date, index_value, source, reference, channel, user_id, "
        "photo_ref, previous_index, previous_date, consumption, rollover, review, review_reason, details, "
        "submitted_at, photo_sha256) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        rows(),
    )
    con.commit()
    con.execute("ANALYZE")
    con.close()
    return time.perf_counter() - started


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(CPU seconds, peak RSS MB, wall seconds) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, wall


def main(args) -> None:
    import storage

    folder = args.keep or tempfile.mkdtemp(prefix="bench-export-")
    path = os.path.join(folder, "export.sqlite3")
    if not os.path.exists(path):

        async def schema() -> None:
            store = await storage.open_store(path)
            await store.close()

        asyncio.run(schema())
        took = generate(path, args.contracts, args.readings)
        print(
            f"generated {args.contracts:,} contracts and {args.readings:,} customer readings in {took:.1f} s "
            f"({os.path.getsize(path) / 1e6:,.0f} MB)"
        )
    env = {**os.environ, "ADDAD_DATABASE": path, "PYTHONPATH": str(ROOT)}
    env.pop("ADDAD_CLOCK", None)
    addad_out, plain_out = os.path.join(folder, "addad.csv"), os.path.join(folder, "plain.csv")
    runs: dict[str, list[tuple[float, float, float]]] = {"addad export readings": [], "plain sqlite3 + csv": []}
    for _ in range(args.runs):  # alternating: a machine shared with others slows both alike
        runs["addad export readings"].append(
            measure([sys.executable, "-m", "bot", "export", "readings", "--output", addad_out], env)
        )
        runs["plain sqlite3 + csv"].append(measure([sys.executable, "-c", PLAIN, path, plain_out], env))
    same = Path(addad_out).read_bytes() == Path(plain_out).read_bytes()
    lines = Path(addad_out).read_bytes().count(b"\n") - 1
    print(f"\n{lines:,} readings exported ({os.path.getsize(addad_out) / 1e6:,.0f} MB of CSV); same bytes: {same}\n")
    print("| run | CPU (median) | peak RSS (median) | wall (median) |\n|---|---|---|---|")
    med = {}
    for name, values in runs.items():
        cpu, rss, wall = (statistics.median(v[i] for v in values) for i in range(3))
        med[name] = cpu, rss
        print(f"| {name} | {cpu:.2f} s | {rss:.0f} MB | {wall:.2f} s |")
    (a_cpu, a_rss), (p_cpu, p_rss) = med["addad export readings"], med["plain sqlite3 + csv"]
    print(
        f"\nCPU ratio addad / plain: {a_cpu / p_cpu:.2f}x; peak RSS: {a_rss:.0f} MB ({a_rss / p_rss:.1f}x the plain's)"
    )
    if not same:
        raise SystemExit("the two exports differ")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument("--contracts", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", help="a folder to keep (and reuse) the generated database")
    main(ap.parse_args())
