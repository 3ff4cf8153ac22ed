"""Payment facilities as a customer asks for them: deferral within and beyond the policy,
instalments that add up to the centime, a second request, in French and Arabic."""

from __future__ import annotations

from datetime import date

from conversations.facilities import add_months, split_instalments
from storage import Bill

from .chat import Chat


async def linked_chat(engine, **kw) -> Chat:
    chat = Chat(engine, sender_phone="+212612345678", **kw)  # Fatima: 1000001 owes 243.17 + 218.90
    await chat.send("bonjour" if kw.get("lang_hint") != "ar" else "السلام")
    await chat.press("➕")
    await chat.send("1000001")
    await chat.no_reminders()
    return chat


def test_instalments_add_up_to_the_centime():
    lines = split_instalments(100001, 3, date(2026, 1, 31))  # 1,000.01 DH in 3
    assert [l.amount for l in lines] == [33333, 33333, 33335]  # remainder on the last line
    assert [l.due_date for l in lines] == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)]
    for total in (100, 101, 46207, 99999999, 100001):
        for months in (1, 2, 3, 6, 7, 12):
            lines = split_instalments(total, months, date(2026, 12, 31))
            assert sum(l.amount for l in lines) == total
            assert len({l.amount for l in lines[:-1]}) <= 1 and lines[-1].amount >= lines[0].amount
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)


async def test_instalment_request_in_french_with_exact_schedule(engine):
    chat = await linked_chat(engine)
    await chat.send("je voudrais payer en 3 fois")
    # 462.07 DH: months allowed by the ONEE profile for arrears under 500 DH: 3 only.
    assert "Pour quelle raison" in chat.text
    await chat.press("Perte d'emploi")
    text = chat.text
    assert "Arriérés : 2 factures, 462,07\u00a0DH" in text
    assert "• Échéance 1, le 23 décembre 2026 : 154,02\u00a0DH" in text
    assert "• Échéance 2, le 23 janvier 2027 : 154,02\u00a0DH" in text
    assert "• Échéance 3, le 23 février 2027 : 154,03\u00a0DH" in text
    assert "facture du mois (environ" in text
    await chat.press("Envoyer la demande")
    assert "Référence : IN-2026-000001" in chat.text
    async with engine.store.snapshot() as tx:
        req = await tx.request("IN-2026-000001")
    assert req.status == "pending" and req.kind == "instalment" and req.amount == 46207 and req.months == 3
    assert sum(l.amount for l in req.lines) == 46207 and req.reason == "job"
    assert req.lang == "fr" and req.channel == "test"


async def test_deferral_beyond_the_policy_is_refused_then_accepted_in_arabic(engine):
    chat = await linked_chat(engine, lang_hint="ar")
    await chat.press("تسهيلات الأداء")
    assert "فاتورتان غير مؤداتين" in chat.text
    await chat.press("الأداء لاحقا")
    await chat.send("15/03/2027")  # more than 60 days after 23 Nov 2026
    assert "لا يمكن التأجيل أكثر من 60 يوما" in chat.text
    await chat.send("البارح")
    assert "التاريخ يجب أن يكون بعد اليوم" in chat.text
    await chat.send("15 دجنبر")
    await chat.press("المرض")
    assert "قبل 15 دجنبر 2026" in chat.text
    await chat.send("واخا")  # typed yes
    assert "المرجع: DF-2026-000001" in chat.text
    async with engine.store.snapshot() as tx:
        req = await tx.request("DF-2026-000001")
    assert req.defer_until == date(2026, 12, 15) and req.reason == "illness" and req.lang == "ar"


async def test_a_second_request_asks_to_replace_the_first(engine):
    chat = await linked_chat(engine)
    await chat.press("Facilités")
    await chat.press("Payer plus tard")
    await chat.send("le 10 décembre")
    await chat.press("Autre raison")
    await chat.send("dépenses de la rentrée scolaire")
    await chat.press("Envoyer")
    assert "DF-2026-000001" in chat.text
    await chat.press("Facilités")
    assert "Vous avez déjà une demande en cours d'examen (DF-2026-000001" in chat.text
    await chat.send("non")
    assert "est conservée" in chat.text
    await chat.press("Facilités")
    await chat.send("oui")
    await chat.press("En 3 mois")
    await chat.press("Maladie")
    assert "remplacera la demande DF-2026-000001" in chat.text
    await chat.press("Envoyer")
    async with engine.store.snapshot() as tx:
        assert (await tx.request("DF-2026-000001")).status == "replaced"
        assert (await tx.request("IN-2026-000001")).status == "pending"
        assert len(await tx.requests(status="pending", contract="1000001")) == 1


async def test_no_arrears_no_facility(engine):
    chat = Chat(engine, sender_phone="+212661234567")  # Youssef: all paid
    await chat.send("bonjour")
    await chat.press("➕")
    await chat.send("1000003")
    await chat.send("facilités de paiement")
    assert "Vous n'avez pas d'arriérés" in chat.text


async def test_months_beyond_the_policy_are_explained(engine):
    async with engine.store.transaction() as tx:  # large arrears: 2,500 DH → 3, 6 or 12 months
        await tx.upsert_bill(
            Bill(
                "F-2026-08-9",
                "1000001",
                date(2026, 7, 31),
                date(2026, 8, 31),
                date(2026, 9, 5),
                date(2026, 9, 25),
                44500,
                44850,
                350,
                False,
                203793,
                0,
            )
        )
    chat = await linked_chat(engine)
    await chat.send("bghit nkhelles 3la 24 chhar")
    assert "24 mois n'est pas possible" in chat.text
    labels = [b.label for b in chat.buttons]
    assert any("En 12 mois" in l for l in labels) and any("En 6 mois" in l for l in labels)
    await chat.send("12")
    await chat.press("Maladie")
    import re

    lines = re.findall(r"^\s+• Échéance (\d+), le .* : ([\d\u202f]+,\d\d)\u00a0DH", chat.text, re.M)
    assert [int(n) for n, _ in lines] == list(range(1, 13))
    total = sum(int(a.replace("\u202f", "").replace(",", "")) for _, a in lines)
    assert total == 24317 + 21890 + 203793  # the whole arrears, to the centime
