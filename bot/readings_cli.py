"""`addad readings list [--flagged] [--since DATE]` and `addad readings review ID
accept|reject|correct INDEX [--note TEXT]`: the back office's review of customer readings
(conversations/review.py). Times are shown in the operator's time zone."""

from __future__ import annotations

import asyncio

from bot.actor import operator_actor
from bot.config import Settings
from bot.errors import UserError
from conversations.profile import Profile, load_profile
from conversations.review import ReviewError, parse_index, review
from storage import open_store
from storage.review_records import ReviewItem
from storage.values import ValueProblem, parse_iso_date


def _flag(item: ReviewItem, flag: str) -> str:
    if flag == "replaces":
        return f"replaces {item.replaces_reference}"
    seen = item.reading.details.get("ocr") if flag == "ocr" else None
    if isinstance(seen, dict) and "read" in seen:  # a typed index the photo disagrees with (issue 21)
        return f"ocr (the photo shows {seen['read']})"
    return flag


def _line(item: ReviewItem, profile: Profile) -> str:
    r = item.reading
    used = "-" if r.consumption is None else str(r.consumption)
    since = f"{r.previous_index}@{r.previous_date}" if r.previous_index is not None else "-"
    if item.outcome:
        state = f"{item.outcome} by {item.reviewed_by}"
        if item.corrected_index is not None:
            state += f" ({item.original_index} -> {item.corrected_index})"
    elif item.pending:
        state = "to review: " + ", ".join(_flag(item, f) for f in item.flags)
    else:
        state = r.status
    submitted = profile.local(r.submitted_at).strftime("%Y-%m-%d %H:%M") if r.submitted_at else "-"
    photo = "photo" if r.photo_sha256 or r.photo_ref else "-"
    return (
        f"{r.id:>7} {r.reference or '-':16} {r.contract:10} {r.reading_date} {r.index_value:>12} "
        f"{used:>8} {since:22} {photo:5} {submitted} {r.channel or '-':9} {state}"
    )


async def _run(args, settings: Settings) -> int:
    profile = load_profile(settings.operator)
    store = await open_store(settings.database, clock=settings.make_clock())
    try:
        if args.action == "list":
            try:
                since = parse_iso_date(args.since) if args.since else None
            except ValueProblem as exc:
                raise UserError(f"--since: {exc}") from None
            async with store.snapshot() as tx:
                items = await tx.review_items(flagged=args.flagged, since=since, limit=10_000)
            print(
                f"{'id':>7} {'reference':16} {'contract':10} {'date':10} {'index':>12} {'used':>8} "
                f"{'from':22} {'photo':5} {'submitted':16} {'channel':9} review"
            )
            for item in items:
                print(_line(item, profile))
            what = "awaiting review" if args.flagged else "customer reading(s)"
            print(f"{len(items)} {what}; times in {profile.timezone}")
            return 0
        wanted = args.id.strip().upper()
        if wanted.isdigit() and wanted.isascii():
            if len(wanted) > 12:  # no row has such an id (and SQLite's integers stop at 19 digits)
                raise UserError(f"no customer reading {wanted}")
            reading_id = int(wanted)
        elif wanted.startswith("RL-"):  # the reference the customer was given (second column)
            async with store.snapshot() as tx:
                found = await tx.reading_id_of(wanted)
            if found is None:
                raise UserError(f"no customer reading {wanted}")
            reading_id = found
        else:
            raise UserError(
                f"reading ID must be a number or a reference (the first two columns of `addad readings list`), "
                f"not {args.id!r}"
            )
        outcome = {"accept": "accepted", "reject": "rejected", "correct": "corrected"}[args.outcome]
        index = None
        try:
            if outcome == "corrected":
                if args.index is None:
                    raise UserError("correct needs the index: addad readings review ID correct INDEX")
                index = parse_index(args.index)
            elif args.index is not None:
                raise UserError(f"{args.outcome} takes no index (only correct does)")
            actor = operator_actor()
            async with store.transaction() as tx:
                item = await review(tx, reading_id, outcome, actor=actor, profile=profile, note=args.note, index=index)
        except ReviewError as exc:
            raise UserError(str(exc)) from None
        r = item.reading
        told = f"; the customer will be told on {r.channel}" if r.channel else ""
        print(f"reading {r.id} ({r.reference}): {item.outcome}, index {r.index_value}{told}")
        return 0
    finally:
        await store.close()


def run(args, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))
