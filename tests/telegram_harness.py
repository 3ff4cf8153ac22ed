"""Run the real Telegram bot (`bot.runtime.run_telegram`, what `addad telegram` runs) against the
fake Bot API server, and talk to it as Telegram users do."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot.config import Settings
from conversations.i18n import LRI, PDI
from storage import open_store

from .chat import seed
from .fake_botapi import Call, FakeBotAPI

ROOT = Path(__file__).resolve().parent.parent


async def seeded_database(path: Path | str) -> Path | str:
    store = await open_store(path)
    await seed(store)
    await store.close()
    return path


def settings_for(api: FakeBotAPI, database: Path, **extra) -> Settings:
    """The bot's settings: the fake API, this database, and the test's clock (ADDAD_CLOCK)."""
    extra.setdefault("clock", api.clock.setting)
    return Settings(
        _env_file=None, database=str(database), telegram_token=api.token, telegram_api_url=api.base_url, **extra
    )


async def start_bot(settings: Settings, **kw) -> tuple[asyncio.Task, asyncio.Event]:
    """`run_telegram` in this event loop; returns once it serves (or raises what stopped it)."""
    from bot.runtime import run_telegram

    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_telegram(settings, stop=stop, ready=ready.set, **kw))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([task, waiter], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        task.result()
        raise AssertionError("the bot stopped before serving")
    assert ready.is_set(), "the bot did not start within 30 s"
    return task, stop


class TgUser:
    """One Telegram user in a private chat with the bot."""

    def __init__(self, api: FakeBotAPI, chat_id: int, lang: str = "fr") -> None:
        self.api, self.chat_id, self.lang = api, chat_id, lang
        self.replies: list[Call] = []

    async def _after(self, push, settle: float = 0.15, timeout: float = 10.0) -> list[Call]:
        start = len(self.api.calls)
        push()
        await self.api.wait_for(
            lambda c: c.chat_id == self.chat_id and c.method == "sendMessage", after=start, timeout=timeout
        )
        # A turn may send several messages: wait until the chat is quiet.
        seen = -1
        while seen != len(self.api.calls):
            seen = len(self.api.calls)
            await asyncio.sleep(settle)
        self.replies = [c for c in self.api.calls[start:] if c.chat_id == self.chat_id]
        return self.replies

    async def send(self, text: str) -> list[Call]:
        return await self._after(lambda: self.api.text(self.chat_id, text, lang=self.lang))

    async def share_contact(self, phone: str, own: bool = True) -> list[Call]:
        return await self._after(lambda: self.api.contact(self.chat_id, phone, own=own, lang=self.lang))

    async def send_photo(self, file_id: str, data: bytes | None = None) -> list[Call]:
        return await self._after(lambda: self.api.photo(self.chat_id, file_id, lang=self.lang, data=data))

    async def send_document(self, file_id: str, mime: str, data: bytes) -> list[Call]:
        return await self._after(lambda: self.api.document(self.chat_id, file_id, mime, lang=self.lang, data=data))

    def last_keyboard_message(self) -> Call:
        for c in reversed(self.api.calls):
            if c.chat_id == self.chat_id and c.method == "sendMessage" and c.inline_buttons():
                return c
        raise AssertionError("no inline keyboard shown")

    async def press(self, label: str) -> list[Call]:
        message = self.last_keyboard_message()
        matches = [b for b in message.inline_buttons() if label.casefold() in b["text"].casefold()]
        assert len(matches) == 1, f"no single button {label!r} in {[b['text'] for b in message.inline_buttons()]}"
        return await self._after(
            lambda: self.api.press(self.chat_id, matches[0]["callback_data"], message=message, lang=self.lang)
        )

    @property
    def text(self) -> str:
        return "\n".join(c.text for c in self.replies if c.method == "sendMessage").replace(LRI, "").replace(PDI, "")


class BotProcess:
    """`python -m bot telegram` as a separate process (for kill -9 and restart)."""

    def __init__(
        self,
        api: FakeBotAPI,
        database: Path | str,
        *args: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.env = {
            **os.environ,
            "ADDAD_DATABASE": str(database),
            "ADDAD_TELEGRAM_TOKEN": api.token,
            "ADDAD_TELEGRAM_API_URL": api.base_url,
            "ADDAD_CLOCK": api.clock.setting,
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        self.args = args
        self.proc: subprocess.Popen | None = None
        self.cwd = cwd or Path(database).parent  # (a PostgreSQL URL: the test's folder, given)

    async def start(self, api: FakeBotAPI) -> None:
        start = len(api.calls)
        self.log = open(self.cwd / "bot.log", "ab")  # noqa: SIM115 (open while the process runs)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "telegram", *self.args],
            env=self.env,
            cwd=self.cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        # Ready once the command menu is set (after getMe).
        await api.wait_for(lambda c: c.method == "setMyCommands", after=start, timeout=30)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()

    async def stop(self) -> int:
        """SIGTERM, as a service manager stops it; the event loop keeps serving the fake API meanwhile."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            while self.proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode

    def output(self) -> str:
        return (self.cwd / "bot.log").read_text(errors="replace")
