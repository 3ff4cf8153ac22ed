"""Errors the command line turns into one line on stderr (no traceback). A module of its own so
that any command can raise them without importing `bot.cli` (which imports the commands)."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; printed as one line."""


class ConfigError(Exception):
    """A setting that prevents starting; the message says which and why."""
