"""Reminder settings from the menu: what this chat receives, and the three choices again.
Diagram: docs/flows/remind.md. The consent logic is conversations/reminders.py; the buttons'
`remind:*` payloads are answered by the engine in any state (like "menu" or "annuler")."""

from __future__ import annotations

from ..flow import Flow, MenuItem, Turn, ref
from ..reminders import KINDS, consent_buttons

remind = Flow("remind", states=("settings",), menu=MenuItem(10, "menu.reminders"))
REMIND_SETTINGS = remind.state("settings")

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
    # The consent buttons are answered before any handler (engine `_remind`); anything else here
    # is read as at the menu.
    from .menu import on_menu

    return await on_menu(t)
