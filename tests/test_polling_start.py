"""A failed deleteWebhook at start is retried, not the end of polling (issue 22, found by
bench/bench_remind.py: a campaign's start slow enough to time it out left the bot sending
reminders and answering no customer)."""

from __future__ import annotations

import asyncio

from .telegram_harness import TgUser, seeded_database, settings_for, start_bot


async def test_the_bot_polls_and_answers_after_its_first_delete_webhook_failed(api, tmp_path, caplog):
    api.fail_once("deleteWebhook", status=502)  # Telegram's gateway, once
    database = await seeded_database(tmp_path / "addad.sqlite3")
    with caplog.at_level("WARNING", logger="bot.channels.telegram"):
        task, stop = await start_bot(settings_for(api, database))
        try:
            user = TgUser(api, 9601, "fr")
            await user.send("/start")
            assert "Que puis-je faire pour vous" in user.text
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
    assert "deleteWebhook failed" in caplog.text
    assert len([c for c in api.calls if c.method == "deleteWebhook"]) >= 2
