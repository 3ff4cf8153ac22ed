"""Configuration from the environment (and a `.env` file in the working directory), per SPEC.md."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.clock import Clock, parse_clock


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ADDAD_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database: str = "addad.sqlite3"
    operator: str | None = None  # operator profile TOML; None = the bundled ONEE profile
    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_webhook_secret: SecretStr | None = None
    whatsapp_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_api_url: str = "https://graph.facebook.com/v21.0"
    web_secret: SecretStr | None = None  # the workspace's cookie key; None: generated once, kept in the database
    media_dir: str | None = None  # meter photos (content-addressed files); None: media/ beside the database
    ocr: str | None = None  # ADDAD_OCR: `off`, or `on` (the default when the `ocr` extra is installed)
    # Not in SPEC.md's table (internal tuning, safe defaults):
    session_idle_minutes: int = 30
    log_level: str = "INFO"
    telegram_rate_limit: float = 30.0  # messages/s across all chats (Telegram's broadcast limit); 0 = off
    # Webhooks (bot/channels/webhook.py): a body above this is refused (413) before its signature is
    # checked (a real Meta or Telegram delivery is a few KB); at most this many bodies read at once (503).
    webhook_max_body: int = 256 * 1024
    webhook_max_reads: int = 32
    webhook_read_timeout: float = 10.0  # seconds for a body to arrive (408 after)
    # A meter photo larger than this (declared by the channel, or found while downloading) is refused.
    media_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    # Per-chat flood limit (bot/channels/flood.py): a chat may send `flood_burst` messages at once,
    # then `flood_rate` a second; the rest are kept, not run, with one notice. 0 = off.
    flood_burst: int = 10
    flood_rate: float = 1.0
    # Testing and demos only: the process's "now" (storage/clock.py parse_clock): an instant that
    # then runs at real speed, or `file:PATH` holding one (rewrite the file to move time). Unset:
    # the system clock.
    clock: str | None = None

    def media_path(self) -> Path:
        """ADDAD_MEDIA_DIR, or `media/` beside the SQLite database (in the working folder with a
        database server's URL: docs/deploy.md says to set ADDAD_MEDIA_DIR there)."""
        if self.media_dir:
            return Path(self.media_dir).expanduser().resolve()
        if self.database.lower().startswith(("postgresql://", "postgres://")):
            return Path("media").resolve()
        return Path(self.database.removeprefix("sqlite://")).expanduser().resolve().parent / "media"

    def make_clock(self) -> Clock:
        """The process's one clock; ClockError (one line) for a value it cannot read."""
        return parse_clock(self.clock)
