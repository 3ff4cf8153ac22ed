"""`addad understand` reads the profile's time zone and cities without pydantic
(conversations/quick_profile.py): it must read them as the validated profile does."""

from __future__ import annotations

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
