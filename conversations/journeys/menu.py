"""Main menu and language choice. Diagram: docs/flows/menu.md"""

from __future__ import annotations

from functools import cache

from ..events import Button
from ..flow import AGAIN, GIVEN, Flow, MenuItem, Turn
from ..i18n import translator

menu = Flow("menu", states=("main",), intents=("greeting", "help"))
MENU_MAIN = menu.state("main")
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
    u = t.understood
    if u is not None and u.intent in INTENT_ENTRY:
        if u.intent == "greeting":
            t.say("menu.greeting_back")
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
