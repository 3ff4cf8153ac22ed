"""Reminder settings from the menu: what this chat receives, and the three choices again; and
the consent question itself, put at the menu once a journey that linked a contract has ended
(`consent`, alone: a typed "1" or "oui" answers nothing else). Diagram: docs/flows/remind.md.
The consent logic is conversations/reminders.py; the buttons' `remind:*` payloads are answered
by the engine in any state (like "menu" or "annuler")."""

from __future__ import annotations

from .. import reminders
from ..flow import Flow, MenuItem, Turn, ref
from ..reminders import KINDS, consent_buttons

remind = Flow("remind", states=("settings", "consent"), menu=MenuItem(10, "menu.reminders"))
REMIND_SETTINGS = remind.state("settings")
REMIND_CONSENT = remind.state("consent")

MENU_MAIN = ref("menu.main")


@remind.prompt("settings", needs_link=True)
async def show(t: Turn) -> str | None:
    consent = await t.tx.reminder_consent(t.channel, t.user_id)
    kinds = set(consent.kinds) if consent is not None else set()
    if not kinds:
        now = t.tr("remind.now_none")
    elif kinds == set(KINDS):
        now = t.tr("remind.now_all")
    else:
        now = t.tr("remind.now_bills")
    t.ask(t.tr("remind.settings", now=now), [*consent_buttons(t.lang), t.button("cmd:menu", "common.menu")])
    return None


@remind.handle("settings")
async def on_settings(t: Turn) -> str | None:
    # The consent buttons pressed are answered before any handler (engine `_remind`); typed (a
    # number on the console, a label, a yes or no) they are read here; anything else as at the menu.
    return await on_consent(t)


@remind.prompt("consent")
async def ask_consent(t: Turn) -> str | None:
    await reminders.ask_consent(t)
    return None


async def _answers_consent(t: Turn) -> bool:
    # "stop" or "bla" here says no to reminders, rather than cancelling a journey there is not.
    return reminders.consent_answer(t) is not None


@remind.handle("consent", answers=_answers_consent)
async def on_consent(t: Turn) -> str | None:
    picked = reminders.consent_answer(t)
    if picked is not None:
        kinds = reminders.OPTIONS[picked]
        await reminders.set_consent(t, kinds, "button" if t.inbound.payload else "typed")
        reminders.say_consent(t, kinds)
        return MENU_MAIN
    # Something else: served as at the menu; the question comes once more in a later conversation.
    from .menu import on_menu

    return await on_menu(t)
