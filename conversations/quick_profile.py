"""What `addad understand` reads of the operator profile, its time zone and cities, without
pydantic (importing it and building the profile's models is ~90 ms, over half of that command's
cold start; issue 17 asks for 150 ms in all). Anything this reader does not expect is handed to
`conversations.profile.load_profile`, which validates the whole file and says what is wrong."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class QuickCity:
    name: str
    ar: str | None = None
    aliases: list[str] = field(default_factory=list)
    everyday: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class QuickProfile:
    timezone: str
    cities: list[QuickCity]

    def today(self, instant: datetime) -> date:
        """As Profile.today: the operator's calendar day at this instant."""
        return instant.astimezone(ZoneInfo(self.timezone)).date()


def _strings(v: object) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise ValueError
    return list(v)


def quick_profile(path: str | Path | None = None):
    """A QuickProfile, or (for a file it cannot read as expected) the fully validated Profile."""
    from importlib import resources

    where = Path(path) if path else Path(str(resources.files("profiles").joinpath("onee.toml")))
    if path and "/" not in str(path) and not str(path).endswith(".toml") and not where.exists():
        where = Path(str(resources.files("profiles").joinpath(f"{path}.toml")))  # a bundled name: srm-cs
    try:
        data = tomllib.loads(where.read_text(encoding="utf-8"))
        zone = data.get("timezone", "Africa/Casablanca")
        ZoneInfo(zone)
        cities = []
        for c in data.get("cities", []):
            if not isinstance(c.get("name"), str) or not c["name"] or not isinstance(c.get("ar", ""), str):
                raise ValueError
            cities.append(
                QuickCity(c["name"], c.get("ar"), _strings(c.get("aliases", [])), _strings(c.get("everyday", [])))
            )
        return QuickProfile(zone, cities)
    except Exception:
        from .profile import load_profile

        return load_profile(path)  # raises ProfileError with the field at fault
