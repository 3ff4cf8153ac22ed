"""End to end on each channel: a customer who gives everything in the first message, leaves the
journey for the balance and comes back to finish it (issue 15)."""

from __future__ import annotations

import sqlite3

from .telegram_harness import TgUser
from .test_telegram import bot  # noqa: F401  (the fixture: `addad telegram` against the fake Bot API)
from .test_whatsapp import FATIMA, graph, user, wa  # noqa: F401  (the fixtures: `addad whatsapp`, fake Graph API)


def customer_readings(database) -> list[tuple[str, int]]:
    con = sqlite3.connect(database)
    try:
        return con.execute("SELECT contract, index_value FROM readings WHERE source='customer'").fetchall()
    finally:
        con.close()


async def test_telegram_french_index_in_the_first_message_balance_midway_then_finished(api, bot):
    customer = TgUser(api, 2001, "fr")
    await customer.send("Bonjour, je voudrais envoyer mon index d'électricité : 45400")
    assert "reliez d'abord votre contrat" in customer.text
    await customer.send("1000001")
    await customer.share_contact("+212612345678")
    assert "est maintenant relié" in customer.text
    assert "photo" in customer.text.lower()  # the index was not asked again
    await customer.press("Sans photo")
    assert "Index : 45400" in customer.text
    await customer.send("au fait, combien je dois ?")
    assert "Total à payer" in customer.text
    assert "Votre index 45400 n'est pas encore envoyé" in customer.text
    await customer.press("Reprendre")
    assert "Index : 45400" in customer.text
    await customer.press("Confirmer")
    assert "Index enregistré ✅ Référence : RL-" in customer.text
    assert customer_readings(bot) == [("1000001", 45400)]


async def test_whatsapp_darija_index_in_the_first_message_balance_midway_then_finished(wa, graph):
    fatima = user(wa, graph, FATIMA)
    await fatima.send("salam, bghit nsift l'index dyal do 45400")
    assert "رقم العقد" in fatima.text  # linking first; the sender's number is the proof
    await fatima.send("1000001")
    assert "مربوط" in fatima.text and "صورة" in fatima.text  # linked, and straight to the photo step
    await fatima.tap("بدون صورة")
    assert "45400" in fatima.text
    await fatima.send("chhal khassni nkhelles")
    assert "المبلغ الإجمالي" in fatima.text and "45400" in fatima.text  # the balance, and the reading offered back
    await fatima.send("نكمل")  # (the long balance came as text with numbered choices)
    await fatima.tap("تأكيد")
    assert "RL-" in fatima.text
    assert customer_readings(wa[2]) == [("1000001", 45400)]
