"""`addad users add|list|disable|reset` (the workspace's accounts) and `addad web` (SPEC.md)."""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import TextIO

from bot.actor import operator_actor
from bot.config import Settings
from bot.errors import UserError

from .accounts import AccountError, check_name, check_password, check_role, hash_password


def read_password(from_stdin: bool, stdin: TextIO | None = None) -> str:
    """The new password: the first line of standard input, or asked twice on the terminal
    (getpass: not echoed)."""
    if from_stdin:
        line = (stdin or sys.stdin).readline()
        password = line[:-1] if line.endswith("\n") else line
    else:
        password = getpass.getpass("New password: ")
        if getpass.getpass("Repeat it: ") != password:
            raise UserError("the two passwords differ; nothing changed")
    try:
        check_password(password)
    except AccountError as exc:
        raise UserError(str(exc)) from None
    return password


async def _users(args, settings: Settings) -> int:
    from storage import open_store

    store = await open_store(settings.database, clock=settings.make_clock())
    try:
        if args.action == "list":
            async with store.snapshot() as tx:
                found = await tx.accounts()
            for a in found:
                state = "disabled" if a.disabled else "active"
                print(f"{a.name:24} {a.role:10} {state:8} since {a.created_at:%Y-%m-%d}")
            print(f"{len(found)} account(s)")
            return 0
        try:
            name = check_name(args.name)
            role = check_role(args.role) if args.action == "add" else None
        except AccountError as exc:
            raise UserError(str(exc)) from None
        async with store.snapshot() as tx:
            existing = await tx.account(name)
        if args.action == "add" and existing is not None:
            raise UserError(f"an account {name} exists (addad users reset {name} changes its password)")
        if args.action != "add" and existing is None:
            raise UserError(f"no account {name} (addad users list)")
        password_hash = None
        if args.action in ("add", "reset"):
            # Hashed before the transaction: argon2 takes its time on purpose.
            password_hash = await asyncio.to_thread(hash_password, read_password(args.password_stdin))
        async with store.transaction() as tx:
            if args.action == "add":
                assert role is not None and password_hash is not None
                if not await tx.add_account(name, role, password_hash):
                    raise UserError(f"an account {name} exists")
                details = {"role": role}
            elif args.action == "reset":
                # A new password, the account enabled again, and every session of the old one ended.
                await tx.update_account(name, password_hash=password_hash, disabled=False)
                await tx.end_web_sessions(account=name)
                details = {}
            else:
                await tx.update_account(name, disabled=True)
                await tx.end_web_sessions(account=name)
                details = {}
            await tx.audit(f"web_account_{args.action}", actor=operator_actor(), details={"account": name, **details})
        done = {"add": f"added ({role})", "reset": "password changed, sessions ended", "disable": "disabled"}
        print(f"{name}: {done[args.action]}")
        return 0
    finally:
        await store.close()


def users(args, settings: Settings) -> int:
    return asyncio.run(_users(args, settings))


def web(args, settings: Settings) -> int:
    from .server import run_web

    asyncio.run(run_web(settings, listen=args.listen, port=args.port))
    return 0
