"""`addad requests list|show|approve|reject`: the back office's view of customer requests;
`addad deadletters`: the messages the channels delivered that the bot could not read.

Times are shown in the operator's time zone (stored in UTC)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from bot.actor import operator_actor
from bot.config import Settings
from conversations.backoffice import BackOfficeError, decide
from conversations.profile import Profile, load_profile
from storage import Request, open_store
from storage.values import format_amount_plain


def _line(r: Request, profile: Profile) -> str:
    amount = format_amount_plain(r.amount) if r.amount is not None else "-"
    extra = f"{r.months} months" if r.months else (f"until {r.defer_until}" if r.defer_until else "")
    return (
        f"{r.reference:16} {r.kind:16} {r.contract or '-':10} {r.status:9} "
        f"{profile.local(r.created_at):%Y-%m-%d %H:%M} {amount:>10} {extra}"
    ).rstrip()


ALERT_DAYS = 7  # security alerts listed for this long after they were raised


def _alert_line(entry: dict, profile: Profile) -> str:
    """A contract whose proof was failed too often from all chats (conversations/journeys/linking.py)."""
    d = entry["details"]
    known = "" if d.get("known", True) else " (no such contract)"
    return (
        f"{'SECURITY ALERT':16} {'proof_locked':16} {entry['contract']:10} "
        f"{profile.local(datetime.fromisoformat(entry['at'])):%Y-%m-%d %H:%M} "
        f"{d.get('failures')} failed proofs in {d.get('window_hours')} h from {d.get('chats')} chat(s){known}; "
        "proof by amount suspended"
    )


def _dead_letter_line(d: dict, profile: Profile) -> str:
    """A parked message (bot/channels/payloads.py): when, where, its key, whether its sender was told, why."""
    told = "told" if d["notified"] else "not told"
    return (
        f"{profile.local(d['parked_at']):%Y-%m-%d %H:%M} {d['channel']:9} {d['message_id'][:40]:40} "
        f"{told:8} {d['reason']}"
    )


def _show(r: Request, profile: Profile) -> str:
    zone = profile.timezone
    rows = [
        ("reference", r.reference),
        ("kind", r.kind),
        ("status", r.status),
        ("contract", r.contract or "-"),
        ("filed", f"{profile.local(r.created_at):%Y-%m-%d %H:%M} {zone} on {r.channel} ({r.lang})"),
        ("arrears", format_amount_plain(r.amount) + " DH" if r.amount is not None else "-"),
    ]
    if r.defer_until:
        rows.append(("pay before", r.defer_until.isoformat()))
    if r.reason or r.reason_text:
        rows.append(("reason", " — ".join(x for x in (r.reason, r.reason_text) if x)))
    for key, value in r.details.items():
        rows.append((key, ", ".join(map(str, value)) if isinstance(value, list) else str(value)))
    if r.decided_at:
        rows.append(
            (
                "decided",
                f"{profile.local(r.decided_at):%Y-%m-%d %H:%M} {zone} by {r.decided_by}: "
                f"{r.decision_note or ''}".rstrip(": "),
            )
        )
    out = [f"{k:11} {v}" for k, v in rows if v not in (None, "None")]
    if r.lines:
        out.append("schedule")
        out += [f"  {l.seq:>2}. {l.due_date}  {format_amount_plain(l.amount):>10} DH" for l in r.lines]
        out.append(f"      total  {format_amount_plain(sum(l.amount for l in r.lines)):>10} DH")
    return "\n".join(out)


async def _run(args, settings: Settings) -> int:
    from bot.errors import UserError

    profile = load_profile(settings.operator)
    store = await open_store(settings.database, clock=settings.make_clock())
    try:
        if args.command == "deadletters":
            async with store.snapshot() as tx:
                total = await tx.count_dead_letters()
                parked = await tx.dead_letters(limit=max(args.limit, 0))
            for d in parked:
                print(_dead_letter_line(d, profile))
                if args.body:
                    print("  " + d["body"])
            print(f"{total} parked message(s), {len(parked)} shown; times in {profile.timezone}")
            return 0
        if args.action == "list":
            async with store.snapshot() as tx:
                found = await tx.requests(status=args.status)
                alerts = await tx.audit_entries(action="proof_locked") if args.status in (None, "pending") else []
                unreadable = await tx.count_dead_letters()
            since = store.clock() - timedelta(days=ALERT_DAYS)
            alerts = [a for a in alerts if datetime.fromisoformat(a["at"]) >= since]
            for a in alerts:
                print(_alert_line(a, profile))
            if alerts:
                print(f"{len(alerts)} security alert(s) in {ALERT_DAYS} days")
            for r in found:
                print(_line(r, profile))
            print(f"{len(found)} request(s); times in {profile.timezone}")
            if unreadable:
                print(f"{unreadable} message(s) the bot could not read are parked: addad deadletters")
            return 0
        if args.action == "show":
            async with store.snapshot() as tx:
                shown = await tx.request(args.id.strip().upper())
            if shown is None:
                raise UserError(f"no request {args.id}")
            print(_show(shown, profile))
            return 0
        actor = operator_actor()
        decision = "approved" if args.action == "approve" else "rejected"
        try:
            async with store.transaction() as tx:
                r = await decide(tx, args.id, decision, note=args.note, actor=actor, now=store.clock())
        except BackOfficeError as exc:
            raise UserError(str(exc)) from None
        print(f"{r.reference}: {r.status}; the customer will be told on {r.channel}")
        return 0
    finally:
        await store.close()


def run(args, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))
