"""The few settings `addad understand` needs, without pydantic-settings (~90 ms to import, most
of that command's cold start). Same sources and precedence as bot.config.Settings: the
environment first, then a `.env` file in the working directory; names are ADDAD_* in any case."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from storage.clock import Clock, parse_clock


@dataclass(frozen=True)
class QuickSettings:
    operator: str | None = None
    clock: str | None = None
    log_level: str = "INFO"

    def make_clock(self) -> Clock:
        return parse_clock(self.clock)


def quick_settings() -> QuickSettings:
    values: dict[str, str] = {}
    if Path(".env").is_file():
        from dotenv import dotenv_values  # (pydantic-settings' own reader of .env)

        values.update({k.upper(): v for k, v in dotenv_values(".env", encoding="utf-8").items() if v is not None})
    values.update({k.upper(): v for k, v in os.environ.items() if k.upper().startswith("ADDAD_")})
    return QuickSettings(
        operator=values.get("ADDAD_OPERATOR") or None,
        clock=values.get("ADDAD_CLOCK") or None,
        log_level=values.get("ADDAD_LOG_LEVEL", "INFO"),
    )
