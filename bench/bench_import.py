"""`addad import bills` at a distributor's scale, against a plain sqlite3 + csv load in the same run.

    .venv/bin/python bench/bench_import.py [--bills 1000000 3000000] [--contracts 100000] [--keep DIR]

For each size: generates a bills file (read bills of `--contracts` contracts, every check passing),
then runs, each in a process of its own on a copy of the same database (the real schema and the
contracts, imported by `addad import contracts`):
- `plain`: csv.reader and one `executemany` INSERT into `bills` in one transaction, the amounts
  and numbers converted with int()/float() and nothing checked (what a one-off script does);
- `addad import bills FILE` (every check, staged, merged in one transaction);
- the same command again on the unchanged file (every row compared, none written).
Each process's CPU (user + system) and peak RSS come from os.wait4; the ratios are against the
plain load of the same size in the same run.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = (
    "contract,bill_number,period_start,period_end,issue_date,due_date,index_start,index_end,"
    "consumption,estimated,amount,paid_amount"
)
PLAIN = r"""
import csv, sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA synchronous=FULL")
con.execute("BEGIN")
with open(sys.argv[2], encoding="utf-8", newline="") as fh:
    reader = csv.reader(fh)
    next(reader)
    con.executemany(
        "INSERT INTO bills VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'2026-11-23T09:00:00+00:00')",
        ((r[1], r[0], r[2], r[3], r[4], r[5], int(r[6]), int(r[7]), int(r[8]), int(r[9]),
          round(float(r[10]) * 100), round(float(r[11]) * 100)) for r in reader),
    )
con.execute("COMMIT")
"""


def write_contracts(path: Path, contracts: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write(
            "contract,service,holder_name,phone,language,city,meter_number,meter_kind,meter_digits,"
            "last_index,last_index_date,tariff,low_income\n"
        )
        for i in range(contracts):
            n = 2_000_000 + i
            fh.write(f"{n},electricity,Client {i},06{i:08d},fr,Rabat,E-{n},postpaid,6,0,2026-10-31,BT-RES,0\n")


def write_bills(path: Path, bills: int, contracts: int) -> None:
    rng = random.Random(7)
    per = -(-bills // contracts)
    with path.open("w", encoding="utf-8") as fh:
        fh.write(HEADER + "\n")
        written = 0
        for i in range(contracts):
            index = rng.randrange(900_000)
            for m in range(per):
                if written == bills:
                    return
                used = 80 + rng.randrange(300)
                start, end = index, (index + used) % 1_000_000  # a 6-dial meter; some roll over
                index = end
                year, month = 2020 + (m // 12) % 7, m % 12 + 1
                amount = f"{used * 1.0764:.2f}"
                paid = amount if rng.random() < 0.8 else "0.00"
                fh.write(
                    f"{2_000_000 + i},F{year}{month:02d}-{i}-{m},{year}-{month:02d}-01,{year}-{month:02d}-28,"
                    f"{year}-{month:02d}-28,{year + (month == 12)}-{month % 12 + 1:02d}-15,{start},{end},{used},0,"
                    f"{amount},{paid}\n"
                )
                written += 1


def measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """Run `cmd` and read its own CPU and peak RSS with os.wait4."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd} failed: {err.read()[-2000:]}")
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read().strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bills", type=int, nargs="+", default=[1_000_000, 3_000_000])
    parser.add_argument("--contracts", type=int, default=100_000)
    parser.add_argument("--keep", help="a folder to keep the files in (default: a temporary one)")
    args = parser.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="addad-bench-import-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ADDAD_CLOCK": "2026-11-23T09:00:00Z"}
    env.pop("ADDAD_DATABASE", None)
    addad = [sys.executable, "-m", "bot"]
    base = folder / "contracts.sqlite3"
    if not base.exists():
        write_contracts(folder / "contracts.csv", args.contracts)
        measured([*addad, "import", "contracts", str(folder / "contracts.csv")], {**env, "ADDAD_DATABASE": str(base)})
    print(f"{sys.version.split()[0]}, sqlite {__import__('sqlite3').sqlite_version}, {args.contracts:,} contracts")
    print("| bills | load | wall s | CPU s | CPU × plain | peak RSS MB | rows/s |")
    print("|---|---|---|---|---|---|---|")
    for bills in args.bills:
        csv_path = folder / f"bills-{bills}.csv"
        if not csv_path.exists():
            write_bills(csv_path, bills, args.contracts)
        results = {}
        for name in ("plain", "addad", "addad again"):
            db = folder / f"{name.split()[0]}-{bills}.sqlite3"
            if name != "addad again":
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
                shutil.copy(base, db)
            if name == "plain":
                cmd = [sys.executable, "-c", PLAIN, str(db), str(csv_path)]
            else:
                cmd = [*addad, "import", "bills", str(csv_path)]
            wall, cpu, rss, out = measured(cmd, {**env, "ADDAD_DATABASE": str(db)})
            results[name] = (wall, cpu, rss)
            ratio = cpu / results["plain"][1]
            print(f"| {bills:,} | {name} | {wall:.1f} | {cpu:.1f} | {ratio:.2f} | {rss:.0f} | {bills / wall:,.0f} |")
            if name != "plain":
                print(f"|  |  | `{out}` |  |  |  |  |", file=sys.stderr)
    if not args.keep:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
