"""Issue 20's handoff leftovers: `addad handoff list|show|take|say|back|close` as typed (the same
functions as the workspace), a waiting chat closed without being taken (the customer told, in
French and Arabic, from the CLI and from the workspace), and the agent timeout and the chat
log's length as profile settings, validated."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.cli import main
from conversations import handoff
from conversations.profile import ProfileError, load_profile

from .chat import Chat
from .web_harness import add_account, serve_workspace

ONEE = Path(__file__).resolve().parents[1] / "profiles" / "onee.toml"


@pytest.fixture
async def engine(engine, database, monkeypatch):
    engine.pull_channels = frozenset({"test"})  # what the agent writes is shown at the next turn
    monkeypatch.setenv("ADDAD_DATABASE", str(database))
    monkeypatch.setenv("ADDAD_AGENT", "amina")
    return engine


async def addad(capsys, *argv: str) -> tuple[int, str, str]:
    """`addad …` as typed, off the test's loop: exit code, standard output, standard error."""
    code = await asyncio.to_thread(main, list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


async def handoff_id(engine) -> int:
    async with engine.store.snapshot() as tx:
        [h] = await tx.handoffs()
    return h.id


async def test_an_operator_takes_writes_and_hands_back_from_the_command_line_in_french(engine, capsys):
    chat = Chat(engine, sender_phone="+212612345678")
    await chat.send("bonjour")
    await chat.send("je veux parler à un conseiller, mon numéro 0612345678")
    hid = await handoff_id(engine)
    code, out, _ = await addad(capsys, "handoff", "list")
    assert code == 0
    [header, row, total] = out.splitlines()
    assert header.split() == ["id", "since", "channel", "lang", "contract", "status"]
    assert row.split() == [str(hid), "2026-11-23", "10:00", "test", "fr", "-", "waiting"]
    assert total == "1 open handoff(s); times in Africa/Casablanca"
    code, out, _ = await addad(capsys, "handoff", "take", str(hid))
    assert code == 0 and "taken by backoffice:amina" in out
    assert "customer: je veux parler à un conseiller, mon numéro 06••••••78" in out and "0612345678" not in out
    assert f"handoff {hid}: taken by backoffice:amina; the customer is told" in out
    await chat.send("allo ?")
    assert chat.text == "👤 Un conseiller a pris votre conversation : écrivez-lui ici. Le robot se met en pause."
    code, out, _ = await addad(capsys, "handoff", "say", str(hid), "Bonjour,", "je", "regarde", "votre", "dossier.")
    assert code == 0 and out.splitlines()[-1] == f"handoff {hid}: sent to the customer through the bot"
    await chat.send("merci")
    assert chat.text == "👤 Conseiller : Bonjour, je regarde votre dossier."
    # Bad input: a clear line on standard error, exit 2, nothing done.
    for argv, message in (
        (["say", str(hid), " "], "an empty message is not sent"),
        (["say", "999", "x"], "no handoff 999"),
        (["take", "douze"], "a handoff ID is a number"),
        (["close", str(hid)], f"handoff {hid} is taken by backoffice:amina: only a waiting one is closed so"),
    ):
        code, out, err = await addad(capsys, "handoff", *argv)
        assert code == 2 and message in err and "Traceback" not in err, argv
    code, out, err = await addad(capsys, "handoff", "back", str(hid))
    assert code == 0 and out.splitlines()[-1] == f"handoff {hid}: handed back to the bot; the customer is told"
    await chat.send("menu")
    assert "🤖 Le conseiller a terminé. Le robot vous répond de nouveau" in chat.text
    code, out, _ = await addad(capsys, "handoff", "list")
    assert out.splitlines()[-1] == "0 open handoff(s); times in Africa/Casablanca"
    async with engine.store.snapshot() as tx:
        actions = [(a["action"], a["actor"]) for a in await tx.audit_entries() if a["action"].startswith("handoff_")]
    assert actions == [
        ("handoff_requested", "customer"),
        ("handoff_taken", "backoffice:amina"),
        ("handoff_message", "backoffice:amina"),
        ("handoff_returned", "backoffice:amina"),
    ]


async def test_a_waiting_chat_closed_without_being_taken_from_the_cli_the_customer_told_in_arabic(engine, capsys):
    chat = Chat(engine, sender_phone="+212612345678", lang_hint="ar")
    await chat.send("السلام")
    await chat.send("بغيت نهضر مع شي واحد")
    hid = await handoff_id(engine)
    code, out, _ = await addad(capsys, "handoff", "close", str(hid))
    assert code == 0 and out.splitlines()[-1] == f"handoff {hid}: closed without being taken; the customer is told"
    await chat.send("القائمة")
    assert chat.text.startswith("👤 أُغلق طلبك للتحدث مع مستشار دون محادثة.")
    assert chat.buttons  # the bot answers again: the menu
    code, _, err = await addad(capsys, "handoff", "close", str(hid))
    assert code == 2 and f"handoff {hid} is closed" in err
    code, _, err = await addad(capsys, "handoff", "take", str(hid))
    assert code == 2 and f"handoff {hid} is closed" in err
    async with engine.store.snapshot() as tx:
        [entry] = await tx.audit_entries(action="handoff_dismissed")
    assert entry["actor"] == "backoffice:amina"
    # the customer may ask again: a new place in the queue
    await chat.send("بغيت نهضر مع شي واحد")
    assert "👤 تم إخبار أحد المستشارين" in chat.text


async def test_a_waiting_chat_closed_from_the_workspace_the_customer_told_in_french(engine):
    await add_account(engine.store, "amina", "agent")
    chat = Chat(engine, sender_phone="+212612345678")
    await chat.send("bonjour")
    await chat.send("je veux parler à un conseiller")
    hid = await handoff_id(engine)
    async with serve_workspace(engine.store, engine.clock) as served, served.client() as amina:
        await amina.sign_in("amina")
        page = await amina.get(f"/web/handoffs/{hid}")
        assert "Clore sans prendre la conversation" in page.plain()
        page = await amina.post(f"/web/handoffs/{hid}/close", {}, csrf="forged")
        assert page.status == 403
        page = await amina.post(f"/web/handoffs/{hid}/close", {})
        assert "Demande close : le client en est informé." in page.plain()
        assert "Personne n'attend de conseiller." in page.plain()
        page = await amina.get(f"/web/handoffs/{hid}")
        assert "close sans être prise" in page.plain() and "Clore sans prendre" not in page.plain()
        page = await amina.post(f"/web/handoffs/{hid}/close", {})
        assert page.status == 409 and "Cette conversation est terminée" in page.plain()
    await chat.send("bonjour")
    assert "👤 Votre demande de conseiller est close sans échange." in chat.text
    async with engine.store.snapshot() as tx:
        assert [a["actor"] for a in await tx.audit_entries(action="handoff_dismissed")] == ["web:amina"]


def profile_with(tmp_path, **settings) -> Path:
    text = ONEE.read_text(encoding="utf-8")
    for key, value in settings.items():
        old = {"agent_timeout_minutes": "agent_timeout_minutes = 30", "chat_log_lines": "chat_log_lines = 40"}[key]
        assert old in text
        text = text.replace(old, f"{key} = {value}")
    path = tmp_path / "operator.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_the_agent_timeout_and_the_chat_log_length_are_profile_settings(engine, tmp_path):
    assert load_profile().handoff.agent_timeout_minutes == 30 and load_profile().handoff.chat_log_lines == 40
    engine.profile = load_profile(profile_with(tmp_path, agent_timeout_minutes=5, chat_log_lines=3))
    chat = Chat(engine, sender_phone="+212612345678")
    await chat.send("bonjour")
    await chat.send("je veux parler à un conseiller")
    hid = await handoff_id(engine)
    async with engine.store.transaction() as tx:
        await handoff.take(tx, hid, actor="web:amina", now=engine.clock(), profile=engine.profile)
    await chat.send("un")
    await chat.send("deux")
    async with engine.store.snapshot() as tx:
        h = await tx.handoff(hid)
        lines = await handoff.conversation(tx, h, profile=engine.profile)
    assert [(line.sender, line.text) for line in lines] == [
        ("customer", "un"),
        ("bot", "👤 Un conseiller a pris votre conversation : écrivez-lui ici. Le robot se met en pause."),
        ("customer", "deux"),
    ]  # the last 3 lines only
    engine.clock.advance(minutes=4)
    await chat.send("toujours là ?")
    assert chat.replies == []  # 4 minutes: the agent still has it
    engine.clock.advance(minutes=6)
    await chat.send("menu")
    assert chat.text.startswith("🤖 Le conseiller ne répond plus pour le moment.")  # 5 minutes, not 30


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"agent_timeout_minutes": 0}, "handoff.agent_timeout_minutes: Input should be greater than or equal to 1"),
        ({"chat_log_lines": 100000}, "handoff.chat_log_lines: Input should be less than or equal to 500"),
        ({"agent_timeout_minutes": '"half an hour"'}, "handoff.agent_timeout_minutes: Input should be a valid integer"),
    ],
)
def test_bad_handoff_settings_are_refused_with_the_setting_named(tmp_path, settings, message):
    with pytest.raises(ProfileError) as refused:
        load_profile(profile_with(tmp_path, **settings))
    assert message in str(refused.value)
