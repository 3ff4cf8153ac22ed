"""Each journey's session data is a typed structure under the journey's name in the session's
JSON; a session saved by the code before it (prefixed keys, a conversation in flight during a
deploy) starts again at the menu instead of failing."""

from __future__ import annotations

from conversations.flow import ContractData, Field, JourneyData, take
from conversations.journeys.reading import ReadingData
from storage import SessionRecord

from .chat import START, Chat
from .test_reading import reading_chat


async def _session(engine, chat: Chat) -> SessionRecord:
    async with engine.store.snapshot() as tx:
        session = await tx.load_session(chat.channel, chat.user)
    assert session is not None
    return session


async def _save(engine, session: SessionRecord) -> None:
    async with engine.store.transaction() as tx:
        await tx.save_session(session, now=START)


async def test_a_journey_keeps_its_data_typed_under_its_name(engine):
    chat = await reading_chat(engine)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    await chat.send("45 340")
    data = (await _session(engine, chat)).data
    assert data["reading"] == {"contract": "1000001", "index": 45340}
    assert not [k for k in data if k.startswith("r_")]


def test_fields_read_none_when_absent_and_setting_none_removes_them():
    class Demo(ContractData):
        key = "demo"
        count = Field[int]()

    data: dict = {"_choices": []}
    demo = Demo(data)
    assert demo.count is None and demo.contract is None
    demo.count, demo.contract = 3, "1000001"
    assert data == {"_choices": [], "demo": {"count": 3, "contract": "1000001"}}
    assert take(demo, Demo.count) == 3 and demo.count is None
    demo.contract = None
    assert data == {"_choices": []}  # nothing gathered: no empty object left behind
    demo.count = 1
    demo.clear()
    assert data == {"_choices": []}
    assert isinstance(demo, JourneyData)


async def test_a_session_saved_in_the_old_shape_starts_again_at_the_menu(engine):
    chat = await reading_chat(engine)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    session = await _session(engine, chat)
    # As the previous code saved it: the reading's data as prefixed keys beside the engine's.
    session.state = "reading.summary"
    session.data = {"r_contract": "1000001", "r_index": 45340, "_choices": [["yes", "Confirmer"]]}
    await _save(engine, session)
    await chat.send("oui")
    assert "nous reprenons au menu" in chat.text
    session = await _session(engine, chat)
    assert session.state == "menu.main" and not [k for k in session.data if k.startswith("r_")]
    assert ReadingData(session.data).index is None
    await chat.send("je veux envoyer mon index")  # and the journey works again from the start
    assert "Pour quel compteur voulez-vous envoyer l'index ?" in chat.text


async def test_a_journey_left_in_the_old_shape_is_not_offered_back(engine):
    chat = await reading_chat(engine)
    session = await _session(engine, chat)
    paused = {"state": "reading.index", "data": {"r_contract": "1000001"}, "at": START.isoformat()}
    session.data = {"_paused": paused}
    await _save(engine, session)
    await chat.send("bonjour")
    assert "Reprendre" not in " ".join(b.label for b in chat.buttons)
    assert "_paused" not in (await _session(engine, chat)).data
