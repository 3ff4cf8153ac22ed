"""Workspace accounts: password hashing (argon2id, argon2-cffi), the sign-in check with its
throttle, and sessions. Used by the sign-in page and by `addad users`."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from storage import Store
from storage.records import Account

from .core import ROLES

_hasher = PasswordHasher()  # argon2id with the library's recommended costs (RFC 9106 low-memory)
# Checked against when the name is unknown, so an unknown name takes as long as a wrong password.
_DUMMY = _hasher.hash("addad: no such account")

THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5  # then that name is refused for the rest of the window
MAX_FAILURES_PER_ADDRESS = 20  # one address guessing many names
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte-long "password" is an attack
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")


class AccountError(ValueError):
    """A name, role or password that cannot be used; the message says why (English: the CLI's)."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"the password has more than {MAX_PASSWORD} characters")


def check_name(name: str) -> str:
    name = name.strip().lower()
    if not (1 <= len(name) <= 64) or not set(name) <= NAME_CHARS:
        raise AccountError("an account name is 1-64 characters among a-z 0-9 . _ -")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"the role is one of {', '.join(ROLES)}")
    return role


@dataclass(frozen=True)
class SignIn:
    """What a sign-in attempt came to: the account, or why not (`wrong`, `throttled`), and
    when a throttled visitor may try again."""

    account: Account | None
    outcome: str  # ok, wrong, throttled
    retry_at: datetime | None = None


async def sign_in(store: Store, name: str, password: str, address: str, *, now: datetime) -> SignIn:
    """Check a name and password, throttled per name and per address; a failure is recorded.
    While throttled, even the right password is refused (the guesser cannot tell). The hash is
    checked in a thread, outside any transaction (it takes tens of milliseconds on purpose)."""
    name = name.strip().lower()[:64]
    since = now - THROTTLE_WINDOW
    async with store.snapshot() as tx:
        by_name, first_name = await tx.signin_failures(since=since, account=name)
        by_address, first_address = await tx.signin_failures(since=since, address=address)
        acct = await tx.account(name)
    if by_name >= MAX_FAILURES_PER_ACCOUNT or by_address >= MAX_FAILURES_PER_ADDRESS:
        first = min(x for x in (first_name, first_address) if x is not None)
        return SignIn(None, "throttled", first + THROTTLE_WINDOW)
    ok = await asyncio.to_thread(_verify, acct.password_hash if acct else _DUMMY, password[:MAX_PASSWORD])
    async with store.transaction() as tx:
        if not ok or acct is None or acct.disabled:
            await tx.add_signin_failure(name, address, now=now)
            return SignIn(None, "wrong")
        await tx.clear_signin_failures(name, older_than=since)
    return SignIn(acct, "ok")


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def new_session_token() -> str:
    return secrets.token_urlsafe(32)
