"""`addad handoff list|show ID|take ID|say ID TEXT|back ID|close ID`: the human handoff for
operators without the workspace, through the same functions (conversations/handoff.py). The
actor is `backoffice:NAME` (ADDAD_AGENT, else the system user), as for `addad readings`; times
are shown in the operator's time zone."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bot.actor import operator_actor
from bot.errors import UserError

if TYPE_CHECKING:
    from bot.config import Settings
    from conversations.profile import Profile
    from storage.review_records import ChatLine, Handoff


def add_parsers(sub) -> None:
    ho = sub.add_parser("handoff", help="back office: customers who asked for a human (take, write, hand back)")
    ho_sub = ho.add_subparsers(dest="action", required=True, metavar="ACTION")
    ho_sub.add_parser("list", help="the waiting and taken chats, oldest first")
    for name, text in (
        ("show", "a chat's recent conversation (masked)"),
        ("take", "take a waiting chat (the bot goes quiet; the customer is told); prints its conversation"),
        ("back", "hand a taken chat back to the bot (the customer is told)"),
        ("close", "close a waiting chat without taking it (the customer is told)"),
    ):
        p = ho_sub.add_parser(name, help=text)
        p.add_argument("id", help="the handoff's number (first column of `addad handoff list`)")
    say = ho_sub.add_parser("say", help="write to the customer of a chat you took, through the bot")
    say.add_argument("id", help="the handoff's number")
    say.add_argument("text", nargs="+", help="the message (words are joined by spaces)")


def _id(raw: str) -> int:
    raw = raw.strip().lstrip("#")
    if not (raw.isdecimal() and raw.isascii()) or len(raw) > 12:
        raise UserError(f"a handoff ID is a number (first column of `addad handoff list`), not {raw!r}")
    return int(raw)


def _when(profile: Profile, instant) -> str:
    return profile.local(instant).strftime("%Y-%m-%d %H:%M") if instant else "-"


def _row(h: Handoff, profile: Profile) -> str:
    state = f"taken by {h.taken_by}" if h.status == "taken" else h.status
    return f"{h.id:>6} {_when(profile, h.requested_at):16} {h.channel:9} {h.lang:4} {h.contract or '-':10} {state}"


def _lines(lines: list[ChatLine], profile: Profile) -> None:
    if not lines:
        print("(no message kept)")
    for line in lines:
        who = line.sender + (f" ({line.author})" if line.author else "")
        print(f"{_when(profile, line.at)} {who}: {line.text}")


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from conversations import handoff
    from conversations.handoff import HandoffError
    from conversations.profile import load_profile
    from storage import open_store

    profile = load_profile(settings.operator)
    store = await open_store(settings.database, clock=settings.make_clock())
    try:
        now = store.clock()
        if args.action == "list":
            async with store.transaction() as tx:  # a write: chats whose agent went silent are closed first
                rows = await handoff.queue(tx, now, profile)
            print(f"{'id':>6} {'since':16} {'channel':9} {'lang':4} {'contract':10} status")
            for h in rows:
                print(_row(h, profile))
            print(f"{len(rows)} open handoff(s); times in {profile.timezone}")
            return 0
        handoff_id, actor = _id(args.id), operator_actor()
        try:
            async with store.transaction() as tx:
                if args.action == "show":
                    found = await tx.handoff(handoff_id)
                    if found is None:
                        raise HandoffError(f"no handoff {handoff_id}", "unknown")
                    h = found
                elif args.action == "take":
                    h = await handoff.take(tx, handoff_id, actor=actor, now=now, profile=profile)
                elif args.action == "say":
                    h = await handoff.say(tx, handoff_id, " ".join(args.text), actor=actor, now=now, profile=profile)
                elif args.action == "back":
                    h = await handoff.hand_back(tx, handoff_id, actor=actor, now=now)
                else:
                    h = await handoff.dismiss(tx, handoff_id, actor=actor, now=now)
                lines = await handoff.conversation(tx, h, profile=profile)
        except HandoffError as exc:
            raise UserError(str(exc)) from None
        told = {
            "take": f"taken by {actor}; the customer is told, the bot stays quiet on this chat",
            "say": "sent to the customer through the bot",
            "back": "handed back to the bot; the customer is told",
            "close": "closed without being taken; the customer is told",
        }
        done = "close" if args.action == "back" and handoff.dismissed(h) else args.action  # nobody had taken it
        print(_row(h, profile))
        if args.action in ("show", "take"):
            _lines(lines, profile)
        if done in told:
            print(f"handoff {h.id}: {told[done]}")
        return 0
    finally:
        await store.close()


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio  # here: `addad --help` and the quick commands import no more than they need

    return asyncio.run(_run(args, settings))
