"""`addad understand` reads the profile's time zone and cities without pydantic
(conversations/quick_profile.py): it must read them as the validated profile does."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conversations import places
from conversations.profile import ProfileError, load_profile
from conversations.quick_profile import QuickProfile, quick_profile

PROFILES = sorted((Path(__file__).resolve().parent.parent / "profiles").glob("*.toml"))
MESSAGES = [
    "fin kayna l'agence f oujda",
    "وكالة فالدار البيضاء",
    "agence a casa",
    "wach kayna agence f safi",
    "safi, merci",
    "فين نخلص فمراكش",
    "ou payer a Tanger ?",
    "bghit nkhelles",
]


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_the_quick_reading_names_the_same_cities_and_day(path):
    quick, full = quick_profile(path), load_profile(path)
    assert isinstance(quick, QuickProfile)
    for text in MESSAGES:
        assert places.city_entity(text, quick) == places.city_entity(text, full), text
    late = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # already 1 December in Casablanca
    assert quick.today(late) == full.today(late)


def test_a_profile_it_cannot_read_gets_the_validated_profiles_error(tmp_path):
    bad = tmp_path / "bad.toml"
    text = PROFILES[0].read_text(encoding="utf-8")
    bad.write_text(text.replace('timezone = "Africa/Casablanca"', 'timezone = "Mars/Olympus"', 1), encoding="utf-8")
    with pytest.raises(ProfileError):
        quick_profile(bad)


# What the quick commands must not import (issue 19: `--help` <= 3x and `understand` <= 6x the
# interpreter's own start, bench/bench_cli.py): pydantic, the records and protocols behind
# `storage.clock`, logging, and rapidfuzz and dateparser for a message that needs no fuzzy match.
HEAVY = ("pydantic", "pydantic_settings", "storage.protocols", "storage.records", "logging", "rapidfuzz", "dateparser")


def _imported_by(tmp_path: Path, *argv: str) -> tuple[str, list[str]]:
    code = (
        "import io, sys, contextlib\n"
        "from bot.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        f"        code = main({list(argv)!r})\n"
        "    except SystemExit as e:\n"
        "        code = e.code\n"
        f"print(code, [m for m in {HEAVY!r} if m in sys.modules])\n"
        "print(out.getvalue(), end='')\n"
    )
    root = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": root},
    )  # fmt: skip
    status, heavy = done.stdout.split("\n", 1)[0].split(" ", 1)
    return done.stdout.split("\n", 1)[1], [status, *ast.literal_eval(heavy)]


def test_the_quick_commands_import_only_what_they_need(tmp_path):
    out, found = _imported_by(tmp_path, "--help")
    assert found == ["0"] and "understand" in out
    out, found = _imported_by(tmp_path, "understand", "bghit nkhelles 3la 3 chhour")
    assert found == ["0"]
    assert json.loads(out)["intent"] == "deferral" and json.loads(out)["entities"]["months"] == 3
