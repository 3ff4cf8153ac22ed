"""Memory flat while a campaign is sent (issue 22): the reminder lane remembers a chat only while
its "one a second per chat" runs, so what it holds is bounded by the rate, not by the number of
distinct customers reached (bench/README.md "A whole campaign" shows the process's RSS); and a
reminder rate that would make replies wait behind reminders is said at start."""

from __future__ import annotations

import asyncio
import itertools

from conversations.reminders import Lane


async def test_the_lane_holds_only_the_chats_whose_second_runs_after_thousands_of_distinct_chats():
    # 4,000 distinct chats at 8,000 a second, each held 20 ms: about 160 at any time.
    lane = Lane(rate=8000, per_chat=0.02)
    bound = 2 * 8000 * 0.02
    most = 0
    for i in range(4000):
        await lane.wait("telegram", f"chat{i}")
        most = max(most, len(lane))
    assert most <= bound  # not 4,000: the chats reached are forgotten once their second is over
    await asyncio.sleep(0.05)
    await lane.wait("whatsapp", "someone")
    await lane.wait("telegram", "last")
    assert len(lane) <= 2  # after a pause, only the chats just served


async def test_a_chat_sent_to_again_still_waits_its_second_and_keeps_its_place_once():
    lane = Lane(rate=1000, per_chat=0.2)
    loop = asyncio.get_running_loop()
    seen: list[float] = []
    for i in itertools.chain(range(5), [0]):
        await lane.wait("telegram", f"c{i}")
        seen.append(loop.time())
    assert seen[-1] - seen[0] >= 0.2 - 0.01  # c0 again: a second (here 0.2 s) after its first
    assert len(lane) <= 6  # c0 remembered once


async def test_a_reminder_rate_not_below_the_telegram_limit_is_warned_at_start(engine, caplog):
    # Replies share PTB's rate limiter with reminders: at or above it they wait behind them.
    from bot.config import Settings
    from bot.runtime import _telegram
    from conversations.dispatch import Dispatcher

    for limit, warned in ((15.0, True), (30.0, False)):
        settings = Settings(
            _env_file=None, telegram_token="1:T", telegram_api_url="http://127.0.0.1:9/bot", telegram_rate_limit=limit
        )
        caplog.clear()
        with caplog.at_level("WARNING", logger="bot.runtime"):
            _telegram(settings, None)(engine, Dispatcher(engine.store, engine.profile, []))
        assert ("reminders' rate 20/s is not below the Telegram limit 15/s" in caplog.text) is warned
