"""`addad estimate` over 100,000 contracts: the batched run against the per-contract one it
replaced, side by side on two copies of the same database (issue 19).

    .venv/bin/python bench/bench_estimate.py [--contracts 100000] [--bills-per-contract 6] [--keep DIR]

1. Generates the database of bench/bench_bigdata.py (contracts, bills, each contract's last
   index as an actual reading) and, for every other contract, six monthly actual readings before it.
2. Copies it twice and runs, each in one transaction as `addad estimate --as-of 2026-11-30` does,
   the per-contract loop of before (`last_reading`, `usual_daily_use`, one INSERT and one audit
   INSERT per contract: the code as it was, kept below) on one copy and `write_estimates` on the
   other; prints contracts/s, CPU, and checks both wrote the same estimates.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

AS_OF = date(2026, 11, 30)


async def usual_daily_use(tx, contract) -> float | None:
    """conversations/consumption.py's, as it was before issue 19."""
    from conversations.consumption import recent_readings

    real = [
        r
        for r in await recent_readings(tx, contract)
        if r.source == "actual" or (r.source == "customer" and not r.review)
    ]
    rates = []
    for a, b in itertools.pairwise(real):
        days = (b.reading_date - a.reading_date).days
        if days >= 7 and b.index_value >= a.index_value:
            rates.append((b.index_value - a.index_value) / days)
    if len(rates) < 2:
        for bill in await tx.bills(contract.contract, limit=6):
            days = (bill.period_end - bill.period_start).days
            if not bill.estimated and days >= 7:
                rates.append(bill.consumption / days)
    rates = rates[-6:]
    return statistics.median(rates) if rates else None


async def per_contract(tx, as_of: date):
    """write_estimates before issue 19: every contract's reads and writes one by one."""
    from conversations.consumption import EstimateRun

    written, no_history, already = [], [], 0
    for contract in await tx.contracts():
        if contract.is_prepaid:
            continue
        last = await tx.last_reading(contract.contract)
        if last is None:
            no_history.append(contract.contract)
            continue
        if (last.reading_date.year, last.reading_date.month) == (as_of.year, as_of.month) or last.reading_date > as_of:
            already += 1
            continue
        daily = await usual_daily_use(tx, contract)
        if daily is None:
            no_history.append(contract.contract)
            continue
        days = (as_of - last.reading_date).days
        used = round(daily * days)
        index = (last.index_value + used) % (contract.meter_max + 1)
        await tx.add_estimated_reading(
            contract.contract,
            as_of,
            index,
            consumption=used,
            previous_index=last.index_value,
            previous_date=last.reading_date,
            details={"daily_use": round(daily, 3), "days": days},
        )
        await tx.audit(
            "reading_estimated",
            actor="system",
            contract=contract.contract,
            details={"as_of": as_of.isoformat(), "index": index, "consumption": used},
        )
        written.append((contract.contract, index, used))
    return EstimateRun(written, no_history, already)


def add_history(path: str, contracts: int) -> None:
    con = sqlite3.connect(path)
    with con:
        con.executemany(
            "INSERT INTO readings (contract, reading_date, index_value, source, submitted_at) VALUES (?,?,?,?,?)",
            (
                (f"{2_000_000 + i}", (date(2026, 10, 1) - timedelta(days=30 * k)).isoformat(), 1000 + 100 * (6 - k),
                 "actual", "2026-11-01T00:00:00+00:00")
                for i in range(0, contracts, 2)
                for k in range(1, 7)
            ),
        )  # fmt: skip
    con.close()


async def run(path: str, how) -> tuple[float, float, object]:
    import storage

    store = await storage.open_store(path)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        async with store.transaction() as tx:
            result = await how(tx, AS_OF)
            computed = time.perf_counter()
        done = time.perf_counter()
        print(f"  {how.__name__}: COMMIT {done - computed:.2f} s of {done - wall:.2f} s")
        return done - wall, time.process_time() - cpu, result
    finally:
        await store.close()


def estimates(path: str) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute(
            "SELECT contract, reading_date, index_value, previous_index, previous_date, consumption, details "
            "FROM readings WHERE source='estimated' ORDER BY contract"
        ).fetchall()
    finally:
        con.close()


async def main(args) -> None:
    import bench_bigdata

    import storage
    from conversations.consumption import write_estimates

    folder = args.keep or tempfile.mkdtemp(prefix="bench-estimate-")
    path = os.path.join(folder, "estimate.sqlite3")
    if not os.path.exists(path):
        store = await storage.open_store(path)
        await store.close()
        took = bench_bigdata.generate(path, args.contracts, args.bills_per_contract)
        add_history(path, args.contracts)
        bills = args.contracts * args.bills_per_contract
        print(f"generated {args.contracts:,} contracts, {bills:,} bills in {took:.1f} s")
    figures = {}
    for name, how in (("per contract (before)", per_contract), ("batched (write_estimates)", write_estimates)):
        copy = os.path.join(folder, f"copy-{how.__name__}.sqlite3")
        shutil.copyfile(path, copy)
        wall, cpu, result = await run(copy, how)
        figures[name] = (wall, cpu, result, estimates(copy))
        os.remove(copy)
    print(f"\nestimate --as-of {AS_OF} over {args.contracts:,} contracts (one transaction, file database)\n")
    print("| run | written | wall | CPU | contracts/s |\n|---|---|---|---|---|")
    for name, (wall, cpu, result, _) in figures.items():
        print(f"| {name} | {len(result.written):,} | {wall:.2f} s | {cpu:.2f} s | {args.contracts / wall:,.0f} |")
    (b_wall, _, b_res, b_rows), (a_wall, _, a_res, a_rows) = figures.values()
    print(f"\nbatched / before: {b_wall / a_wall:.1f}x the rate; same estimates: {a_rows == b_rows}")
    if a_rows != b_rows or a_res != b_res:
        raise SystemExit("the two runs wrote different estimates")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--contracts", type=int, default=100_000)
    ap.add_argument("--bills-per-contract", type=int, default=6)
    ap.add_argument("--keep", help="a folder to keep (and reuse) the generated database")
    asyncio.run(main(ap.parse_args()))
