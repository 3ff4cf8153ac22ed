"""Places: a city as customers write it (Arabic script, French, arabizi, typos) found through
the operator's alias table (profile `[[cities]]`) and the cities of the agencies data.

understanding.py knows no profile, so the lookup lives here and takes the table; the agency
journey calls it, and `addad understand` adds the `city` entity with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from storage import fold

from .understanding import normalize

_TOKEN = re.compile(r"[^\W_]+")
_NOT_WORD = re.compile(r"[\W_]+")
_AR_CLITICS = "وفبل"  # "فطنجة", "بالرباط", "لكازا": a preposition glued to the name
# Words after which a place name is expected ("f rabat", "à Fès", "في طنجة", "agence de Safi").
_LOCATIVE = {
    "f",
    "fi",
    "fe",
    "a",
    "en",
    "au",
    "de",
    "d",
    "du",
    "dyal",
    "dial",
    "ta3",
    "near",
    "pres",
    "في",
    "ف",
    "ب",
    "دي",
    "ديال",
    "تاع",
    "قرب",
    "مدينه",
    "ville",
    "mdina",
    "lmdina",
}
# Of those, the ones after which a name at the end of a message is a place the customer means
# ("agence f X", "à X", "في X"), not "de" / "dyal" / "en" ("en ligne", "l'agence de quartier").
_NAME_BEFORE = {"f", "fi", "fe", "a", "au", "near", "pres", "في", "ف", "قرب", "ville", "mdina", "lmdina", "مدينه"}
MAX_WORDS = 4  # the longest alias, in words ("dar el beida", "بني ملال")


def _key(text: str) -> str:
    """One form per spelling: normalised, without spaces or punctuation ("الدارالبيضاء" = "الدار البيضاء")."""
    return _NOT_WORD.sub("", normalize(text))


@lru_cache(maxsize=4096)
def _named_key(name: str) -> str:
    # A contract's city is looked up on every screen that names the contract; its data's
    # spellings are few.
    return _key(name)


def _is_arabic(key: str) -> bool:
    return bool(key) and "\u0600" <= key[0] <= "\u06ff"


def _keys(alias: str) -> set[str]:
    key = _key(alias)
    out = {key} if key else set()
    if _is_arabic(key) and key.startswith("ال") and len(key) > 4:
        out.add(key[2:])  # "الرباط" and "رباط": the article may go with a clitic ("فالرباط")
    return out


def _token_variants(tok: str) -> list[tuple[str, bool]]:
    """A token and its forms without a glued preposition/article; True when a preposition was glued."""
    out = [(tok, False)]
    if _is_arabic(tok):
        rest, glued = tok, False
        if rest[0] in _AR_CLITICS and len(rest) > 3:
            rest, glued = rest[1:], True
            out.append((rest, True))
        if rest.startswith("ال") and len(rest) > 4:
            out.append((rest[2:], glued))
    return out


@dataclass(frozen=True)
class Place:
    """A city: canonical name and, where known, its Arabic name."""

    name: str
    ar: str | None = None
    near: str | None = None  # the city whose agencies serve this town (profile `near`)

    def label(self, lang: str) -> str:
        return self.ar if lang == "ar" and self.ar else self.name


class Places:
    """The alias table. `named` resolves a name from data (exact spellings); `find` finds a city
    in a customer's message, typos tolerated where that cannot turn a random word into a city."""

    def __init__(self, cities: Iterable = ()) -> None:
        cities = list(cities)
        self._keys: dict[str, Place] = {}
        self._everyday: dict[str, Place] = {}
        merged: dict[str, list] = {}
        for c in cities:
            merged.setdefault(fold(c.name), []).append(c)
        for entries in merged.values():
            ar = next((e.ar for e in entries if e.ar), None)
            near = next((e.near for e in entries if getattr(e, "near", None)), None)
            place = Place(entries[0].name, ar, near)
            everyday = {k for e in entries for a in e.everyday for k in _keys(a)}
            for e in entries:
                for alias in (e.name, e.ar or "", *e.aliases, *e.everyday):
                    for k in _keys(alias):
                        (self._everyday if k in everyday else self._keys).setdefault(k, place)
        self._fuzzy = [k for k in self._keys if len(k) >= 4]
        self._alias_words = {  # the words of the names themselves ("sidi", "el", "dar"), never foreign
            w
            for c in cities
            for a in (c.name, c.ar or "", *c.aliases, *c.everyday)
            for w in _TOKEN.findall(normalize(a))
        }

    def _foreign(self, word: str, lex, stop) -> bool:
        """A word of a joined guess that is no city's word and has a meaning of its own."""
        return word not in self._alias_words and (word in lex or word in stop or word in _LOCATIVE)

    @property
    def places(self) -> list[Place]:
        return list(dict.fromkeys([*self._keys.values(), *self._everyday.values()]))

    def with_names(self, names: Iterable[tuple[str, str | None]]) -> Places:
        """This table plus the cities of the agencies data, (name, Arabic name or None): those it
        does not know are found by their own names; a known one also by the data's Arabic name."""
        extra = Places()
        extra._keys, extra._everyday = dict(self._keys), dict(self._everyday)
        extra._alias_words = set(self._alias_words)
        for name, ar in names:
            place = self.named(name) or Place(name.strip(), (ar or "").strip() or None)
            extra._alias_words.update(_TOKEN.findall(normalize(f"{name} {ar or ''}")))
            for k in _keys(name) | _keys(ar or ""):
                if k not in extra._everyday:  # "Safi" in the data stays an everyday word
                    extra._keys.setdefault(k, place)
        extra._fuzzy = [k for k in extra._keys if len(k) >= 4]
        return extra

    def named(self, name: str) -> Place | None:
        """The city a data file's name stands for ("Fès", "FES", "Casa"), exact spellings only."""
        key = _named_key(name or "")
        return self._keys.get(key) or self._everyday.get(key)

    def find(self, text: str, *, expected: bool = False) -> Place | None:
        """The city named in a message. `expected`: the message answers "which city?" (an
        everyday-word alias alone is then the city, and typos are read more generously)."""
        try:
            tokens = _TOKEN.findall(normalize(text or "")[:300])
        except Exception:
            return None
        if not tokens:
            return None
        for i in range(len(tokens)):
            after_locative = i > 0 and tokens[i - 1] in _LOCATIVE
            for n in range(min(MAX_WORDS, len(tokens) - i), 0, -1):
                rest = "".join(tokens[i + 1 : i + n])
                for first, glued in _token_variants(tokens[i]):
                    key = first + rest
                    if key in self._keys:
                        return self._keys[key]
                    if key in self._everyday and (after_locative or glued or (expected and n == len(tokens))):
                        return self._everyday[key]
        return self._fuzzy_find(tokens, expected)

    def unknown_name(self, text: str) -> str | None:
        """The name a message ends on after "f" / "à" / "في" ("fin kayna l'agence f Bouznika") when
        `find` knows no such city, as the customer wrote it (one or two words), or None: so the
        customer is told which name was not understood instead of being asked again as if he had
        named none. Words with a meaning of their own ("f sbah", "a l'agence") are no name."""
        from .understanding import _LEX, _STOP

        try:
            tokens = _TOKEN.findall(normalize(text or "")[:300])
        except Exception:
            return None
        last = max((i for i, w in enumerate(tokens) if w in _NAME_BEFORE), default=None)
        if last is None or not 1 <= len(tokens) - last - 1 <= 2:
            return None
        words = tokens[last + 1 :]
        if any(len(w) < 3 or w.isdigit() or w in _LEX or w in _STOP or w in _LOCATIVE for w in words):
            return None
        return " ".join(_TOKEN.findall(text)[-len(words) :])

    def _fuzzy_find(self, tokens: list[str], expected: bool) -> Place | None:
        """A misspelt name ("rabt", "marakech", "casablanka"): in an answer to "which city?", or
        right after "f" / "à" / "في" in a free message, never any word anywhere."""
        from .understanding import _LEX, _STOP  # words with another meaning are not misspelt cities

        best: tuple[float, Place] | None = None
        for i in range(len(tokens)):
            after_locative = i > 0 and tokens[i - 1] in _LOCATIVE
            if not (expected or after_locative):
                continue
            for n in (1, 2, 3):
                if i + n > len(tokens):
                    break
                words = tokens[i : i + n]
                if n == 1 and (words[0] in _LEX or words[0] in _STOP):
                    continue
                if n > 1 and any(self._foreign(w, _LEX, _STOP) for w in words):
                    continue  # "a la tranche" is not a misspelt "Larache", "jari f" not "Jarsif"
                key = "".join(words)
                if key.isdigit() or len(key) < (4 if expected else 5) or key in self._everyday:
                    continue  # an everyday word is not a misspelt city either
                cutoff = 80 if expected and len(key) >= 5 else 85
                from rapidfuzz import fuzz, process  # (here: most messages name no place to misspell)

                hit = process.extractOne(key, self._fuzzy, scorer=fuzz.ratio, score_cutoff=cutoff)
                if hit and (best is None or hit[1] > best[0]):
                    best = (int(hit[1]), self._keys[hit[0]])
        return best[1] if best else None


def alias_conflicts(cities: Iterable) -> str | None:
    """A spelling that names two different cities, said as a profile error; None if there is none."""
    owner: dict[str, str] = {}
    for c in cities:
        for alias in (c.name, c.ar or "", *c.aliases, *c.everyday):
            for k in _keys(alias):
                if owner.setdefault(k, fold(c.name)) != fold(c.name):
                    return f"{alias!r} names both {owner[k]!r} and {fold(c.name)!r}"
    return None


_CACHE: dict[int, tuple[object, Places]] = {}


def places_of(profile) -> Places:
    """The profile's table, built once per profile."""
    hit = _CACHE.get(id(profile))
    if hit is None or hit[0] is not profile:
        hit = _CACHE[id(profile)] = (profile, Places(profile.cities))
    return hit[1]


def city_label(profile, t, name: str) -> str:
    """A city from the data as shown to the customer: its Arabic name in Arabic where known
    (else the Latin name, isolated so it keeps its order in a right-to-left line)."""
    place = places_of(profile).named(name)
    if t.lang == "ar":
        if place and place.ar:
            return place.ar
        return t.ltr(name) if re.search(r"[A-Za-z]", name) else name
    return place.name if place else name


def city_entity(text: str, profile) -> str | None:
    """The `city` entity of a free message (canonical name), or None."""
    place = places_of(profile).find(text)
    return place.name if place else None


def understand_command(text, lang: str | None, profile, *, today) -> int:
    """`addad understand`: understanding's JSON, plus the `city` entity from the profile's table."""
    from .understanding import understand_command as command

    def city(message: str) -> dict:
        found = city_entity(message, profile)
        return {"city": found} if found else {}

    return command(text, lang, today=today, more=city)
