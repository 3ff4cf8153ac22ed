"""Days and hours are the operator's (Casablanca), whatever UTC or the machine's zone say: the
reading window and the reading date at 00:30 local on 1 December (still 30 November in UTC),
the linking lockout's end time, the back office's times. Timestamps stay stored in UTC."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime

import pytest

from conversations.profile import ProfileError, load_profile

from .chat import Chat, Clock, open_engine

# 23:30 UTC on 30 November 2026 = 00:30 on Tuesday 1 December in Casablanca (UTC+1).
MONTH_TURN = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)


@pytest.fixture
def clock():
    return Clock(MONTH_TURN)


async def linked(engine, lang_hint: str | None, hello: str) -> Chat:
    chat = Chat(engine, sender_phone="+212612345678", lang_hint=lang_hint)
    await chat.send(hello)
    await chat.press("➕")
    await chat.send("1000001")
    return chat


async def stored_reading_dates(engine) -> list[date]:
    async with engine.store.snapshot() as tx:
        return [r.reading_date for r in await tx.readings("1000001") if r.source == "customer"]


async def test_just_after_midnight_in_casablanca_it_is_already_the_first_of_the_month_fr(engine):
    chat = await linked(engine, "fr", "bonjour")
    await chat.send("je veux envoyer mon index 45400")
    # 1 December: inside the 1–10 reading window (UTC still says 30 November: outside).
    assert "Les index sont attendus" not in chat.text
    await chat.press("1000001")
    await chat.press("Sans photo")
    assert "relevé le 1er décembre 2026" in chat.text
    await chat.press("Confirmer")
    assert "Index enregistré ✅" in chat.text
    assert await stored_reading_dates(engine) == [date(2026, 12, 1)]


@pytest.mark.parametrize(
    "hello, wants", [("السلام", "بغيت نرسل رقم العداد 45400"), ("salam", "bghit nsift l'index 45400")]
)
async def test_just_after_midnight_in_casablanca_it_is_already_the_first_of_the_month_darija(engine, hello, wants):
    chat = await linked(engine, "ar", hello)
    await chat.send(wants)
    assert "ننتظر أرقام العدادات" not in chat.text
    await chat.press("1000001")
    await chat.press("بدون صورة")
    assert "بتاريخ 1 دجنبر 2026" in chat.text
    await chat.press("تأكيد")
    assert await stored_reading_dates(engine) == [date(2026, 12, 1)]


async def test_an_hour_earlier_it_is_still_november_and_the_window_is_ahead(engine, clock):
    clock.now = datetime(2026, 11, 30, 22, 30, tzinfo=UTC)  # 23:30 on 30 November locally
    chat = await linked(engine, "fr", "bonjour")
    await chat.send("je veux envoyer mon index 45400")
    assert "la prochaine période commence le 1er décembre 2026" in chat.text
    await chat.press("1000001")
    await chat.press("Sans photo")
    assert "relevé le 30 novembre 2026" in chat.text


async def fail_five_proofs(chat: Chat, add: str, amount_button: str) -> None:
    await chat.press(add)
    await chat.send("1000001")
    await chat.press(amount_button)
    for amount in ("1,00", "2,00", "3,00", "4,00", "5,00"):
        await chat.send(amount)


@pytest.mark.parametrize(
    "lang_hint, hello, add, amount, expected",
    [
        ("fr", "bonjour", "Ajouter un contrat", "Montant", "suspendue dans cette conversation jusqu'à 08:31"),
        ("ar", "السلام", "➕", "مبلغ", "أوقفنا ربط العقود في هذه المحادثة حتى الساعة 08:31"),
    ],
)
async def test_the_lockout_ends_at_a_casablanca_time(engine, clock, lang_hint, hello, add, amount, expected):
    clock.now = datetime(2026, 12, 1, 7, 1, tzinfo=UTC)  # 08:01 in Casablanca
    chat = Chat(engine, lang_hint=lang_hint)
    await chat.send(hello)
    await fail_five_proofs(chat, add, amount)
    assert expected in chat.text
    async with engine.store.snapshot() as tx:  # stored in UTC
        [entry] = await tx.audit_entries(action="link_locked")
    assert entry["at"] == "2026-12-01T07:01:00+00:00"


def test_the_profile_names_a_known_time_zone(tmp_path):
    assert load_profile().timezone == "Africa/Casablanca"
    bundled = load_profile()
    assert bundled.local(MONTH_TURN).strftime("%Y-%m-%d %H:%M") == "2026-12-01 00:30"
    # Ramadan 2027: Morocco is on UTC+0 (tzdata knows it; the machine's zone files are not needed).
    assert bundled.local(datetime(2027, 2, 20, 22, 30, tzinfo=UTC)).strftime("%H:%M") == "22:30"
    source = (load_profile.__globals__["default_profile_path"]()).read_text(encoding="utf-8")
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(
        source.replace('timezone = "Africa/Casablanca"', 'timezone = "Africa/Casablanka"'), encoding="utf-8"
    )
    with pytest.raises(ProfileError, match=r"wrong.toml: timezone: Value error, unknown time zone 'Africa/Casablanka'"):
        load_profile(wrong)


async def test_the_back_office_lists_requests_at_casablanca_times(tmp_path, clock):
    from .test_requests import file_instalment

    engine = await open_engine(tmp_path / "bo.sqlite3", clock)
    try:
        await file_instalment(engine)
    finally:
        await engine.store.close()
    with sqlite3.connect(tmp_path / "bo.sqlite3") as con:
        assert con.execute("SELECT created_at FROM requests").fetchone() == ("2026-11-30T23:30:00+00:00",)
    env = {**os.environ, "ADDAD_DATABASE": str(tmp_path / "bo.sqlite3"), "TZ": "UTC"}
    listed = subprocess.run(
        [sys.executable, "-m", "bot", "requests", "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert "2026-12-01 00:30" in listed.stdout and "times in Africa/Casablanca" in listed.stdout
    shown = subprocess.run(
        [sys.executable, "-m", "bot", "requests", "show", "IN-2026-000001"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert "filed       2026-12-01 00:30 Africa/Casablanca on test (fr)" in shown.stdout


async def test_a_telegram_bot_process_lives_on_the_tests_clock_and_moves_with_it(api, tmp_path, process_clock):
    """`addad telegram` as a separate process, ADDAD_CLOCK=file:… (whatever the wall clock says):
    its day is the test's, and rewriting the file moves its time (here past the idle reset)."""
    from .telegram_harness import BotProcess, TgUser, seeded_database

    process_clock.set(MONTH_TURN)  # 00:30 on 1 December in Casablanca
    proc = BotProcess(api, await seeded_database(tmp_path / "addad.sqlite3"))
    await proc.start(api)
    try:
        user = TgUser(api, 5005, "fr")
        await user.send("/start")
        await user.press("Ajouter un contrat")
        await user.send("1000001")
        await user.share_contact("+212612345678")
        await user.send("je veux envoyer mon index 45400")
        assert "Les index sont attendus" not in user.text  # 1 December: in the window
        await user.press("1000001")
        await user.press("Sans photo")
        assert "relevé le 1er décembre 2026" in user.text
        process_clock.advance(minutes=31)
        await user.send("Confirmer")
        assert "en pause depuis un moment" in user.text and "Index enregistré" not in user.text
    finally:
        assert await proc.stop() == 0, proc.output()[-2000:]
    with sqlite3.connect(tmp_path / "addad.sqlite3") as con:
        stamps = [r[0] for r in con.execute("SELECT updated_at FROM sessions WHERE user_id='5005'")]
    assert stamps and stamps[0].startswith("2026-12-01T00:")  # stored in UTC, at the test's time


def test_the_clock_setting_a_test_or_a_demo_gives(tmp_path):
    from storage.clock import ClockError, FileClock, parse_clock, system_clock

    assert parse_clock(None) is system_clock and parse_clock("") is system_clock
    seven = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    assert seven <= parse_clock("2026-12-01T08:00:00+01:00")() < seven.replace(minute=1)  # runs on from there
    path = tmp_path / "now.txt"
    FileClock.write(path, MONTH_TURN)
    bot = parse_clock(f"file:{path}")
    assert MONTH_TURN <= bot() < datetime(2026, 11, 30, 23, 31, tzinfo=UTC)
    FileClock.write(path, datetime(2026, 12, 5, 9, 0, tzinfo=UTC))  # the test moves time
    restarted = FileClock(path)  # a process started later
    assert bot().date() == restarted().date() == date(2026, 12, 5)
    assert abs((bot() - restarted()).total_seconds()) < 1
    with pytest.raises(ClockError, match="has no UTC offset"):
        parse_clock("2026-12-01 08:00")
    with pytest.raises(ClockError, match=r"no such file|No such file"):
        parse_clock(f"file:{tmp_path / 'missing.txt'}")
    path.write_text("demain\n", encoding="utf-8")
    assert bot().date() == date(2026, 12, 5)  # a bad rewrite keeps the last instant


def test_a_clock_file_written_by_a_process_whose_monotonic_clock_is_another(tmp_path):
    """Under `faketime -f '@DATE'` each process's monotonic clock starts at its own offset: the
    kernel's uptime in the file still makes them agree (storage/clock.py `_local_anchor`)."""
    import time

    from storage.clock import FileClock, _uptime

    up = _uptime()
    if up is None:
        pytest.skip("no /proc/uptime here")
    path = tmp_path / "now.txt"
    # What a writer whose monotonic clock reads 5,000 s ahead of this process's writes now:
    path.write_text(f"{MONTH_TURN.isoformat()}\nmonotonic {time.monotonic() + 5000:.6f}\nuptime {up:.2f}\n")
    assert abs((FileClock(path)() - MONTH_TURN).total_seconds()) < 1  # not 5,000 s early
    path.write_text(f"{MONTH_TURN.isoformat()}\nmonotonic {time.monotonic() - 5000:.6f}\n")  # no uptime: as before
    assert abs((FileClock(path)() - MONTH_TURN).total_seconds() - 5000) < 1
