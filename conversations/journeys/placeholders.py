"""Entry states of the journeys that later issues fill (reading, facilities, prepaid, tracking).

Until then they tell the customer plainly where to go instead, and return to the menu.
"""
from __future__ import annotations

from ..flow import Flow, Turn
from .common import operator_phone


def _unavailable(flow: Flow, needs_link: bool) -> None:
    @flow.prompt("start", needs_link=needs_link)
    async def start(t: Turn) -> str | None:
        t.say("journey.unavailable", phone=operator_phone(t))
        return "menu.main"


for _name, _needs in (("reading", True),):
    _unavailable(Flow(_name), _needs)
