"""Agencies and human contact. Diagram: docs/flows/agency.md"""
from __future__ import annotations

from storage import fold

from ..flow import AGAIN, Flow, Turn
from .common import operator_phone

agency = Flow("agency")
contact = Flow("contact")


def _agency_lines(t: Turn, agencies) -> str:
    return "\n\n".join(t.t("agency.item", name=a.name, address=a.address, phone=t.t.ltr(a.phone), hours=a.hours)
                       for a in agencies)


@agency.prompt("start")
async def start(t: Turn) -> str | None:
    cities = sorted({c.city for c in await t.tx.linked_contracts(t.channel, t.user_id)})
    shown = False
    for city in cities:
        found = await t.tx.agencies(city)
        if found:
            t.say("agency.in_city", city=city, agencies=_agency_lines(t, found))
            shown = True
    if shown:
        t.say("agency.other_city")
    all_cities = await t.tx.agency_cities()
    t.ask(t.t("agency.ask_city"), [t.button(f"city:{i}", "agency.city_button", city=c)
                                   for i, c in enumerate(all_cities[:9])] + [t.button("cmd:menu", "common.menu")])
    t.data["agency_cities"] = all_cities[:9]
    return None


@agency.handle("start")
async def on_city(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "cmd:menu":
        return "menu.main"
    cities = t.data.get("agency_cities", [])
    if picked and picked.startswith("city:") and picked[5:].isdigit() and int(picked[5:]) < len(cities):
        city = cities[int(picked[5:])]
    else:
        city = t.text
    found = await t.tx.agencies(city) if city else []
    if not found:
        # Typos in city names are common: compare folded names.
        known = {fold(c): c for c in await t.tx.agency_cities()}
        from rapidfuzz import process
        match = process.extractOne(fold(city or ""), list(known), score_cutoff=80) if city else None
        if match:
            city = known[match[0]]
            found = await t.tx.agencies(city)
    if not found:
        t.say("agency.none", city=city or "?", phone=operator_phone(t))
        return AGAIN
    t.say("agency.in_city", city=found[0].city, agencies=_agency_lines(t, found))
    t.data.pop("agency_cities", None)
    return "menu.main"


@contact.prompt("start")
async def show_contact(t: Turn) -> str | None:
    c = t.profile.contact
    lines = [t.t("contact.phone", phone=t.t.ltr(p)) for p in c.phones]
    if c.email:
        lines.append(t.t("contact.email", email=t.t.ltr(c.email)))
    if c.website:
        lines.append(t.t("contact.website", website=t.t.ltr(c.website)))
    if c.hours:
        lines.append(t.t("contact.hours", hours=c.hours.get(t.lang)))
    t.say("contact.details", operator=t.profile.operator.of(t.lang), lines="\n".join(lines))
    t.ask(t.t("contact.offer_callback"), [t.button("callback", "contact.callback"), t.button("cmd:menu", "common.menu")])
    return None


@contact.handle("start")
async def on_contact(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "callback":
        return "contact.callback"
    if picked == "cmd:menu":
        return "menu.main"
    from .menu import on_menu    # anything else is read as a new request from the menu
    return await on_menu(t)


@contact.prompt("callback")
async def ask_callback_phone(t: Turn) -> str | None:
    linked = await t.tx.linked_contracts(t.channel, t.user_id)
    if linked:
        t.data["cb_phone"] = linked[0].phone
        t.data["cb_contract"] = linked[0].contract
        return "contact.callback_topic"
    t.ask(t.t("contact.ask_phone"), [t.button("cmd:cancel", "common.cancel")])
    return None


@contact.handle("callback")
async def on_callback_phone(t: Turn) -> str | None:
    from storage.values import ValueProblem, normalize_phone
    if t.choice() == "cmd:cancel":
        return "menu.main"
    try:
        t.data["cb_phone"] = normalize_phone(t.inbound.contact_phone or t.text)
    except ValueProblem:
        t.say("contact.phone_format")
        return AGAIN
    return "contact.callback_topic"


@contact.prompt("callback_topic")
async def ask_topic(t: Turn) -> str | None:
    t.ask(t.t("contact.ask_topic"), [t.button("skip", "facilities.skip_reason"), t.button("cmd:cancel", "common.cancel")])
    return None


@contact.handle("callback_topic")
async def on_topic(t: Turn) -> str | None:
    picked = t.choice()
    if picked == "cmd:cancel":
        return "menu.main"
    topic = None if picked == "skip" else t.text[:500] or None
    reference = await t.tx.next_reference("CB", t.today.year)
    await t.tx.add_request(reference=reference, kind="callback", contract=t.data.get("cb_contract"),
                           channel=t.channel, user_id=t.user_id, lang=t.lang, reason_text=topic,
                           details={"phone": t.data.get("cb_phone")}, now=t.now)
    await t.tx.audit("request_filed", channel=t.channel, user_id=t.user_id, contract=t.data.get("cb_contract"),
                     details={"reference": reference, "kind": "callback"}, now=t.now)
    phone = t.data.pop("cb_phone", "")
    t.data.pop("cb_contract", None)
    t.say("contact.callback_recorded", reference=t.t.ltr(reference), phone=t.t.ltr(phone[:-4] + "••••"))
    return "menu.main"
