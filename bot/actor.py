"""Who runs a back-office command (`addad requests`, `readings`, `handoff`, `users`), as the
audit log and the decisions name them: `backoffice:` and ADDAD_AGENT, else the system user."""

from __future__ import annotations

import getpass
import os


def operator_actor() -> str:
    return "backoffice:" + (os.environ.get("ADDAD_AGENT") or getpass.getuser())
