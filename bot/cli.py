"""The `addad` command line (SPEC.md). Every command migrates the database first.

User errors end with a one-line message on stderr and a non-zero status, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.errors import ConfigError, UserError

if TYPE_CHECKING:  # imported when a command needs it: `addad understand` starts without it
    from bot.config import Settings


def _run(coroutine):
    import asyncio  # (not at import: `addad understand` and `--help` never need it)

    return asyncio.run(coroutine)


class _Version(argparse.Action):
    """`addad --version`: the installed package's version, looked up only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("addad")
        except PackageNotFoundError:  # run from a checkout that was never installed
            found = "unknown (not installed)"
        print(f"addad {found}")
        parser.exit()


def _top_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    p = argparse.ArgumentParser(prog="addad", description="Addad, the water and electricity customer-service bot.")
    p.add_argument("--version", action=_Version, help="print the version and exit")
    return p, p.add_subparsers(dest="command", required=True, metavar="COMMAND")


def _add_understand(sub: argparse._SubParsersAction) -> None:
    und = sub.add_parser("understand", help="print, as JSON, what the bot understands of a message")
    und.add_argument("--lang", choices=["ar", "fr"], help="the chat's language (default: guessed from the text)")
    und.add_argument("text", nargs="+", help="the message; - reads one message a line from standard input")


def _understand_parser() -> argparse.ArgumentParser:
    """`addad understand ...` alone: the 42 other sub-commands cost ~18 ms to declare, a tenth of
    the command's cold start; the same definition as in build_parser, so help and errors match."""
    p, sub = _top_parser()
    _add_understand(sub)
    _describe(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    p, sub = _top_parser()

    demo = sub.add_parser("demo", help="create the demo database (once) and chat with the bot as a demo customer")
    demo.add_argument("--lang", choices=["ar", "fr"], help="the language the chat starts in")
    demo.add_argument("--database", help="demo database file (default: addad-demo/addad-demo.sqlite3)")
    demo.add_argument(
        "--operator",
        help="the operator profile: a bundled name (onee, srm-cs) or a TOML file (default: ADDAD_OPERATOR, else onee)",
    )

    console = sub.add_parser("console", help="chat with the bot in this terminal")
    console.add_argument("--phone", help="the phone number the console shares, e.g. +212612345678")
    console.add_argument("--lang", choices=["ar", "fr"], help="the language the chat starts in")
    console.add_argument("--user", default="console", help="chat identity (several people on one database)")

    tg = sub.add_parser("telegram", help="run the Telegram bot (long polling, or a webhook)")
    tg.add_argument("--webhook-url", help="public HTTPS URL Telegram posts to (default: long polling)")
    tg.add_argument("--listen", default="127.0.0.1", help="webhook mode: address to listen on (default 127.0.0.1)")
    tg.add_argument("--port", type=int, default=8443, help="webhook mode: port to listen on (default 8443)")

    wa = sub.add_parser("whatsapp", help="serve the WhatsApp Cloud API webhook")
    wa.add_argument("--listen", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    wa.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")

    serve = sub.add_parser(
        "serve", help="serve the WhatsApp webhook, the Telegram webhook and the web workspace in one process"
    )
    serve.add_argument("--listen", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    serve.add_argument("--telegram-webhook-url", help="public URL Telegram posts to (its path is served here)")

    webp = sub.add_parser("web", help="serve the distributor's web workspace (requests, customers, exports)")
    webp.add_argument("--listen", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    webp.add_argument("--port", type=int, default=8090, help="port to listen on (default 8090)")

    users = sub.add_parser("users", help="the web workspace's accounts")
    users_sub = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    users_add = users_sub.add_parser("add", help="add an account (the password is asked twice)")
    users_add.add_argument("name", help="the name it signs in with (a-z 0-9 . _ -)")
    users_add.add_argument("--role", required=True, choices=["agent", "supervisor", "admin"], help="what it may do")
    users_add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    users_sub.add_parser("list", help="the accounts, their roles and whether they are disabled")
    users_off = users_sub.add_parser("disable", help="disable an account and end its sessions")
    users_off.add_argument("name", help="the account's name")
    users_reset = users_sub.add_parser("reset", help="set a new password (enables the account, ends its sessions)")
    users_reset.add_argument("name", help="the account's name")
    users_reset.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", help="create or migrate the database to the current schema")
    db_sub.add_parser("prune", help="delete what the profile's [retention] no longer keeps (also run daily)")
    copy = db_sub.add_parser(
        "copy",
        help="copy every row of one database into a new, empty one (SQLite to PostgreSQL and back)",
        description="Streamed, in one transaction on TO. FROM and TO: a SQLite file (or sqlite:///path) or a "
        "postgresql://user:password@host:port/database URL; TO is created or migrated, and must be empty.",
    )
    copy.add_argument("source", metavar="FROM", help="the database to read (not changed)")
    copy.add_argument("target", metavar="TO", help="the new database to fill")

    imp = sub.add_parser("import", help="load the distributor's data from CSV (idempotent)")
    imp.add_argument(
        "kind", choices=["contracts", "bills", "readings", "agencies", "legacy"], help="what the file holds"
    )
    imp.add_argument("file", help='the CSV file (UTF-8, header row; SPEC.md "Data files")')
    imp.add_argument("--check", action="store_true", help="validate the file and report its problems; write nothing")

    exp = sub.add_parser("export", help="write CSV for the billing system or the back office")
    exp_sub = exp.add_subparsers(dest="kind", required=True, metavar="WHAT")
    exp_r = exp_sub.add_parser("readings", help="customer readings")
    exp_r.add_argument("--since", help="only readings dated YYYY-MM-DD or later")
    exp_r.add_argument("--output", help="file (default: standard output)")
    exp_q = exp_sub.add_parser("requests", help="deferral, instalment, prepaid and callback requests")
    exp_q.add_argument("--status", choices=["pending", "approved", "rejected"], help="only requests with this status")
    exp_q.add_argument("--output", help="file (default: standard output)")
    exp_q.add_argument(
        "--unmasked",
        action="store_true",
        help="write the callback phone in full (default: masked, the last four digits hidden)",
    )

    req = sub.add_parser("requests", help="back office: list and decide on customer requests")
    req_sub = req.add_subparsers(dest="action", required=True, metavar="ACTION")
    req_list = req_sub.add_parser("list", help="the requests, oldest first, after any security alert")
    req_list.add_argument(
        "--status", choices=["pending", "approved", "rejected", "replaced", "cancelled"], help="only this status"
    )
    req_show = req_sub.add_parser("show", help="one request in full")
    req_show.add_argument("id", help="the request's reference, e.g. IN-2026-000001")
    req_ok = req_sub.add_parser("approve", help="approve a request; the customer is told in their language")
    req_ok.add_argument("id", help="the request's reference, e.g. IN-2026-000001")
    req_ok.add_argument("--note", help="a note the customer is shown with the decision")
    req_no = req_sub.add_parser("reject", help="reject a request with the reason; the customer is told")
    req_no.add_argument("id", help="the request's reference, e.g. IN-2026-000001")
    req_no.add_argument("--note", required=True, help="why (shown to the customer)")

    rd = sub.add_parser("readings", help="back office: customer readings to review (outliers, rollovers, replaced)")
    rd_sub = rd.add_subparsers(dest="action", required=True, metavar="ACTION")
    rd_list = rd_sub.add_parser("list", help="customer readings, oldest submission first, with their review")
    rd_list.add_argument("--flagged", action="store_true", help="only those awaiting review")
    rd_list.add_argument("--since", help="only readings dated YYYY-MM-DD or later")
    rd_rev = rd_sub.add_parser("review", help="accept, correct or reject a reading; the customer is told")
    rd_rev.add_argument("id", help="the reading's id or reference (first two columns of `addad readings list`)")
    rd_rev.add_argument("outcome", choices=["accept", "reject", "correct"], help="the outcome")
    rd_rev.add_argument("index", nargs="?", help="correct: the right index")
    rd_rev.add_argument("--note", help="shown to the customer (needed to reject)")

    dead = sub.add_parser(
        "deadletters", help="back office: the messages the channels delivered that the bot could not read"
    )
    dead.add_argument("--limit", type=int, default=50, help="the newest N (default 50)")
    dead.add_argument("--body", action="store_true", help="also print each message as received (JSON)")

    _add_understand(sub)

    ocr = sub.add_parser("ocr", help="print, as JSON, the index a meter photo shows (needs the ocr extra)")
    ocr.add_argument("file", help="a JPEG, PNG or WebP photo of the meter")
    ocr.add_argument("--digits", type=int, help="the meter's dial count (default: any of 4 to 9)")

    est = sub.add_parser("estimate", help="write estimated readings for contracts with no reading this cycle")
    est.add_argument(
        "--as-of", required=True, dest="as_of", help="YYYY-MM-DD, today or earlier: the cycle is its calendar month"
    )

    from bot import remind_cli  # `addad remind`, `addad notify` (issue 22)

    remind_cli.add_parsers(sub)

    from bot import handoff_cli  # `addad handoff` (issue 20)

    handoff_cli.add_parsers(sub)

    learn = sub.add_parser("learn", help="the messages the bot did not understand, masked, for labelling")
    learn_sub = learn.add_subparsers(dest="action", required=True, metavar="ACTION")
    learn_exp = learn_sub.add_parser("export", help="one JSON line each, in the training data's shape")
    learn_exp.add_argument("--since", help="YYYY-MM-DD (default: everything kept)")
    learn_exp.add_argument("--output", help="a file (default: standard output)")
    _describe(p)
    return p


def _describe(parser: argparse.ArgumentParser) -> None:
    """Each sub-command's own `--help` opens with the line its parent lists it with."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if sub.description is None and helps.get(name):
                    sub.description = helps[name]
                _describe(sub)


async def _learn_rows(settings: Settings, since_text: str | None):
    from datetime import datetime, time

    from conversations import learning
    from conversations.profile import load_profile
    from storage import open_store
    from storage.values import ValueProblem, parse_iso_date

    try:
        since = parse_iso_date(since_text) if since_text else None
    except ValueProblem as exc:
        raise UserError(f"--since: {exc}") from None
    profile = load_profile(settings.operator)
    store = await open_store(settings.database, clock=settings.make_clock())
    try:
        async with store.transaction() as tx:
            pruned = await learning.prune(tx, profile, store.clock())  # retention first: never export the expired
            rows = await tx.unrecognised(since=datetime.combine(since, time(), profile.zone) if since else None)
    finally:
        await store.close()
    return rows, pruned, profile.learning.keep_days


def _learn_export(settings: Settings, since_text: str | None, output: str | None) -> int:
    """`addad learn export`: the kept messages, masked, one JSON line each for labelling."""
    from conversations import learning

    rows, pruned, keep_days = _run(_learn_rows(settings, since_text))
    if output:
        with open(output, "w", encoding="utf-8") as out:
            count = learning.write_for_labelling(rows, out)
    else:
        count = learning.write_for_labelling(rows, sys.stdout)
    print(
        f"{count} message(s) to label ({pruned} older than {keep_days} days forgotten); "
        "fill `intent` and `group`, then append to data/intents/train.jsonl and retrain",
        file=sys.stderr,
    )
    return 0


async def _db_upgrade(settings: Settings) -> int:
    from storage import open_store

    store = await open_store(settings.database, migrate=False)
    try:
        applied = await store.upgrade()
        version = await store.schema_version()
    finally:
        await store.close()
    from storage import masked_url

    done = f" (applied {', '.join(applied)})" if applied else ""
    print(f"{masked_url(settings.database)}: schema version {version}{done}")
    return 0


async def _db_copy(source: str, target: str) -> int:
    from storage import masked_url, open_store
    from storage.copy import CopyRefused, copy_store

    for url in (source, target):
        _check_database_folder(argparse.Namespace(command="db"), url)
    src = await open_store(source, migrate=False)
    try:
        dst = await open_store(target)
        try:
            try:
                report = await copy_store(src, dst)
            except CopyRefused as exc:
                raise UserError(f"db copy: {exc}") from exc
        finally:
            await dst.close()
    finally:
        await src.close()
    total = sum(report.rows.values())
    counts = ", ".join(f"{t} {n}" for t, n in report.rows.items() if n)
    print(f"copied {total} rows from {masked_url(source)} to {masked_url(target)}" + (f": {counts}" if counts else ""))
    return 0


async def _db_prune(settings: Settings) -> int:
    from conversations import retention
    from conversations.profile import load_profile
    from storage import open_store
    from storage.media import MediaFiles

    profile = load_profile(settings.operator)
    store = await open_store(settings.database, clock=settings.make_clock())
    try:
        async with store.transaction() as tx:
            pruned = await retention.prune(tx, profile, store.clock(), MediaFiles(settings.media_path()))
    finally:
        await store.close()
    print(f"{settings.database}: {pruned}")
    return 0


async def _estimate(settings: Settings, as_of_text: str) -> int:
    from conversations.consumption import write_estimates
    from storage import open_store
    from storage.values import ValueProblem, parse_iso_date

    try:
        as_of = parse_iso_date(as_of_text)
    except ValueProblem as exc:
        raise UserError(f"--as-of: {exc}") from None
    from conversations.profile import load_profile

    profile = load_profile(settings.operator)
    store = await open_store(settings.database, clock=settings.make_clock())
    try:
        today = profile.today(store.clock())
        if as_of > today:  # an estimate stands for a cycle that has happened, not one to come
            raise UserError(f"--as-of: {as_of} is in the future (today is {today} in {profile.timezone})")
        async with store.transaction() as tx:
            run = await write_estimates(tx, as_of)
    finally:
        await store.close()
    print(
        f"estimated readings as of {as_of}: {len(run.written)} written, {run.already_read} already read this cycle, "
        f"{len(run.skipped_no_history)} without history"
    )
    for contract in run.skipped_no_history:
        print(f"  {contract}: no usable history, not estimated")
    return 0


def _understand(args: argparse.Namespace) -> int:
    from bot.quick_config import quick_settings
    from conversations import places
    from conversations.quick_profile import quick_profile

    settings = quick_settings()
    profile = quick_profile(settings.operator)
    today = profile.today(settings.make_clock()())
    text = sys.stdin if args.text == ["-"] else " ".join(args.text)  # "-": one message a line
    return places.understand_command(text, args.lang, profile, today=today)


def _check_database_folder(args: argparse.Namespace, database: str) -> None:
    """ADDAD_DATABASE in a folder that does not exist is a typo, not a request to create it (the
    demo's own folder, made by `addad demo`, aside)."""
    import re
    from pathlib import Path

    if args.command == "demo" or database == ":memory:":
        return
    match = re.match(r"^([a-z][a-z0-9+.-]*)://(.*)$", database, re.I)
    if match and match.group(1).lower() != "sqlite":
        return  # another backend's URL: that backend reports what it cannot reach
    folder = Path(match.group(2) if match else database).expanduser().parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UserError(f"ADDAD_DATABASE={database}: the folder {folder} {what} (create it, or fix the path)")


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    _check_database_folder(args, settings.database)
    if args.command == "db":
        if args.db_command == "prune":
            return _run(_db_prune(settings))
        if args.db_command == "copy":
            return _run(_db_copy(args.source, args.target))
        return _run(_db_upgrade(settings))
    if args.command in ("import", "export"):
        from bot import data_commands

        return data_commands.run(args, settings)
    if args.command in ("demo", "console"):
        from bot.channels import console

        return console.run(args, settings)
    if args.command in ("requests", "deadletters"):
        from bot import backoffice_cli

        return backoffice_cli.run(args, settings)
    if args.command == "readings":
        from bot import readings_cli

        return readings_cli.run(args, settings)
    if args.command == "estimate":
        return _run(_estimate(settings, args.as_of))
    if args.command in ("users", "web"):
        from bot.web import cli as web_cli

        return web_cli.users(args, settings) if args.command == "users" else web_cli.web(args, settings)
    if args.command == "learn":
        return _learn_export(settings, args.since, args.output)
    if args.command in ("remind", "notify"):
        from bot import remind_cli

        return remind_cli.run(args, settings)
    if args.command == "handoff":
        from bot import handoff_cli

        return handoff_cli.run(args, settings)
    if args.command == "telegram":
        from bot.runtime import run_telegram

        # gc_tuning: the long-running bot commands only (not the demo, the console, the tests).
        _run(run_telegram(settings, webhook_url=args.webhook_url, listen=args.listen, port=args.port, gc_tuning=True))
        return 0
    if args.command in ("whatsapp", "serve"):
        from bot.runtime import run_whatsapp

        _run(
            run_whatsapp(
                settings,
                listen=args.listen,
                port=args.port,
                telegram_webhook_url=getattr(args, "telegram_webhook_url", None),
                gc_tuning=True,
                workspace=args.command == "serve",
            )
        )
        return 0
    raise UserError(f"'addad {args.command}' is not available in this version yet")


def _ocr(path: str, digits: int | None) -> int:
    """`addad ocr FILE [--digits N]`: {"index": ..., "confidence": ..., "digits": ...} (SPEC.md)."""
    import json
    from pathlib import Path

    from conversations import ocr
    from conversations.media import NotAnImage, image_format

    if digits is not None and not 1 <= digits <= 12:
        raise UserError(f"--digits {digits}: a meter has 1 to 12 dials")
    if not ocr.available():
        raise UserError("the ocr extra is not installed (README, 'OCR suggestion': pip install -e '.[ocr]')")
    data = Path(path).read_bytes()  # (OSError: one line from main)
    try:
        image_format(data)
    except NotAnImage:
        raise UserError(f"{path} is not a JPEG, PNG or WebP image") from None
    print(json.dumps(ocr.read_photo(data, digits, threads=2).as_json()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    args = (_understand_parser() if words[:1] == ["understand"] else build_parser()).parse_args(words)
    try:
        if args.command == "understand":
            return _understand(args)  # the quick path: no pydantic-settings, no logging set-up
        if args.command == "ocr":
            return _ocr(args.file, args.digits)
        import logging  # (here: `--help` and `understand` start without it)

        from bot.config import Settings

        settings = Settings()
        logging.basicConfig(
            level=getattr(logging, settings.log_level.upper(), logging.INFO),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
        return _dispatch(args, settings)
    except (UserError, ConfigError) as exc:
        print(f"addad: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a user error we did not foresee still gets one line, not a traceback
        from conversations.profile import ProfileError
        from storage import StoreUnavailable
        from storage.clock import ClockError

        if isinstance(exc, StoreUnavailable):  # a read-only database, a journal that cannot be made
            print(f"addad: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, ClockError):
            print(f"addad: ADDAD_CLOCK: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, (ProfileError, OSError)):
            print(f"addad: {exc}", file=sys.stderr)
            return 2
        raise
