"""`addad import` at a distributor's scale, as an operator runs it: the billing clerk's checks
(each reported on its line), `--check`, files past one chunk, the cap on listed problems, the
progress shown on a terminal only (storage/csvio.py)."""

from __future__ import annotations

import codecs
import os
import pty
import sqlite3
import subprocess
import sys
import threading

import pytest

from storage import csvio
from tests.test_import_export import BILLS, CONTRACTS, READINGS, count, dump, load_all, ops  # noqa: F401 (fixture)

HEADER = BILLS.splitlines()[0]
# Contract 1000001: an electricity meter of 5 dials (up to 99999), its bills 180 kWh a month.
GOOD = "1000001,F-9,2026-10-31,2026-11-30,2026-12-05,2026-12-25,45210,45390,180,0,218.90,0"


def bills_file(ops, *rows: str, name: str = "bills.csv") -> str:
    return ops.write(name, HEADER + "\n" + "\n".join(rows) + "\n")


def problems(done, name: str = "bills.csv") -> list[str]:
    return [l for l in done.stderr.splitlines() if l.startswith(f"{name}:")]


def with_contracts(ops):
    done = ops("import", "contracts", ops.write("contracts.csv", CONTRACTS))
    assert done.returncode == 0, done.stderr
    return ops


@pytest.mark.parametrize(
    "row, expected",
    [
        # paid more than the bill's amount
        (
            GOOD.replace("218.90,0", "218.90,250"),
            "bills.csv:3: paid_amount: 250.00 is above amount 218.90",
        ),
        # a read bill whose consumption is not the difference of its indexes
        (
            GOOD.replace(",180,0,", ",170,0,"),
            "bills.csv:3: consumption: 170 is not index_end - index_start (45390 - 45210 = 180)",
        ),
        # the index going back, and the consumption no rollover of the 5 dials would give
        (
            GOOD.replace("45210,45390", "45390,45210"),
            "bills.csv:3: index_end: below index_start (45210 < 45390) and not a rollover of the meter's 5 dials "
            "(that would be a consumption of 99820, not 180)",
        ),
        # an index the meter's 5 dials cannot show
        (
            GOOD.replace("45210,45390,180", "45210,145390,100180"),
            "bills.csv:3: index_end: has more digits than the meter's 5 dials",
        ),
        # a period that ends before it starts
        (
            GOOD.replace("2026-10-31,2026-11-30", "2026-11-30,2026-10-31"),
            "bills.csv:3: period_end: before period_start",
        ),
        # due before it was issued
        (
            GOOD.replace("2026-12-05,2026-12-25", "2026-12-05,2026-11-25"),
            "bills.csv:3: due_date: before issue_date",
        ),
    ],
)
def test_each_billing_check_is_reported_on_its_line_and_nothing_written(ops, row, expected):
    with_contracts(ops)
    before = dump(ops.db)
    done = ops("import", "bills", bills_file(ops, GOOD.replace("F-9", "F-8"), row))
    assert done.returncode == 1
    assert problems(done) == [expected]
    assert done.stderr.strip().endswith("addad: bills.csv rejected: 1 problem(s), nothing was written")
    assert dump(ops.db) == before


def test_a_rollover_and_an_estimated_consumption_are_accepted(ops):
    with_contracts(ops)
    rollover = "1000001,F-8,2026-10-31,2026-11-30,2026-12-05,2026-12-25,99950,30,80,0,20.00,0"  # 99950 → 00030
    estimated = GOOD.replace(",180,0,", ",150,1,")  # an estimate need not be the difference
    done = ops("import", "bills", bills_file(ops, rollover, estimated))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "bills.csv: 2 rows: 2 inserted, 0 updated, 0 unchanged"


def test_a_reading_dated_in_the_future_is_refused(ops):
    # the test's clock: 23 November 2026, 10:00 in Casablanca
    done = ops(
        "import", "contracts", ops.write("c.csv", CONTRACTS.replace("2026-10-31,BT-RES,0", "2026-11-24,BT-RES,0"))
    )
    assert done.returncode == 1
    assert problems(done, "c.csv") == [
        "c.csv:2: last_index_date: in the future (the operator's today is 2026-11-23)",
        "c.csv:4: last_index_date: in the future (the operator's today is 2026-11-23)",
    ]
    with_contracts(ops)
    done = ops("import", "readings", ops.write("r.csv", READINGS + "1000002,2026-11-24,1400,customer\n"))
    assert done.returncode == 1
    assert problems(done, "r.csv") == ["r.csv:6: date: in the future (the operator's today is 2026-11-23)"]
    assert count(ops.db, "readings") == 4  # the contracts' last indexes only


def test_check_validates_and_writes_nothing(ops):
    with_contracts(ops)
    before = dump(ops.db)
    good = ops("import", "bills", ops.write("bills.csv", BILLS), "--check")
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == "bills.csv: 3 rows checked: no problem found (--check: nothing was written)"
    assert good.stderr == ""  # not a terminal: no progress
    bad = ops(
        "import",
        "bills",
        "--check",
        bills_file(ops, GOOD, GOOD.replace("F-9,", "F-8,").replace("218.90,0", "218.90,300")),
    )
    assert bad.returncode == 1
    assert problems(bad) == ["bills.csv:3: paid_amount: 300.00 is above amount 218.90"]
    assert dump(ops.db) == before and count(ops.db, "bills") == 0
    con = sqlite3.connect(ops.db)
    assert con.execute("SELECT count(*) FROM audit_log WHERE action = 'import_bills'").fetchone()[0] == 0
    con.close()


def many_bills(n: int, *, start: int = 0) -> list[str]:
    """n read bills of 1000001, each 1 kWh, the index going round its 5 dials."""
    return [
        f"1000001,B-{i},2026-10-31,2026-11-30,2026-12-05,2026-12-25,{i % 100000},{(i + 1) % 100000},1,0,1.00,0"
        for i in range(start, start + n)
    ]


def test_one_bad_row_at_the_very_end_of_a_long_file_writes_nothing(ops):
    with_contracts(ops)
    before = dump(ops.db)
    rows = many_bills(3 * csvio.CHUNK + 17)  # several chunks staged before the bad row is read
    done = ops("import", "bills", bills_file(ops, *rows, rows[-1].replace(",1.00,0", ",1.00,2")))
    last = len(rows) + 2
    assert done.returncode == 1
    assert problems(done) == [
        f"bills.csv:{last}: paid_amount: 2.00 is above amount 1.00",
        f"bills.csv:{last}: bill_number: duplicate bill number (first on line {last - 1})",
    ]
    assert dump(ops.db) == before
    good = ops("import", "bills", bills_file(ops, *rows))
    assert good.stdout.strip() == f"bills.csv: {len(rows)} rows: {len(rows)} inserted, 0 updated, 0 unchanged"
    again = ops("import", "bills", bills_file(ops, *rows[:-1], rows[-1].replace(",1.00,0", ",1.00,1.00")))
    assert again.stdout.strip() == f"bills.csv: {len(rows)} rows: 0 inserted, 1 updated, {len(rows) - 1} unchanged"
    con = sqlite3.connect(ops.db)
    assert con.execute("SELECT sum(paid_amount), count(*) FROM bills").fetchone() == (100, len(rows))
    con.close()


def test_a_duplicate_in_another_chunk_names_its_first_line(ops):
    with_contracts(ops)
    rows = many_bills(csvio.CHUNK + 10)
    done = ops("import", "bills", bills_file(ops, *rows, rows[3]))
    assert problems(done) == [f"bills.csv:{len(rows) + 2}: bill_number: duplicate bill number (first on line 5)"]


def test_past_a_thousand_problems_the_first_thousand_are_listed_and_all_counted(ops):
    with_contracts(ops)
    bad = [row.replace("2026-12-25", "2026-11-25") for row in many_bills(1500)]
    done = ops("import", "bills", bills_file(ops, *many_bills(10, start=5000), *bad))
    listed = problems(done)
    assert len(listed) == csvio.MAX_LISTED == 1000
    assert listed[0] == "bills.csv:12: due_date: before issue_date"
    assert listed[-1] == "bills.csv:1011: due_date: before issue_date"
    assert done.stderr.strip().endswith(
        "addad: bills.csv rejected: 1500 problem(s) (the first 1000 listed), nothing was written"
    )
    assert count(ops.db, "bills") == 0


def test_a_byte_that_is_not_utf8_is_reported_on_its_line(ops):
    with_contracts(ops)
    head = (HEADER + "\r\n" + GOOD + "\r\n").encode()
    (ops.db.parent / "bills.csv").write_bytes(codecs.BOM_UTF8 + head + b"1000001,F-\xe9\r\n")
    done = ops("import", "bills", "bills.csv")
    assert done.returncode == 1
    offset = len(codecs.BOM_UTF8 + head + b"1000001,F-")  # from the start of the file
    assert problems(done) == [f"bills.csv:3: (file): not UTF-8 (invalid continuation byte at byte {offset})"]


def test_a_bom_and_crlf_file_imports(ops):
    with_contracts(ops)
    (ops.db.parent / "bills.csv").write_bytes(("\ufeff" + BILLS.replace("\n", "\r\n")).encode())
    done = ops("import", "bills", "bills.csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "bills.csv: 3 rows: 3 inserted, 0 updated, 0 unchanged"


def test_progress_is_shown_on_a_terminal(ops, tmp_path):
    with_contracts(ops)
    bills_file(ops, *many_bills(2 * csvio.CHUNK))
    master, slave = pty.openpty()
    shown: list[bytes] = []

    def read_terminal() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal's other end is closed: all was read
                return
            if not data:
                return
            shown.append(data)

    reader = threading.Thread(target=read_terminal)
    reader.start()
    try:
        env = {**os.environ, "ADDAD_DATABASE": str(ops.db)}
        done = subprocess.run(
            [sys.executable, "-m", "bot", "import", "bills", "bills.csv"],
            stdout=subprocess.PIPE,
            stderr=slave,
            env=env,
            cwd=tmp_path,
            timeout=120,
            text=True,
        )
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    assert done.returncode == 0
    assert done.stdout.strip() == "bills.csv: 10000 rows: 10000 inserted, 0 updated, 0 unchanged"
    text = b"".join(shown).decode()
    assert "bills.csv" in text and "10.0k/10.0k" in text and "rows/s" in text, text


def test_reimport_of_every_kind_is_unchanged(ops):
    load_all(ops)
    before = dump(ops.db)
    for kind in ("contracts", "bills", "readings", "agencies"):
        done = ops("import", kind, f"{kind}.csv", "--check")
        assert done.returncode == 0 and "no problem found" in done.stdout
    assert dump(ops.db) == before


async def test_a_transaction_reading_row_after_row_keeps_a_bounded_memo(tmp_path, process_clock):
    """What made an unchanged re-import of 1M bills peak at 2.9 GB: one transaction's reads
    were all remembered, and no write came to empty them."""
    from storage import open_store
    from storage.sqlite.repositories import _SEEN_MAX

    store = await open_store(tmp_path / "memo.sqlite3", clock=process_clock)
    try:
        async with store.transaction() as tx:
            for i in range(3 * _SEEN_MAX):
                assert await tx.bill(f"F-{i}") is None
            assert len(tx._seen) <= _SEEN_MAX  # type: ignore[attr-defined]
    finally:
        await store.close()
