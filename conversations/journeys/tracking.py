"""Tracking: the customer's requests with their status and the last decision note.
Diagram: docs/flows/tracking.md"""

from __future__ import annotations

from storage import Request

from ..flow import Flow, MenuItem, Turn, ref

track = Flow("track", states=("start",), intents=("track",), menu=MenuItem(5, "menu.track"), request=True)
TRACK_START = track.state("start")

MENU_MAIN = ref("menu.main")


def describe_request(t: Turn, r: Request) -> str:
    text = t.tr(
        "track.item",
        reference=t.tr.ltr(r.reference),
        kind=t.tr(f"request.kind_{r.kind}"),
        status=t.tr(f"request.status_{r.status}"),
        date=t.tr.date(r.created_at.date()),
    )
    if r.decision_note:
        text += "\n" + t.tr("track.note", note=r.decision_note)
    return text


async def visible_requests(t: Turn) -> list[Request]:
    """Requests filed from this chat, and those on contracts this chat has proven it holds."""
    mine = {r.reference: r for r in await t.tx.requests(chat=(t.channel, t.user_id))}
    for c in await t.tx.linked_contracts(t.channel, t.user_id):
        for r in await t.tx.requests(contract=c.contract):
            mine.setdefault(r.reference, r)
    return sorted(mine.values(), key=lambda r: r.created_at, reverse=True)


@track.prompt("start")
async def show(t: Turn) -> str | None:
    wanted = t.use_given("reference")
    requests = await visible_requests(t)
    if wanted:
        match = [r for r in requests if r.reference == str(wanted).upper()]
        if match:
            t.say_text(describe_request(t, match[0]))
            return MENU_MAIN
        t.say("track.unknown_reference", reference=t.tr.ltr(str(wanted).upper()))
    if not requests:
        t.say("track.none")
        return MENU_MAIN
    t.say_text(t.tr("track.header") + "\n\n" + "\n\n".join(describe_request(t, r) for r in requests[:10]))
    return MENU_MAIN
