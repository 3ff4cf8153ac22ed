"""Balance and "how was this bill computed", as a customer reads them."""

from __future__ import annotations

import re
from datetime import date

from conversations.profile import load_profile
from conversations.tariff import prebill
from storage import Bill

from .chat import Chat


async def balance(engine, lang: str) -> Chat:
    chat = Chat(engine, sender_phone="+212612345678", lang_hint=lang)
    await chat.send("bonjour" if lang == "fr" else "السلام")
    await chat.send("combien je dois" if lang == "fr" else "شحال خاصني نخلص")
    await chat.send("1000001")  # linking by the vouched phone, then the balance
    return chat


async def test_balance_of_two_contracts_with_last_payment_in_french(engine):
    chat = await balance(engine, "fr")
    text = chat.text
    assert "contrat 1000001 (électricité, Casablanca) : 2 factures impayées" in text
    assert "• septembre 2026 : 243,17\u00a0DH, échue depuis le 25 octobre 2026 (consommation estimée)" in text
    # Each unpaid bill's reference, under its line: what a bank app or Fatourati asks for.
    assert (
        "échue depuis le 25 octobre 2026 (consommation estimée)\n  Référence de la facture : F-2026-09-1\n"
        "• octobre 2026 : 218,90\u00a0DH, à payer avant le 25 novembre 2026 (selon relevé du compteur)\n"
        "  Référence de la facture : F-2026-10-1\n"
    ) in text
    assert "Aucun paiement enregistré" in text  # 1000001 has paid nothing
    assert "contrat 1000002 (eau, Casablanca) : aucune facture impayée" in text
    # bills.csv has no payment date: the bill the payment is on is what is known, and what is said.
    assert "Dernier paiement enregistré : 64,75\u00a0DH, sur la facture d'octobre 2026" in text
    assert "Total à payer : 462,07\u00a0DH" in text
    labels = [b.label for b in chat.buttons]
    # Every bill that can be explained is offered, with its contract when there are several.
    assert labels == ["📄 oct. 2026 · 1000001", "📄 sept. 2026 · 1000001", "📄 oct. 2026 · 1000002", "Menu"]


async def test_an_estimated_bill_explained_then_the_real_index_sent(engine):
    chat = await balance(engine, "fr")
    await chat.press("sept. 2026")
    text = chat.text
    assert "Facture F-2026-09-1" in text
    assert "Période : du 31 août 2026 au 30 septembre 2026" in text
    assert "Index : 44850 → 45030 (consommation estimée)" in text
    assert "Consommation : 180 kWh" in text
    # The bands come from the profile's tariff: the same figures as the tariff engine.
    bt = load_profile().tariff("BT-RES")
    computed = prebill(bt, date(2026, 8, 31), date(2026, 9, 30), 180)
    assert len(computed.months) == 1 and computed.months[0].rule_applied == "selective"
    assert "180 kWh × 1,0732 = 193,18\u00a0DH" in text
    assert re.search(r"TVA : \d+,\d\d\u00a0DH", text)
    total = f"{computed.total_ttc // 100},{computed.total_ttc % 100:02d}"
    assert f"Total calculé TTC : {total}\u00a0DH" in text
    assert "Montant facturé : 243,17\u00a0DH · payé : 0,00\u00a0DH · reste à payer : 243,17\u00a0DH" in text
    assert "diffère de" in text  # the seeded bill is not the profile's price: said, not hidden
    assert "Cette facture a été estimée" in text and "l'index 45030 n'a pas été relevé" in text
    await chat.press("Oui")
    # Fatima has two postpaid contracts: the estimated bill's contract is taken, not asked again.
    assert "Pour quel compteur" not in chat.text
    assert "E-77001" in chat.text
    await chat.send("45300")
    assert "photo nette du compteur" in chat.text  # the reading journey goes on as usual


async def test_a_read_bill_explained_in_arabic_and_declining_the_offer(engine):
    chat = await balance(engine, "ar")
    assert "  مرجع الفاتورة: F-2026-09-1\n" in chat.text and "  مرجع الفاتورة: F-2026-10-1\n" in chat.text
    assert "آخر أداء مسجل: 64,75 درهم، على فاتورة أكتوبر 2026" in chat.text and "لا يوجد أي أداء مسجل" in chat.text
    await chat.press("شتنبر 2026")
    assert "الفاتورة F-2026-09-1" in chat.text and "هذه الفاتورة تقديرية" in chat.text
    await chat.press("لا")
    assert "يمكنك إرسال مؤشر العداد في أي وقت" in chat.text
    await chat.no_reminders()  # that journey over, the reminders question owed since the link
    await chat.press("فواتيري")
    await chat.press("2026 · \u20661000002")
    assert "الفاتورة F-2026-10-2" in chat.text and "الاستهلاك: 10 م³" in chat.text
    assert "تقديرية" not in chat.text


async def test_a_bill_computed_at_the_profile_price_shows_no_difference(engine):
    bt = load_profile().tariff("BT-RES")
    exact = prebill(bt, date(2026, 9, 30), date(2026, 10, 31), 95).total_ttc
    async with engine.store.transaction() as tx:
        await tx.upsert_bill(
            Bill(
                "F-2026-10-3",
                "1000003",
                date(2026, 9, 30),
                date(2026, 10, 31),
                date(2026, 11, 5),
                date(2026, 11, 25),
                120305,
                120400,
                95,
                False,
                exact,
                0,
            )
        )
    chat = Chat(engine, sender_phone="+212661234567")
    await chat.send("bonjour")
    await chat.send("mes factures")
    await chat.send("1000003")
    await chat.press("octobre 2026")
    assert "Consommation : 95 kWh" in chat.text
    assert "tarif progressif" in chat.text
    assert "diffère" not in chat.text


async def test_typing_another_request_at_the_bill_choice_starts_it(engine):
    chat = await balance(engine, "fr")
    await chat.send("je veux payer en plusieurs fois")
    assert "2 factures impayées, soit 462,07\u00a0DH" in chat.text and "Que préférez-vous" in chat.text


async def test_a_forged_bill_button_shows_nothing(engine):
    chat = await balance(engine, "fr")
    await chat.press_payload("bill:7")
    assert "Ce bouton n'est plus valable" in chat.text and "Période :" not in chat.text
