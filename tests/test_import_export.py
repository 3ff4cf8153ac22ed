"""The distributor's files in and out, run as an operator runs them: `addad import/export`."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from . import pg

CONTRACTS = """\
contract,service,holder_name,phone,language,city,meter_number,meter_kind,meter_digits,last_index,last_index_date,tariff,low_income
1000001,electricity,Fatima Zahra Bennani,0612345678,ar,Casablanca,E-1,postpaid,5,45210,2026-10-31,BT-RES,0
1000002,water,Fatima Zahra Bennani,+212612345678,ar,Casablanca,W-2,postpaid,5,1320,2026-10-31,EAU-RES,
1000003,electricity,Youssef El Amrani,00212 6 61 23 45 67,fr,Rabat,E-3,postpaid,6,120400,2026-10-31,BT-RES,0
1000004,electricity,Ahmed Ouali,06-70-00-00-04,,Ait Ourir,P-4,prepaid,6,0,2026-10-01,BT-RES,1
"""
BILLS = """\
contract,bill_number,period_start,period_end,issue_date,due_date,index_start,index_end,consumption,estimated,amount,paid_amount
1000001,F-1,2026-08-31,2026-09-30,2026-10-05,2026-10-25,44850,45030,180,1,"243,17",0
1000001,F-2,2026-09-30,2026-10-31,2026-11-05,2026-11-25,45030,45210,180,0,218.90,0
1000003,F-3,2026-09-30,2026-10-31,2026-11-05,2026-11-25,120250,120400,150,0,"1 243,17","1 243,17"
"""
READINGS = """\
contract,date,index,source
1000001,2026-08-31,44850,actual
1000001,2026-09-30,45030,estimated
1000001,2026-11-05,45300,customer
1000003,2026-11-04,120550,customer
"""
AGENCIES = """\
city,name,address,phone,hours
Casablanca,Agence Maârif,"12 rue Abou Al Waqt, Maârif",0522 99 11 22,Lun-Ven 8h30-16h30
Rabat,Agence Agdal,5 avenue Fal Ould Oumeir,0537 77 66 55,Lun-Ven 8h30-16h30
"""


@pytest.fixture
def ops(tmp_path, database):
    """Run `addad …` in a scratch folder against a scratch database (a SQLite file, or with
    ADDAD_TEST_BACKEND=postgresql a PostgreSQL database: tests/conftest.py `database`)."""
    env = {**os.environ, "ADDAD_DATABASE": str(database)}

    def addad(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
        )

    def write(name: str, text: str) -> str:
        (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
        return name

    addad.write = write
    addad.db = database
    return addad


def dump(db) -> list[str]:
    """Every row of every table, to compare a database before and after."""
    if str(db).startswith("postgresql://"):
        listed = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    else:
        listed = "SELECT name FROM sqlite_master WHERE type='table'"
    tables = sorted(r[0] for r in pg.query(db, listed))
    return [
        f"{t}: {row}"
        for t in tables
        if t not in ("audit_log", "addad_meta", "addad_changes")
        for row in pg.query(db, f"SELECT * FROM {t} ORDER BY 1")
    ]


def count(db, table: str) -> int:
    return pg.query(db, f"SELECT count(*) FROM {table}")[0][0]


def load_all(ops):
    for kind, text in (("contracts", CONTRACTS), ("bills", BILLS), ("readings", READINGS), ("agencies", AGENCIES)):
        done = ops("import", kind, ops.write(f"{kind}.csv", text))
        assert done.returncode == 0, done.stderr
    return ops


def test_db_upgrade_from_empty_and_again(ops):
    from storage.sqlite.schema import migrations

    if pg.engine_backend() == "postgresql":
        pytest.skip("SQLite's schema version and journal (PostgreSQL's: tests/test_postgres.py)")
    bundled = migrations()
    last = bundled[-1][0]
    first = ops("db", "upgrade")
    assert first.returncode == 0
    assert f"schema version {last} (applied {', '.join(name for _, name, _ in bundled)})" in first.stdout
    assert bundled[0][1] == "0001_initial.sql" and last >= 7  # 0007_photos.sql among them
    again = ops("db", "upgrade")
    assert again.returncode == 0 and again.stdout.strip().endswith(f"schema version {last}")
    con = sqlite3.connect(ops.db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == last
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_db_upgrade_keeps_the_data_of_an_older_schema(ops):
    from importlib import resources

    if pg.engine_backend() == "postgresql":
        pytest.skip("a SQLite file of the first release")
    con = sqlite3.connect(ops.db)  # a database written by the first release
    con.executescript(resources.files("storage.sqlite.migrations").joinpath("0001_initial.sql").read_text())
    con.execute("PRAGMA user_version = 1")
    con.execute("INSERT INTO processed_messages VALUES ('telegram', '41', '2026-11-01T00:00:00+00:00')")
    con.commit()
    con.close()
    from storage.sqlite.schema import migrations

    done = ops("db", "upgrade")
    assert done.returncode == 0
    assert f"(applied {', '.join(name for _, name, _ in migrations()[1:])})" in done.stdout
    con = sqlite3.connect(ops.db)
    assert con.execute("SELECT count(*), count(replies) FROM processed_messages").fetchone() == (1, 0)
    assert con.execute("SELECT count(*) FROM inbox").fetchone()[0] == 0
    con.close()


def test_import_stores_normalised_phones_and_exact_centimes(ops):
    load_all(ops)
    phones = dict(pg.query(ops.db, "SELECT contract, phone FROM contracts"))
    assert phones == {
        "1000001": "+212612345678",
        "1000002": "+212612345678",
        "1000003": "+212661234567",
        "1000004": "+212670000004",
    }
    amounts = dict(pg.query(ops.db, "SELECT bill_number, amount FROM bills"))
    assert amounts == {"F-1": 24317, "F-2": 21890, "F-3": 124317}


def test_reimport_changes_nothing(ops):
    load_all(ops)
    before = dump(ops.db)
    for kind in ("contracts", "bills", "readings", "agencies"):
        done = ops("import", kind, f"{kind}.csv")
        assert done.returncode == 0
        assert " 0 inserted, 0 updated, " in done.stdout and done.stdout.strip().endswith("unchanged")
    assert dump(ops.db) == before


def test_a_changed_row_is_updated(ops):
    load_all(ops)
    done = ops("import", "bills", ops.write("bills.csv", BILLS.replace('"243,17",0', '"243,17",243.17')))
    assert done.stdout.strip() == "bills.csv: 3 rows: 0 inserted, 1 updated, 2 unchanged"


def test_import_export_round_trip(ops, tmp_path):
    load_all(ops)
    done = ops("export", "readings", "--output", "out.csv")
    assert done.returncode == 0 and "out.csv: 2 readings" in done.stdout
    with open(tmp_path / "out.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["contract"], r["date"], r["index"], r["source"]) for r in rows} == {
        ("1000001", "2026-11-05", "45300", "customer"),
        ("1000003", "2026-11-04", "120550", "customer"),
    }
    assert rows[0]["meter_number"] in ("E-1", "E-3")
    since = ops("export", "readings", "--since", "2026-11-05")
    assert [l.split(",")[0] for l in since.stdout.splitlines()[1:]] == ["1000001"]


BAD = """\
contract,service,holder_name,phone,city,meter_number,meter_kind,meter_digits,last_index,last_index_date,tariff,colour
"""


@pytest.mark.parametrize(
    "text, expected",
    [
        # an unknown column, named on the header line
        (
            BAD + "1000009,electricity,A,0612345678,Rabat,M,postpaid,5,1,2026-01-01,BT-RES,red\n",
            ["bad.csv:1: colour: unknown column"],
        ),
        # a bad date
        (
            CONTRACTS.splitlines()[0]
            + "\n1000009,electricity,A,0612345678,,Rabat,M,postpaid,5,1,2026-02-30,BT-RES,0\n",
            ["bad.csv:2: last_index_date: no such date: '2026-02-30'"],
        ),
        # a negative index
        (
            CONTRACTS.splitlines()[0]
            + "\n1000009,electricity,A,0612345678,,Rabat,M,postpaid,5,-12,2026-01-01,BT-RES,0\n",
            ["bad.csv:2: last_index: negative index"],
        ),
        # an unknown tariff
        (
            CONTRACTS.splitlines()[0]
            + "\n1000009,electricity,A,0612345678,,Rabat,M,postpaid,5,12,2026-01-01,BT-PRO,0\n",
            ["bad.csv:2: tariff: unknown tariff 'BT-PRO' (the operator profile has BT-RES, EAU-RES)"],
        ),
        # a duplicate contract, with a good row before it that must not be written either
        (
            CONTRACTS + "1000002,water,X,0612345678,ar,Fès,W,postpaid,5,1,2026-01-01,EAU-RES,0\n",
            ["bad.csv:6: contract: duplicate contract (first on line 3)"],
        ),
    ],
)
def test_bad_contract_files_are_rejected_whole(ops, text, expected):
    done = ops("import", "contracts", ops.write("bad.csv", text))
    assert done.returncode == 1
    problems = [l for l in done.stderr.splitlines() if l.startswith("bad.csv:")]
    assert problems == expected
    assert "nothing was written" in done.stderr and "Traceback" not in done.stderr
    assert count(ops.db, "contracts") == 0


def test_every_bad_row_of_a_bills_file_is_listed_and_nothing_written(ops):
    load_all(ops)
    before = dump(ops.db)
    text = (
        BILLS.splitlines()[0]
        + "\n"
        + "\n".join(
            [
                "1000001,F-9,2026-08-31,2026-09-30,2026-10-05,2026-10-25,1,2,1,0,12.345,0",  # 3 decimals
                "1000001,F-10,2026-08-31,2026-09-30,2026-10-05,2026-10-25,1,2,1,0,10.00,0",  # fine, yet not written
                "9999999,F-11,2026-08-31,2026-07-30,2026-10-05,2026-10-25,1,2,1,2,10.00,-1",  # four problems
            ]
        )
        + "\n"
    )
    done = ops("import", "bills", ops.write("bad.csv", text))
    assert done.returncode == 1
    assert [l for l in done.stderr.splitlines() if l.startswith("bad.csv:")] == [
        "bad.csv:2: amount: more than 2 decimals",
        "bad.csv:4: contract: unknown contract 9999999 (import contracts first)",
        "bad.csv:4: period_end: before period_start",
        "bad.csv:4: estimated: must be one of 0|1, not '2'",
        "bad.csv:4: paid_amount: negative amount",
    ]
    assert dump(ops.db) == before


def test_missing_file_and_missing_column(ops):
    done = ops("import", "contracts", "nope.csv")
    assert done.returncode == 2 and done.stderr.strip() == "addad: nope.csv: no such file"
    # A folder exists: the operator is told what it is, not sent looking for a missing file.
    done = ops("import", "contracts", ".")
    assert done.returncode == 2 and done.stderr.strip() == "addad: .: not a regular file"
    done = ops("import", "readings", ops.write("r.csv", "contract,date,index\n1,2026-01-01,5\n"))
    assert done.returncode == 1 and "r.csv:1: source: missing column" in done.stderr


def test_export_requests_carries_the_schedule(ops, tmp_path, process_clock):
    import asyncio
    from datetime import date

    from storage import InstalmentLine, open_store

    load_all(ops)

    async def file_one():
        store = await open_store(ops.db, clock=process_clock)
        try:
            async with store.transaction() as tx:
                await tx.add_request(
                    reference="IN-2026-000001",
                    kind="instalment",
                    contract="1000001",
                    channel="telegram",
                    user_id="42",
                    lang="fr",
                    amount=100001,
                    months=3,
                    reason="job",
                    lines=[
                        InstalmentLine(1, date(2026, 12, 23), 33333),
                        InstalmentLine(2, date(2027, 1, 23), 33333),
                        InstalmentLine(3, date(2027, 2, 23), 33335),
                    ],
                )
        finally:
            await store.close()

    asyncio.run(file_one())
    done = ops("export", "requests", "--status", "pending")
    row = next(csv.DictReader(io.StringIO(done.stdout)))
    assert row["reference"] == "IN-2026-000001" and row["amount"] == "1000.01"
    assert row["schedule"] == "2026-12-23:333.33;2027-01-23:333.33;2027-02-23:333.35"
    assert ops("export", "requests", "--status", "approved").stdout.count("\n") == 1


def test_estimate_command_writes_one_estimate_per_cycle(ops, process_clock):
    from datetime import UTC, datetime

    load_all(ops)
    process_clock.set(datetime(2027, 1, 2, 9, 0, tzinfo=UTC))  # both cycles are past
    # November already has customer readings for 1000001 and 1000003; 1000002 has no usable history;
    # 1000004 is prepaid.
    november = ops("estimate", "--as-of", "2026-11-30")
    assert november.stdout.splitlines()[0] == (
        "estimated readings as of 2026-11-30: 0 written, 2 already read this cycle, 1 without history"
    )
    december = ops("estimate", "--as-of", "2026-12-31")
    assert december.returncode == 0, december.stderr
    assert december.stdout.startswith("estimated readings as of 2026-12-31: 2 written")
    again = ops("estimate", "--as-of", "2026-12-31")
    assert "0 written, 2 already read this cycle" in again.stdout
    rows = pg.query(
        ops.db,
        "SELECT contract, index_value, consumption FROM readings WHERE source='estimated' "
        "AND reading_date='2026-12-31' ORDER BY contract",
    )
    # 1000001: usual use = median of 360 kWh / 61 days (31 Aug → 31 Oct) and the read October bill 180 / 31
    # = (5.9016 + 5.8065) / 2 = 5.854 kWh/day × 56 days since 5 Nov = 327.8 → 328 kWh on 45300
    assert rows[0] == ("1000001", 45628, 328)
    bad = ops("estimate", "--as-of", "30/11/2026")
    assert bad.returncode == 2 and bad.stderr.strip() == "addad: --as-of: not a YYYY-MM-DD date: '30/11/2026'"


def test_estimate_refuses_a_date_in_the_future_of_the_operators_day(ops, process_clock):
    from datetime import UTC, datetime

    load_all(ops)
    before = dump(ops.db)
    # 31 December 2026, 23:30 UTC is already 1 January 2027 in Casablanca (UTC+1)
    process_clock.set(datetime(2026, 12, 31, 23, 30, tzinfo=UTC))
    late = ops("estimate", "--as-of", "2027-01-02")
    assert late.returncode == 2, late.stderr
    assert (
        late.stderr.strip() == "addad: --as-of: 2027-01-02 is in the future (today is 2027-01-01 in Africa/Casablanca)"
    )
    assert late.stdout == "" and dump(ops.db) == before
    today = ops("estimate", "--as-of", "2027-01-01")
    assert today.returncode == 0 and today.stdout.startswith("estimated readings as of 2027-01-01: 2 written")
