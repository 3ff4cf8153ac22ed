"""`addad remind` and `addad notify` (SPEC.md): queue reminders and service notices for the
customers who agreed; the running bot's dispatcher sends them (conversations/reminders.py)."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import TYPE_CHECKING

from bot.errors import UserError

if TYPE_CHECKING:
    from bot.config import Settings

MAX_NOTICE = 900  # characters: a WhatsApp template parameter stays well under Meta's 1,024


def add_parsers(sub) -> None:
    rem = sub.add_parser("remind", help="queue the reminders due today for the customers who agreed")
    rem.add_argument("--as-of", dest="as_of", help="YYYY-MM-DD, today or earlier (default: the operator's today)")
    rem.add_argument("--dry-run", action="store_true", help="queue nothing; print one line per reminder")
    note = sub.add_parser("notify", help="a service notice (works, outage) to the customers of a city who agreed")
    note.add_argument("--city", required=True, help="a city of the profile, in any of its spellings")
    note.add_argument("--service", choices=["electricity", "water"], help="only contracts of this service")
    note.add_argument("--ar", required=True, help="the notice in Arabic")
    note.add_argument("--fr", required=True, help="the notice in French")
    note.add_argument("--dry-run", action="store_true", help="queue nothing; print one line per customer")


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    return asyncio.run(_remind(args, settings) if args.command == "remind" else _notify(args, settings))


async def _remind(args: argparse.Namespace, settings: Settings) -> int:
    from conversations import reminders
    from conversations.profile import load_profile
    from storage import open_store
    from storage.values import ValueProblem, parse_iso_date

    profile = load_profile(settings.operator)
    store = await open_store(settings.database, clock=settings.make_clock())
    try:
        today = profile.today(store.clock())
        if args.as_of is None:
            day = today
        else:
            try:
                day = parse_iso_date(args.as_of)
            except ValueProblem as exc:
                raise UserError(f"--as-of: {exc}") from None
            if day > today:  # a reminder of a day to come would go out now
                raise UserError(f"--as-of: {day} is in the future (today is {today} in {profile.timezone})")
        kinds: Counter[str] = Counter()
        async for p in reminders.each_due(store, profile, day, dry_run=args.dry_run):  # printed as queued
            print(f"{p.target.contract} {p.target.channel} {p.kind}")
            kinds[p.kind] += 1
    finally:
        await store.close()
    counts = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    verb = "would queue" if args.dry_run else "queued"
    print(f"reminders for {day}: {verb} {kinds.total()}" + (f" ({counts})" if counts else ""))
    return 0


async def _notify(args: argparse.Namespace, settings: Settings) -> int:
    from conversations import reminders
    from conversations.places import places_of
    from conversations.profile import load_profile
    from storage import open_store

    profile = load_profile(settings.operator)
    place = places_of(profile).named(args.city) or places_of(profile).find(args.city, expected=True)
    if place is None:
        known = ", ".join(sorted({c.name for c in profile.cities}))
        raise UserError(f"--city: {args.city!r} is not a city of the profile (known: {known})")
    texts = {"--ar": args.ar.strip(), "--fr": args.fr.strip()}
    for option, text in texts.items():
        if not text:
            raise UserError(f"{option}: the notice is empty")
        if len(text) > MAX_NOTICE:
            raise UserError(f"{option}: {len(text)} characters, at most {MAX_NOTICE}")
    store = await open_store(settings.database, clock=settings.make_clock())
    try:
        done = await reminders.queue_notice(
            store,
            profile,
            city=place.name,
            service=args.service,
            text_ar=texts["--ar"],
            text_fr=texts["--fr"],
            dry_run=args.dry_run,
        )
    finally:
        await store.close()
    for target in done:
        print(f"{target.contract} {target.channel} notice")
    verb = "would queue" if args.dry_run else "queued"
    print(f"notice for {place.name}: {verb} {len(done)}")
    return 0
