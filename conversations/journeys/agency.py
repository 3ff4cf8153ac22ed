"""Agencies and human contact. Diagram: docs/flows/agency.md"""

from __future__ import annotations

import re

from storage import fold

from ..flow import AGAIN, ContractData, Field, Flow, JourneyData, MenuItem, Turn, ref, take
from ..places import Place, places_of
from .common import elsewhere, operator_phone
from .filing import file_request

agency = Flow("agency", states=("start",), intents=("agency",), menu=MenuItem(6, "menu.agency"), request=True)
AGENCY_START = agency.state("start")
contact = Flow(
    "contact",
    states=("start", "callback", "callback_topic"),
    intents=("agent",),
    menu=MenuItem(7, "menu.contact"),
    pausable=True,
    request=True,
)
CONTACT_START = contact.state("start")
CONTACT_CALLBACK = contact.state("callback")
CONTACT_CALLBACK_TOPIC = contact.state("callback_topic")

MENU_MAIN = ref("menu.main")
CONNECTION_START = ref("connection.start")


def _connection_asked(t: Turn) -> bool:
    """A new meter or a subscription transfer named ("bghit compteur jdid"): that journey's, not
    the agencies' or the contact's (issue 24)."""
    u = t.understood
    return t.inbound.payload is None and u is not None and u.entities.get("topic") in ("connection", "transfer")


class AgencyData(JourneyData):
    """The cities offered as buttons and how many names could not be read as one."""

    key = "agency"
    cities = Field[list[str]]()
    misses = Field[int]()


class CallbackData(ContractData):
    """The callback being filed: the phone to call and the contract it is about."""

    key = "contact"
    phone = Field[str]()


def _agency_lines(t: Turn, agencies) -> str:
    # In Arabic, the data's Arabic columns where it has them; Latin text isolated so the line keeps its order.
    def text(latin: str, arabic: str | None) -> str:
        return arabic if t.lang == "ar" and arabic else _latin(t, latin)

    return "\n\n".join(
        t.tr(
            "agency.item",
            name=text(a.name, a.name_ar),
            address=text(a.address, a.address_ar),
            phone=t.tr.ltr(a.phone),
            hours=text(a.hours, a.hours_ar),
        )
        for a in agencies
    )


def _latin(t: Turn, text: str) -> str:
    return t.tr.ltr(text) if t.lang == "ar" and re.search(r"[A-Za-z]", text) and not _ARABIC.search(text) else text


_ARABIC = re.compile(r"[\u0600-\u06ff]")
MAX_LISTED = 15  # cities named in one answer (all of them are typed or pressed alike)


class _Cities:
    """The cities that have agencies, as the alias table knows them (the data's spellings of one
    city grouped), the cities with most agencies first (the buttons show nine)."""

    def __init__(self, t: Turn, agencies: list) -> None:
        self.table = places_of(t.profile).with_names({(a.city, a.city_ar) for a in agencies})
        self.by_city: dict[str, list] = {}
        for a in agencies:
            self.by_city.setdefault(self._name(a.city), []).append(a)
        ranked = sorted(self.by_city, key=lambda c: (-len(self.by_city[c]), fold(c)))
        self.places = [self.table.named(c) or Place(c) for c in ranked]

    def _name(self, city: str) -> str:
        place = self.table.named(city)
        return place.name if place else city

    def agencies(self, place: Place) -> list:
        return self.by_city.get(self._name(place.name), [])


async def _cities(t: Turn) -> _Cities:
    return _Cities(t, await t.tx.agencies())  # one read: a few hundred rows at most


def _show(t: Turn, place: Place, found) -> None:
    t.say("agency.in_city", city=_place_label(t, place), agencies=_agency_lines(t, found))


def _show_nearest(t: Turn, cities: _Cities, place: Place) -> bool:
    """A town with no agency whose profile names the city that serves it: that city's agencies,
    said as such; False when there is none to show."""
    near = cities.table.named(place.near) if place.near else None
    found = cities.agencies(near) if near else []
    if not found or near is None:
        return False
    t.say(
        "agency.nearest",
        town=_place_label(t, place),
        city=_place_label(t, near),
        agencies=_agency_lines(t, found),
    )
    return True


def _place_label(t: Turn, place: Place) -> str:
    label = place.label(t.lang)
    return t.tr.ltr(label) if t.lang == "ar" and not _ARABIC.search(label) else label


def _ask_city(t: Turn, cities: _Cities, question: str | None = None) -> None:
    shown = cities.places[:9]
    t.ask(
        question or t.tr("agency.ask_city"),
        [t.button(f"city:{i}", "agency.city_button", city=p.label(t.lang)) for i, p in enumerate(shown)]
        + [t.button("cmd:menu", "common.menu")],
    )
    AgencyData.of(t).cities = [p.name for p in shown]


def _known_cities(t: Turn, cities: _Cities) -> str:
    names = [_place_label(t, p) for p in cities.places[:MAX_LISTED]]
    if len(cities.places) > MAX_LISTED:
        names.append("…")
    return "، ".join(names) if t.lang == "ar" else ", ".join(names)


def _unknown_city(t: Turn, cities: _Cities, name: str) -> str:
    return t.tr(
        "agency.unknown_city", city=_latin(t, name[:40]), cities=_known_cities(t, cities), phone=operator_phone(t)
    )


@agency.prompt("start")
async def start(t: Turn) -> str | None:
    if _connection_asked(t):
        return CONNECTION_START
    cities = await _cities(t)
    AgencyData.of(t).misses = None
    # The city named in the message that asked ("fin kayna l'agence f rabat") comes first.
    named = cities.table.find(t.text) if t.text and t.inbound.payload is None else None
    if named is not None:
        found = cities.agencies(named)
        if found:
            _show(t, named, found)
            return MENU_MAIN
        if _show_nearest(t, cities, named):
            return MENU_MAIN
        _ask_city(
            t,
            cities,
            t.tr(
                "agency.none_in_city",
                city=_place_label(t, named),
                cities=_known_cities(t, cities),
                phone=operator_phone(t),
            ),
        )
        return None
    unknown = cities.table.unknown_name(t.text) if t.text and t.inbound.payload is None else None
    if unknown is not None:  # "l'agence f Bouznika": that name is not one we know, said so
        AgencyData.of(t).misses = 1
        _ask_city(t, cities, _unknown_city(t, cities, unknown))
        return None
    shown = False
    for city in sorted({c.city for c in await t.tx.linked_contracts(t.channel, t.user_id)}):
        place = cities.table.named(city) or Place(city)
        found = cities.agencies(place)
        if found:
            _show(t, place, found)
            shown = True
    if shown:
        t.say("agency.other_city")
    _ask_city(t, cities)
    return None


async def _names_a_city(t: Turn) -> bool:
    """ "safi" is the city of Safi when a city is asked, not "enough"."""
    return (await _cities(t)).table.find(t.text, expected=True) is not None


@agency.handle("start", answers=_names_a_city)
async def on_city(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "cmd:menu":
        return MENU_MAIN
    cities = await _cities(t)
    offered = AgencyData.of(t).cities or []
    place = named = None
    if t.inbound.payload is None and t.text and not t.typed().isdecimal():
        place = cities.table.find(t.text, expected=True)  # the alias table before fuzzy button labels
    if (
        place is None
        and picked
        and picked.startswith("city:")
        and picked[5:].isdigit()
        and int(picked[5:]) < len(offered)
    ):
        place = cities.table.named(offered[int(picked[5:])]) or Place(offered[int(picked[5:])])
    if place is None:
        other = elsewhere(t, "agency")  # "chhal khassni nkhelles": another request, not a city
        if other:
            AgencyData.of(t).clear()
            return other
        u = t.understood if t.inbound.payload is None else None
        if u is not None and u.intent == "agency":
            # "l'agence f X" again: X is the name not known; "l'agence ?" again: the question again
            named = cities.table.unknown_name(t.text or "")
            if named is None:
                _ask_city(t, cities)
                return None
        if not t.text and t.inbound.payload is None:
            t.say("input.unsupported")  # a sticker, a photo: not a city name
            _ask_city(t, cities)
            return None
    found = cities.agencies(place) if place else []
    if place is not None and (found or _show_nearest(t, cities, place)):
        if found:
            _show(t, place, found)
        AgencyData.of(t).clear()
        return MENU_MAIN
    phone = operator_phone(t)
    if place is not None:
        question = t.tr(
            "agency.none_in_city", city=_place_label(t, place), cities=_known_cities(t, cities), phone=phone
        )
    else:
        misses = (AgencyData.of(t).misses or 0) + 1
        if misses >= 2:
            # Twice a name we cannot read as a city: no third question, the phone and the menu.
            t.say("agency.give_up", cities=_known_cities(t, cities), phone=phone)
            AgencyData.of(t).clear()
            return MENU_MAIN
        AgencyData.of(t).misses = misses
        question = _unknown_city(t, cities, named or t.text or "?")
    _ask_city(t, cities, question)  # the answer is the question again, with the cities to press
    return None


@contact.prompt("start")
async def show_contact(t: Turn) -> str | None:
    if _connection_asked(t):
        return CONNECTION_START
    c = t.profile.contact
    lines = [t.tr("contact.phone", phone=t.tr.ltr(p)) for p in c.phones]
    if c.email:
        lines.append(t.tr("contact.email", email=t.tr.ltr(c.email)))
    if c.website:
        lines.append(t.tr("contact.website", website=t.tr.ltr(c.website)))
    if c.hours:
        lines.append(t.tr("contact.hours", hours=c.hours.get(t.lang)))
    t.say("contact.details", operator=t.profile.operator.of(t.lang), lines="\n".join(lines))
    from .. import handoff  # (issue 20) the chat joins the advisers' queue: one of them may write here

    t.say("handoff.queued" if await handoff.request(t) else "handoff.still_queued")
    t.ask(
        t.tr("contact.offer_callback"), [t.button("callback", "contact.callback"), t.button("cmd:menu", "common.menu")]
    )
    return None


@contact.handle("start")
async def on_contact(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "callback":
        return CONTACT_CALLBACK
    if picked == "cmd:menu":
        return MENU_MAIN
    from .menu import on_menu  # anything else is read as a new request from the menu

    return await on_menu(t)


@contact.prompt("callback")
async def ask_callback_phone(t: Turn) -> str | None:
    linked = await t.tx.linked_contracts(t.channel, t.user_id)
    if linked:
        CallbackData.of(t).phone = linked[0].phone
        CallbackData.of(t).contract = linked[0].contract
        return CONTACT_CALLBACK_TOPIC
    t.ask(t.tr("contact.ask_phone"), [t.button("cmd:cancel", "common.cancel")])
    return None


@contact.handle("callback", expects="number")
async def on_callback_phone(t: Turn) -> str | None:
    from storage.values import ValueProblem, normalize_phone

    if t.choice() == "cmd:cancel":
        return MENU_MAIN
    try:
        CallbackData.of(t).phone = normalize_phone(t.inbound.contact_phone or t.text)
    except ValueProblem:
        t.say("contact.phone_format")
        return AGAIN
    return CONTACT_CALLBACK_TOPIC


@contact.prompt("callback_topic")
async def ask_topic(t: Turn) -> str | None:
    t.ask(
        t.tr("contact.ask_topic"), [t.button("skip", "facilities.skip_reason"), t.button("cmd:cancel", "common.cancel")]
    )
    return None


@contact.handle("callback_topic", expects="text", records=True)
async def on_topic(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "cmd:cancel":
        return MENU_MAIN
    topic = None if picked == "skip" else t.text[:500] or None
    reference = await file_request(
        t,
        "callback",
        contract=CallbackData.of(t).contract,
        reason_text=topic,
        details={"phone": CallbackData.of(t).phone},
    )
    phone = take(CallbackData.of(t), CallbackData.phone) or ""
    CallbackData.of(t).contract = None
    t.say("contact.callback_recorded", reference=t.tr.ltr(reference), phone=t.tr.ltr(phone[:-4] + "••••"))
    return MENU_MAIN
