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
            # A folder or a device exists: "no such file" would send the operator looking for it.
            raise UserError(f"{args.file}: " + ("not a regular file" if path.exists() else "no such file"))  # noqa: ASYNC240
        profile = load_profile(settings.operator)
        store = await open_store(settings.database, clock=settings.make_clock())
        progress = _Progress(path.name) if sys.stderr.isatty() else None
        try:
            result = await import_file(store, args.kind, path, profile, check=args.check, progress=progress)
        except ImportRejected as rejected:
            if progress:
                progress.close()
            for problem in rejected.problems:
                print(problem, file=sys.stderr)
            listed = f" (the first {len(rejected.problems)} listed)" if rejected.total > len(rejected.problems) else ""
            print(
                f"addad: {path.name} rejected: {rejected.total} problem(s){listed}, nothing was written",
                file=sys.stderr,
            )
            return 1
        finally:
            await store.close()
        if progress:
            progress.close()
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


class _Progress:
    """The import's progress bar on a terminal (tqdm, on standard error): rows, rows/s and the
    time left, the total estimated from the bytes read so far (the file is not counted first)."""

    def __init__(self, name: str) -> None:
        import os

        from tqdm import tqdm

        try:
            width, height = os.get_terminal_size(sys.stderr.fileno())
        except OSError:
            width = height = 0
        # (a terminal that reports no size, as a bare pty does, is taken as 80x24: tqdm shows nothing in 0)
        self.bar = tqdm(
            desc=name,
            unit=" rows",
            unit_scale=True,
            file=sys.stderr,
            leave=True,  # the last state stays: rows, time taken, rows/s
            ncols=width or 80,
            nrows=height or 24,
        )

    def __call__(self, rows: int, done: int, size: int) -> None:
        bar = self.bar
        if done:
            bar.total = max(rows, round(rows * size / done))
        bar.update(rows - bar.n)

    def close(self) -> None:
        self.bar.refresh()
        self.bar.close()


def run(args, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))
