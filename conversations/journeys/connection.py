"""Connection and subscription requests (issue 24): a new meter or a subscription taken over,
still done at the agencies. The documents the profile lists, the agencies of the customer's
city, then an appointment or a callback request with a reference. Diagram: docs/flows/connection.md

Nothing here asks for an identity document's number or a photo of it (law 09-08): the list
says what to bring to the agency.
"""

from __future__ import annotations

from storage.values import ValueProblem, normalize_phone

from ..flow import AGAIN, Field, Flow, JourneyData, Turn, ref
from ..places import Place
from .agency import _agency_lines, _cities, _known_cities, _place_label
from .common import elsewhere, operator_phone
from .filing import file_request

connection = Flow("connection", states=("start", "city", "next", "phone"), pausable=True, request=True)
CONNECTION_START = connection.state("start")
CONNECTION_CITY = connection.state("city")
CONNECTION_NEXT = connection.state("next")
CONNECTION_PHONE = connection.state("phone")

MENU_MAIN = ref("menu.main")
KINDS = ("connection", "transfer")


class ConnectionData(JourneyData):
    """What the request is (a new meter or a transfer), where, and what the customer wants."""

    key = "connection"
    kind = Field[str]()
    city = Field[str]()
    want = Field[str]()  # "appointment" | "callback"
    misses = Field[int]()


def topic(t: Turn) -> str | None:
    """The request a typed message names ("bghit compteur jdid", "changement de titulaire")."""
    u = t.understood
    if t.inbound.payload is not None or u is None:
        return None
    found = u.entities.get("topic")
    return found if found in KINDS else None


@connection.prompt("start")
async def ask_kind(t: Turn) -> str | None:
    data = ConnectionData.of(t)
    data.clear()
    named = topic(t)
    if named:
        data.kind = named
        return CONNECTION_CITY
    t.ask(
        t.tr("connection.ask_kind"),
        [
            t.button("kind:connection", "connection.kind_connection"),
            t.button("kind:transfer", "connection.kind_transfer"),
            t.button("cmd:cancel", "common.cancel"),
        ],
    )
    return None


@connection.handle("start")
async def on_kind(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "cmd:cancel":
        return MENU_MAIN
    kind = picked[5:] if picked and picked.startswith("kind:") else topic(t)
    if kind in KINDS:
        ConnectionData.of(t).kind = kind
        return CONNECTION_CITY
    other = elsewhere(t, "connection")
    if other:
        return other
    t.say("connection.pick_kind")
    return AGAIN


@connection.prompt("city")
async def ask_city(t: Turn) -> str | None:
    cities = await _cities(t)
    named = cities.table.find(t.text) if t.text and t.inbound.payload is None else None
    if named is None:  # the city of a linked contract, when the customer has one
        linked = sorted({c.city for c in await t.tx.linked_contracts(t.channel, t.user_id)})
        if len(linked) == 1:
            named = cities.table.named(linked[0]) or Place(linked[0])
    if named is not None:
        ConnectionData.of(t).city = named.name
        return CONNECTION_NEXT
    t.ask(
        t.tr("connection.ask_city"),
        [t.button(f"city:{p.name}", "agency.city_button", city=p.label(t.lang)) for p in cities.places[:9]]
        + [t.button("cmd:cancel", "common.cancel")],
    )
    return None


async def _names_a_city(t: Turn) -> bool:
    return (await _cities(t)).table.find(t.text, expected=True) is not None


@connection.handle("city", answers=_names_a_city)
async def on_city(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "cmd:cancel":
        ConnectionData.of(t).clear()
        return MENU_MAIN
    cities = await _cities(t)
    place = None
    if picked and picked.startswith("city:"):
        place = cities.table.named(picked[5:]) or Place(picked[5:])
    elif t.text:
        place = cities.table.find(t.text, expected=True)
    if place is not None:
        ConnectionData.of(t).city = place.name
        ConnectionData.of(t).misses = None
        return CONNECTION_NEXT
    other = elsewhere(t, "connection")
    if other:
        ConnectionData.of(t).clear()
        return other
    misses = (ConnectionData.of(t).misses or 0) + 1
    if misses >= 2:  # twice no city we know: the phone and the menu, not a third question
        t.say("agency.give_up", cities=_known_cities(t, cities), phone=operator_phone(t))
        ConnectionData.of(t).clear()
        return MENU_MAIN
    ConnectionData.of(t).misses = misses
    t.say("connection.unknown_city", cities=_known_cities(t, cities))
    return AGAIN


def _documents(t: Turn, kind: str) -> list[str]:
    policy = t.profile.connections
    if policy is None:
        return []
    listed = policy.connection if kind == "connection" else policy.transfer
    return [t.tr("connection.document", document=d.get(t.lang)) for d in listed]


@connection.prompt("next")
async def show_next(t: Turn) -> str | None:
    data = ConnectionData.of(t)
    kind, city = data.kind, data.city
    if kind not in KINDS or not city:  # (a session from elsewhere)
        return CONNECTION_START
    cities = await _cities(t)
    place = cities.table.named(city) or Place(city)
    lines = [t.tr(f"connection.documents_{kind}")]
    documents = _documents(t, kind)
    lines += documents or [t.tr("connection.documents_at_agency")]
    if t.profile.connections is not None and t.profile.connections.note is not None:
        lines.append(t.profile.connections.note.get(t.lang))
    t.say_text("\n".join(lines))
    found = cities.agencies(place)
    if found:
        t.say("agency.in_city", city=_place_label(t, place), agencies=_agency_lines(t, found))
    else:
        t.say(
            "agency.none_in_city",
            city=_place_label(t, place),
            cities=_known_cities(t, cities),
            phone=operator_phone(t),
        )
    t.ask(
        t.tr("connection.ask_next"),
        [
            t.button("want:appointment", "connection.want_appointment"),
            t.button("want:callback", "connection.want_callback"),
            t.button("cmd:menu", "common.menu"),
        ],
    )
    return None


def _known_phone(t: Turn, linked) -> str | None:
    """A phone the channel vouches for (the WhatsApp sender, the console's), else the one on
    the customer's linked contract: never asked again when known."""
    for phone in [t.inbound.sender_phone, *(c.phone for c in linked)]:
        if phone:
            try:
                return normalize_phone(phone)
            except ValueProblem:
                continue
    return None


@connection.handle("next", records=True)
async def on_next(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "cmd:menu":
        ConnectionData.of(t).clear()
        return MENU_MAIN
    if picked not in ("want:appointment", "want:callback"):
        other = elsewhere(t, "connection")
        if other:
            ConnectionData.of(t).clear()
            return other
        t.say("connection.pick_next")
        return AGAIN
    ConnectionData.of(t).want = picked[5:]
    phone = _known_phone(t, await t.tx.linked_contracts(t.channel, t.user_id))
    if phone is None:
        return CONNECTION_PHONE
    return await _file(t, phone)


@connection.prompt("phone")
async def ask_phone(t: Turn) -> str | None:
    t.ask(t.tr("contact.ask_phone"), [t.button("cmd:cancel", "common.cancel")])
    return None


@connection.handle("phone", expects="number", records=True)
async def on_phone(t: Turn) -> str | None:
    if t.choice() == "cmd:cancel":
        ConnectionData.of(t).clear()
        return MENU_MAIN
    try:
        phone = normalize_phone(t.inbound.contact_phone or t.text)
    except ValueProblem:
        t.say("contact.phone_format")
        return AGAIN
    return await _file(t, phone)


async def _file(t: Turn, phone: str) -> str:
    data = ConnectionData.of(t)
    kind, city, want = data.kind, data.city, data.want
    if kind not in KINDS or not city or want not in ("appointment", "callback"):
        return CONNECTION_START
    linked = await t.tx.linked_contracts(t.channel, t.user_id)
    place = (await _cities(t)).table.named(city) or Place(city)
    # A transfer is about a contract that exists: the linked one, when there is exactly one.
    contract = linked[0].contract if kind == "transfer" and len(linked) == 1 else None
    reference = await file_request(
        t, kind, contract=contract, reason_text=want, details={"city": city, "want": want, "phone": phone}
    )
    t.say(
        f"connection.recorded_{want}",
        kind=t.tr(f"request.kind_{kind}"),
        reference=t.tr.ltr(reference),
        city=_place_label(t, place),
        phone=t.tr.ltr(phone[:-4] + "••••"),
    )
    data.clear()
    return MENU_MAIN
