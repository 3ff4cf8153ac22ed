"""The operator's command line as an operator meets it (issue 19): every sub-command's `--help`,
`--version`, a database path into a folder that does not exist, and the streamed exports (the
requests export's callback phone, masked unless asked)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import sqlite3
import subprocess
import sys
from datetime import date

import pytest

from bot.cli import build_parser, main

from .test_import_export import count, load_all, ops  # noqa: F401 (the fixture)


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every (sub-)command path of the parser, the parents before their children."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


COMMANDS = [path for path, _ in _commands(build_parser())]


def test_the_walk_sees_every_command():
    assert len(COMMANDS) > 20
    for expected in (
        ("export", "requests"),
        ("requests", "reject"),
        ("db", "prune"),
        ("estimate",),
        ("learn", "export"),
    ):
        assert expected in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "addad")
def test_every_sub_command_has_a_useful_help(path, capsys):
    with pytest.raises(SystemExit) as done:
        main([*path, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: {' '.join(('addad', *path))}")
    parser = dict(_commands(build_parser()))[path]
    # a line saying what the command does, under the usage line
    assert parser.description and parser.description in " ".join(text.split())
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"{' '.join(path)} {choice.dest}: listed without a word of help"
        else:
            assert action.help, f"{' '.join(path)} {action.dest}: no help"


def test_help_and_version_from_the_real_command(ops):
    done = ops("--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: addad")
    assert "--version" in done.stdout and "export" in done.stdout
    version = ops("--version")
    from importlib.metadata import version as installed

    assert version.returncode == 0 and version.stdout == f"addad {installed('addad')}\n" and version.stderr == ""


@pytest.mark.parametrize("command", [("db", "upgrade"), ("export", "readings"), ("estimate", "--as-of", "2026-11-01")])
def test_a_database_in_a_folder_that_does_not_exist_is_refused_not_created(ops, tmp_path, command):
    missing = tmp_path / "no-such-folder" / "addad.sqlite3"
    done = subprocess.run(
        [sys.executable, "-m", "bot", *command],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**_env(), "ADDAD_DATABASE": str(missing)},
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"addad: ADDAD_DATABASE={missing}: the folder {missing.parent} does not exist (create it, or fix the path)"
    ]
    assert not missing.parent.exists()


def test_a_database_url_into_a_missing_folder_is_refused_too(ops, tmp_path):
    url = f"sqlite://{tmp_path}/gone/addad.sqlite3"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**_env(), "ADDAD_DATABASE": url},
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.startswith(f"addad: ADDAD_DATABASE={url}: the folder")
    assert not (tmp_path / "gone").exists()


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def _file_requests(db, clock) -> None:
    from storage import InstalmentLine, open_store

    async def run():
        store = await open_store(db, clock=clock)
        try:
            async with store.transaction() as tx:
                await tx.add_request(  # no phone given: the contract's (1000001: 0612345678)
                    reference="IN-2026-000001",
                    kind="instalment",
                    contract="1000001",
                    channel="telegram",
                    user_id="42",
                    lang="fr",
                    amount=46207,
                    months=2,
                    lines=[InstalmentLine(1, date(2026, 12, 23), 23103), InstalmentLine(2, date(2027, 1, 23), 23104)],
                )
                await tx.add_request(  # a callback on another number than the contract's
                    reference="CB-2026-000001",
                    kind="callback",
                    contract="1000003",
                    channel="whatsapp",
                    user_id="212661234567",
                    lang="ar",
                    details={"phone": "+212700112233"},
                )
                await tx.add_request(  # a callback on no contract
                    reference="CB-2026-000002",
                    kind="callback",
                    contract=None,
                    channel="telegram",
                    user_id="43",
                    lang="fr",
                    details={"phone": "+212655443322"},
                )
        finally:
            await store.close()

    asyncio.run(run())


def test_export_requests_carries_the_callback_phone_masked_unless_asked(ops, process_clock):
    load_all(ops)
    _file_requests(ops.db, process_clock)
    masked = ops("export", "requests")
    assert masked.returncode == 0, masked.stderr
    header = masked.stdout.splitlines()[0].split(",")
    assert header[-1] == "phone" and header[:-1][-3:] == ["decided_at", "decided_by", "decision_note"]
    rows = list(csv.DictReader(io.StringIO(masked.stdout)))
    assert [(r["reference"], r["phone"]) for r in rows] == [
        ("IN-2026-000001", "+21261234••••"),
        ("CB-2026-000001", "+21270011••••"),
        ("CB-2026-000002", "+21265544••••"),
    ]
    assert rows[0]["schedule"] == "2026-12-23:231.03;2027-01-23:231.04" and rows[0]["amount"] == "462.07"
    assert rows[1]["schedule"] == "" and rows[1]["amount"] == "" and rows[1]["months"] == ""
    assert rows[2]["contract"] == "" and rows[2]["lang"] == "fr" and rows[2]["status"] == "pending"
    full = ops("export", "requests", "--unmasked", "--output", "requests.csv")
    assert full.returncode == 0 and full.stdout.strip() == "requests.csv: 3 requests"
    with open(ops.db.parent / "requests.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["phone"] for r in rows] == ["+212612345678", "+212700112233", "+212655443322"]
    callbacks = ops("export", "requests", "--status", "approved")
    assert callbacks.stdout.splitlines() == [",".join(header)]


def test_export_readings_streams_every_column_as_the_billing_system_reads_them(ops, process_clock):
    load_all(ops)
    con = sqlite3.connect(ops.db)
    with con:  # a replaced reading and one with every optional field
        con.execute(
            "INSERT INTO readings (contract, reading_date, index_value, source, status, reference, channel, "
            "user_id, photo_ref, previous_index, previous_date, consumption, rollover, review, review_reason, "
            "submitted_at, photo_sha256) VALUES ('1000001', '2026-11-06', 45310, 'customer', 'replaced', "
            "'RL-2026-000009', 'telegram', '42', 'ph1', 45210, '2026-10-31', 100, 1, 1, 'high', "
            "'2026-11-06T09:00:00+00:00', 'abc')"
        )
    con.close()
    done = ops("export", "readings")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "contract,meter_number,date,index,source,previous_date,previous_index,consumption,rollover,review,"
        "review_reason,photo_ref,channel,reference,submitted_at,status,photo_sha256,ocr_index"
    )
    assert [l.split(",")[:3] for l in lines[1:]] == [
        ["1000003", "E-3", "2026-11-04"],
        ["1000001", "E-1", "2026-11-05"],
        ["1000001", "E-1", "2026-11-06"],
    ]
    assert lines[3] == (
        "1000001,E-1,2026-11-06,45310,customer,2026-10-31,45210,100,1,1,high,ph1,telegram,RL-2026-000009,"
        "2026-11-06T09:00:00+00:00,replaced,abc,"
    )
    assert lines[1].startswith("1000003,E-3,2026-11-04,120550,customer,,,,0,0,,,,,2026-11-23T09:")
    assert lines[1].endswith("+00:00,valid,,")
    assert count(ops.db, "readings") > len(lines) - 1  # the distributor's own readings are not exported
