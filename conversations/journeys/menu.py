"""Main menu and language choice. Diagram: docs/flows/menu.md"""

from __future__ import annotations

import re
from functools import cache

from storage.legacy import reference_key

from .. import places
from ..events import Button
from ..flow import AGAIN, GIVEN, Flow, MenuItem, Turn, ref
from ..i18n import translator
from ..understanding import normalize

menu = Flow("menu", states=("main", "clarify"), intents=("greeting", "help"))
MENU_MAIN = menu.state("main")
MENU_CLARIFY = menu.state("clarify")

lang = Flow("lang", states=("choose",), intents=("language",), menu=MenuItem(9, "menu.language", "cmd:lang"))
LANG_CHOOSE = lang.state("choose")


@menu.prompt("main")
async def show_menu(t: Turn) -> str | None:
    t.data.pop(GIVEN, None)  # whatever started the last journey is done with
    t.ask(t.tr("menu.prompt"), _menu_buttons(t.lang))
    return None


@cache
def _menu_buttons(lang: str) -> tuple[Button, ...]:
    """The menu is shown at the end of most journeys, and its labels never change."""
    from . import MENU_ITEMS

    t = translator(lang)
    return tuple(Button(p, t(k)) for p, k in MENU_ITEMS)


@menu.handle("main")
async def on_menu(t: Turn) -> str | None:
    from . import GO_ENTRY, INTENT_ENTRY

    picked = t.choice() or t.inbound.payload
    if picked == "cmd:lang":
        return LANG_CHOOSE
    if picked in GO_ENTRY:
        return GO_ENTRY[picked]
    if picked and picked.startswith("go:usage:"):  # the chart button of a reading or a bill
        from .usage import for_contract

        return await for_contract(t, picked.removeprefix("go:usage:"))
    u = t.understood
    if u is not None and u.entities.get("topic") in ("connection", "transfer") and u.intent != "track":
        return ref("connection.start")  # "bghit compteur jdid", whatever intent it read as (issue 24)
    if u is not None and (target := await number_before_linking(t)):
        return target
    if u is not None and u.intent in INTENT_ENTRY:
        if competing(t):
            return MENU_CLARIFY
        if u.intent == "greeting":
            t.say(_greeting_back(t))
        elif u.intent == "help" and u.entities.get("topic") == "transition":
            say_transition(t)  # "wach lydec mazal?": who the operator is now (issue 24)
        elif u.intent == "help":
            t.say("help.text", phone=t.tr.ltr(t.profile.contact.phones[0]))
        return INTENT_ENTRY[u.intent] if u.intent not in ("greeting", "help") else AGAIN
    if t.inbound.photo_ref:
        t.say("menu.photo_out_of_place")
    elif t.inbound.contact_phone:
        t.say("menu.contact_out_of_place")
    elif t.inbound.other or t.inbound.location:
        t.say("input.unsupported")
    else:
        t.say("menu.not_understood")
    return AGAIN


def say_transition(t: Turn) -> None:
    """The profile's explanation of the operators it replaced; an operator that replaced none
    says it is the customer's."""
    if t.profile.transition is not None:
        t.say_text(t.profile.transition.get(t.lang))
    else:
        t.say("transition.none", operator=t.profile.operator.short_name.get(t.lang))


def competing(t: Turn) -> bool:
    """The message reads as two requests neck and neck (`Understood.runner_up`: "bghit nkhelles
    lfactura f lwakala", the balance or an agency?): ask, keeping what it said for the journey
    chosen."""
    from . import GO_ENTRY, INTENT_ENTRY

    u = t.understood
    if u is None or u.runner_up is None:
        return False
    if "agency" in (u.intent, u.runner_up) and places.city_entity(t.text, t.profile):
        return False  # a city named: the agencies there
    options = [i for i in (u.intent, u.runner_up) if i in INTENT_ENTRY]
    gos = [next((p for p, e in GO_ENTRY.items() if e == INTENT_ENTRY[i]), None) for i in options]
    if len(options) != 2 or None in gos:
        return False
    t.keep_given()
    t.data["_clarify"] = gos
    return True


async def number_before_linking(t: Turn) -> str | None:
    """A chat with no contract linked yet that sends a number and nothing more to act on.
    A contract number named as such ("contrat 1000001") with no clear request: linked first
    (every request needs it), then the menu, or the two requests it may be. A bare number
    shaped like a contract number ("1000001"): it may be that or the meter's index, so asked,
    not guessed. (Whether such a contract exists is not looked up: the answer would tell which
    numbers exist.)"""
    u = t.understood
    if u is None or not t.text or set(u.entities) not in ({"index"}, {"contract"}):
        return None
    if "contract" in u.entities and u.intent != "unknown" and u.runner_up is None and u.confidence >= CLEAR:
        return None  # a clear request: its journey links the contract given first
    if "index" in u.entities:
        digits = reference_key(t.text)  # the digits as linking reads a typed contract number
        if u.intent != "reading" or digits is None or not t.profile.contract_number_ok(digits):
            return None
    if await t.tx.linked_contracts(t.channel, t.user_id):
        return None
    if "contract" in u.entities:
        if competing(t):
            t.data["after_link"] = MENU_CLARIFY  # linked, then which of the two it asked
        t.data[GIVEN] = {"contract": u.entities["contract"]}
        return LINK_START
    t.data["_clarify"] = ["go:link", "go:reading"]
    t.data[_NUMBER] = [digits, u.entities["index"]]
    return MENU_CLARIFY


CLEAR = 0.6  # below: the request read is a guess (two intents neck and neck are ~0.5)
LINK_START = ref("link.contract")


_NUMBER = "_clarify_number"  # [as a contract number, as an index] while asked which it is
_LABELS = {"go:link": "clarify.contract_number"}  # choices the menu does not list


@menu.prompt("clarify")
async def ask_which(t: Turn) -> str | None:
    from . import MENU_ITEMS

    labels = dict(MENU_ITEMS) | _LABELS
    gos = t.data.get("_clarify") or []
    number = t.data.get(_NUMBER)
    question = t.tr("clarify.number_kind", number=t.tr.ltr(number[0])) if number else t.tr("clarify.which")
    t.ask(question, [t.button(go, labels[go]) for go in gos if go in labels])
    return None


@menu.handle("clarify")
async def on_which(t: Turn) -> str | None:
    """The request chosen; what the first message said goes with it (not learnt from: the
    operator labels, conversations/learning.py)."""
    from . import GO_ENTRY

    picked = t.choice()
    t.data.pop("_clarify", None)
    number = t.data.pop(_NUMBER, None)
    if picked in GO_ENTRY:
        t.consume_input()  # the entities kept are the first message's, not this press's
        if number is not None:  # the bare number, as the customer said it is
            t.data[GIVEN] = {"contract": number[0]} if picked == "go:link" else {"index": number[1]}
        return GO_ENTRY[picked]
    t.data.pop(GIVEN, None)
    return await on_menu(t)  # something else: read as at the menu


_THANKS = re.compile(
    r"merci|mrc|thanks?|thx|شكر|choukran|chokran|shokran|chukran|baraka ?llahu? fik|بارك الله فيك|جزاك الله|"
    r"الله يجازيك|lah yjazik|allah yjazik|يعطيك الصحه|y3tik sa7a"
)
_SALAM = re.compile(r"(?<!\w)(?:salam|slm|salamo|assalam|السلام|سلام)")


def _greeting_back(t: Turn) -> str:
    """Thanks get "you're welcome", a salam its answer, a hello a hello (in the evening, bonsoir)."""
    norm = normalize(t.text or "")
    if _THANKS.search(norm):
        return "menu.thanks_back"
    if t.lang == "ar":
        return "menu.greeting_back" if _SALAM.search(norm) else "menu.hello_back"
    return "menu.evening_back" if t.local(t.now).hour >= 18 else "menu.greeting_back"


@lang.prompt("choose")
async def ask_language(t: Turn) -> str | None:
    t.ask(t.tr("lang.prompt"), [t.button("lang:ar", "lang.ar"), t.button("lang:fr", "lang.fr")])
    return None


@lang.handle("choose")
async def on_language(t: Turn) -> str | None:
    picked = t.choice()
    if picked is None and t.understood is not None:
        named = _named_language(t.text)
        picked = {"ar": "lang:ar", "fr": "lang:fr"}.get(named) if named else None
    if picked not in ("lang:ar", "lang:fr"):
        t.say("lang.not_understood")
        return AGAIN
    t.session.lang = picked[5:]
    t.data.pop("_choices", None)
    t.say("lang.changed")
    # Chosen in the middle of a journey: its question again, in the new language.
    return t.data.pop("_lang_return", None) or MENU_MAIN


def _named_language(text: str) -> str | None:
    low = text.casefold()
    if any(w in low for w in ("arab", "عرب", "3arab", "darija", "دارج")):
        return "ar"
    if any(w in low for w in ("fran", "فرنس", "fr")):
        return "fr"
    return None
