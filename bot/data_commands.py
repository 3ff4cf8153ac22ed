"""`addad import …` and `addad export …`."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path
from typing import cast

from bot.config import Settings


async def _run(args, settings: Settings) -> int:
    from bot.errors import UserError
    from conversations.profile import load_profile
    from storage import open_store
    from storage.csvio import ImportRejected, export_readings, export_requests, import_file
    from storage.values import ValueProblem, parse_iso_date

    if args.command == "import":
        path = Path(args.file)
        if not path.is_file():  # noqa: ASYNC240 (once, before the import starts)
            raise UserError(f"{args.file}: no such file")
        profile = load_profile(settings.operator)
        store = await open_store(settings.database, clock=settings.make_clock())
        try:
            result = await import_file(store, args.kind, path, profile)
        except ImportRejected as rejected:
            for problem in rejected.problems:
                print(problem, file=sys.stderr)
            print(
                f"addad: {path.name} rejected: {len(rejected.problems)} problem(s), nothing was written",
                file=sys.stderr,
            )
            return 1
        finally:
            await store.close()
        print(result.summary(path.name))
        return 0

    since = None
    if getattr(args, "since", None):
        try:
            since = parse_iso_date(args.since)
        except ValueProblem as exc:
            raise UserError(f"--since: {exc}") from None
    store = await open_store(settings.database)
    try:
        out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout  # noqa: ASYNC230, SIM115 (closed below)
        try:
            stream = cast(io.TextIOBase, out)  # csvio takes any text stream: a file or stdout
            async with store.snapshot() as tx:
                if args.kind == "readings":
                    count = await export_readings(tx, stream, since=since)
                else:
                    count = await export_requests(tx, stream, status=args.status, unmasked=args.unmasked)
        finally:
            if args.output:
                out.close()
    finally:
        await store.close()
    if args.output:
        print(f"{args.output}: {count} {args.kind}")
    return 0


def run(args, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))
