"""Meter self-reading, as customers send it: validation they understand, the photo kept, a
pre-bill band by band, replacement in the same cycle, estimates corrected, in French and Arabic."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest

from conversations.consumption import write_estimates
from storage import Bill, Contract
from storage.csvio import export_readings

from .chat import Chat, Clock, add_omar


@pytest.fixture
def clock():
    return Clock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


@pytest.fixture
async def engine(engine):
    async with engine.store.transaction() as tx:
        await add_omar(tx)
    return engine


async def reading_chat(engine, phone="+212612345678", lang_hint=None, contract=None) -> Chat:
    chat = Chat(engine, sender_phone=phone, lang_hint=lang_hint)
    await chat.send("bonjour" if lang_hint != "ar" else "السلام")
    await chat.press("➕")
    await chat.send(contract or ("1000001" if phone == "+212612345678" else "1000007"))
    await chat.no_reminders()
    return chat


async def readings(engine, contract):
    async with engine.store.snapshot() as tx:
        return await tx.readings(contract, include_replaced=True)


async def test_a_reading_with_photo_gives_a_reference_and_a_prebill(engine):
    chat = await reading_chat(engine)
    await chat.send("je veux envoyer mon index")
    assert "la prochaine période commence le 1er décembre 2026" in chat.text  # outside the 1–10 window, still accepted
    await chat.press("1000001")
    assert "Dernier index enregistré : 45210, le 31 octobre 2026." in chat.text
    await chat.send("45 340")
    assert "Envoyez une photo nette du compteur" in chat.text
    await chat.send_photo("tg-file-AgADBAAD")
    assert "Consommation : 130 kWh depuis 45210 (31 octobre 2026)" in chat.text and "Photo : jointe" in chat.text
    await chat.press("Confirmer")
    text = chat.text
    assert "Index enregistré ✅ Référence : RL-2026-000001" in text
    # 23 days, all in November: 130 kWh progressive.
    assert "novembre 2026 : 130 kWh (tarif progressif par tranche)" in text
    assert "  • 100 kWh × 0,9010 = 90,10\u00a0DH" in text
    assert "  • 30 kWh × 1,0732 = 32,20\u00a0DH" in text
    # meter rental 7.20 × 23/30 (0.77 month) = 5.54; VAT 20 %: 24.46 + 1.11 = 25.57; total 153.41
    assert "Location et entretien du compteur : 5,54\u00a0DH" in text
    assert "TVA : 25,57\u00a0DH" in text and "Total estimé TTC : 153,41\u00a0DH" in text
    [_, r] = [x for x in await readings(engine, "1000001")]
    assert (r.index_value, r.consumption, r.photo_ref, r.reference, r.channel) == (
        45340,
        130,
        "tg-file-AgADBAAD",
        "RL-2026-000001",
        "test",
    )


async def test_near_the_150_line_the_customer_is_warned(engine, clock):
    clock.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    chat = await reading_chat(engine)
    await chat.send("index 45356")  # 146 kWh in November
    await chat.press("1000001")
    await chat.press("Sans photo")
    await chat.press("Confirmer")
    assert (
        "Ce mois-ci (novembre 2026), vous êtes à 146 kWh : le mois reste au tarif progressif jusqu'à 150 kWh, "
        "soit encore 4 kWh d'ici la fin du mois ; dès 151 kWh, toute la consommation du mois passe au tarif "
        "supérieur (environ 21,95\u00a0DH de plus)."
    ) in chat.text


async def test_rollover_is_proposed_and_recorded(engine):
    chat = await reading_chat(engine, phone="+212677777777")
    await chat.press("Envoyer mon index")
    await chat.send("00080")
    assert (
        "L'index 80 est plus petit que le dernier (99950). Le compteur est-il repassé par zéro après 99999 ? "
        "Votre consommation serait alors de 130 kWh."
    ) in chat.text
    await chat.send("oui")
    await chat.press("Sans photo")
    assert "Le compteur est repassé par zéro." in chat.text and "130 kWh" in chat.text
    await chat.press("Confirmer")
    r = (await readings(engine, "1000007"))[-1]
    assert (r.index_value, r.rollover, r.consumption) == (80, True, 130)


async def test_the_contract_number_that_links_is_not_taken_for_an_index(engine):
    chat = Chat(engine, sender_phone="+212612345678")
    await chat.send("bonjour")
    await chat.send("je veux envoyer mon index")  # no contract linked yet
    await chat.send("1000001")  # links, then the reading resumes
    assert "est maintenant relié" in chat.text and "Pour quel compteur" in chat.text
    await chat.press("1000001")
    assert "Tapez l'index affiché sur le compteur" in chat.text
    assert "n'a que 5 chiffres" not in chat.text


async def test_too_many_digits_and_lower_index_are_explained(engine):
    chat = await reading_chat(engine)
    await chat.press("Envoyer mon index")
    await chat.press("1000001")
    await chat.send("123456")
    assert "Votre compteur n'a que 5 chiffres : l'index ne peut pas dépasser 99999." in chat.text
    await chat.send("45000")
    assert "L'index 45000 est plus petit que le dernier enregistré (45210, le 31 octobre 2026)." in chat.text
    await chat.send("quarante")
    assert "Tapez seulement les chiffres affichés" in chat.text
    assert len(await readings(engine, "1000001")) == 1


async def test_an_outlier_is_confirmed_and_flagged_for_review(engine):
    chat = await reading_chat(engine)
    await chat.press("Envoyer mon index")
    await chat.press("1000001")
    await chat.send("46500")  # 1,290 kWh in 23 days: ~10 × the usual 5.8 kWh/day
    assert "Cela fait 1\u202f290 kWh en 23 jours, environ 10 fois votre consommation habituelle." in chat.text
    await chat.send("non")
    assert "retapez l'index" in chat.text
    await chat.send("46500")
    await chat.press("Oui")
    await chat.press("Sans photo")
    await chat.press("Confirmer")
    assert "un agent la vérifiera avant la facturation" in chat.text
    async with engine.store.snapshot() as tx:
        out = io.StringIO()
        await export_readings(tx, out)
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert (row["index"], row["review"], row["review_reason"], row["consumption"]) == ("46500", "1", "outlier", "1290")


async def test_a_typed_request_for_something_else_leaves_the_meter_choice(engine):
    chat = await reading_chat(engine)  # Fatima has two meters: which one?
    await chat.press("Envoyer mon index")
    assert "Pour quel compteur" in chat.text
    await chat.send("combien je dois ?")
    assert "Choisissez le compteur dans la liste" not in chat.text
    assert "impayée" in chat.text
    await chat.send("je veux envoyer mon index")
    assert "Pour quel compteur" in chat.text
    await chat.send("je sais pas")  # not a request: the question stands
    assert "Choisissez le compteur dans la liste" in chat.text


async def test_arabic_says_how_many_times_the_usual_use_with_the_right_plural(engine):
    chat = await reading_chat(engine, lang_hint="ar")
    await chat.send("بغيت نعطي الرقم ديال العداد")
    await chat.press("1000001")
    await chat.send("47210")  # 2,000 kWh in 23 days: ~15 × the usual (11 and more: "مرة")
    assert "أي حوالي 15 مرة استهلاكك المعتاد" in chat.text
    await chat.send("لا")
    await chat.send("45750")  # 540 kWh: ~4 × the usual (3 to 10: "مرات")
    assert "أي حوالي 4 مرات استهلاكك المعتاد" in chat.text


async def test_dates_backdated_future_and_before_the_last_reading(engine):
    chat = await reading_chat(engine)
    await chat.press("Envoyer mon index")
    await chat.press("1000001")
    await chat.send("45300")
    await chat.press("Sans photo")
    await chat.press("Changer la date")
    await chat.send("demain")
    assert "ne peut pas être dans le futur" in chat.text
    await chat.send("le 3 octobre")
    assert "ne peut pas être antérieure au dernier relevé (31 octobre 2026)" in chat.text
    await chat.send("hier")
    assert "Index : 45300, relevé le 22 novembre 2026" in chat.text
    await chat.press("Confirmer")
    assert (await readings(engine, "1000001"))[-1].reading_date == date(2026, 11, 22)


async def test_a_second_reading_in_the_cycle_replaces_the_first(engine):
    chat = await reading_chat(engine)
    for index in ("45300", "45310"):
        await chat.press("Envoyer mon index")
        await chat.press("1000001")
        await chat.send(index)
        await chat.press("Sans photo")
        if index == "45310":
            assert "remplacera l'index 45300 envoyé le 23 novembre 2026 (référence RL-2026-000001)" in chat.text
            # measured from the last real reading, not from the reading it replaces
            assert "Consommation : 100 kWh depuis 45210 (31 octobre 2026)" in chat.text
        await chat.press("Confirmer")
    rows = [
        (r.index_value, r.status, r.consumption) for r in await readings(engine, "1000001") if r.source == "customer"
    ]
    assert rows == [(45300, "replaced", 90), (45310, "valid", 100)]


async def test_arabic_reading_with_arabic_indic_digits_and_darija_date(engine):
    chat = await reading_chat(engine, lang_hint="ar")
    await chat.send("بغيت نعطي الرقم ديال العداد")
    await chat.press("1000001")
    await chat.send("٤٥ ٣٤٠")
    await chat.press("بدون صورة")
    await chat.press("تغيير التاريخ")
    await chat.send("البارح")
    assert "المؤشر: 45340، بتاريخ 22 نونبر 2026" in chat.text
    await chat.send("واخا")
    assert "تم تسجيل المؤشر ✅ المرجع: RL-2026-000001" in chat.text
    assert "نونبر 2026: 130 ك.و.س" in chat.text
    assert "\u2066RL-2026-000001\u2069" in "\n".join(r.text for r in chat.replies)  # kept left-to-right


async def reading_after_november_estimate(engine, clock) -> str:
    """November was billed on an estimate of 174 kWh (228,47 DH); on 5 December Fatima sends
    45410 for 1000001, 200 kWh since the last real reading (31 October), and confirms. The
    confirmation's text."""
    async with engine.store.transaction() as tx:
        await tx.upsert_bill(
            Bill(
                "F-2026-11-1",
                "1000001",
                date(2026, 10, 31),
                date(2026, 11, 30),
                date(2026, 12, 2),
                date(2026, 12, 22),
                45210,
                45384,
                174,
                True,
                22847,
                0,
            )
        )
    clock.now = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    chat = await reading_chat(engine)
    await chat.press("Envoyer mon index")
    await chat.press("1000001")
    await chat.send("45410")
    await chat.press("Sans photo")
    await chat.press("Confirmer")
    return chat.text


async def test_estimate_then_customer_reading_shows_the_correction_per_month(engine, clock):
    async with engine.store.transaction() as tx:
        run = await write_estimates(tx, date(2026, 11, 30))
        assert ("1000001", 45210 + 174, 174) in run.written  # 30 days × 5.8 kWh/day
        assert "1000007" in [c for c, _, _ in run.written]
        again = await write_estimates(tx, date(2026, 11, 30))
        assert again.written == []  # one estimate per cycle
    text = await reading_after_november_estimate(engine, clock)
    assert "Régularisation des factures estimées" in text
    assert "Estimé : 174 kWh, facturé 228,47\u00a0DH" in text
    # 200 kWh over 35 days: November 30 days → 171.43, December 5 → 28.57 → 171 + 29
    assert "Consommation réelle : 200 kWh, répartie sur 2 mois" in text
    assert "novembre 2026 : 171 kWh (tarif sélectif" in text and "décembre 2026 : 29 kWh (tarif progressif" in text
    assert "Reste à payer" in text or "En votre faveur" in text


async def test_estimates_imported_without_their_consumption_are_corrected_by_their_index_step(engine, clock):
    # The billing system's history (readings.csv) gives an estimate's index only: 45384 on
    # 30 November after the actual 45210 of 31 October is 174 kWh estimated, not 0.
    async with engine.store.transaction() as tx:
        await tx.upsert_history_reading("1000001", date(2026, 11, 30), 45384, "estimated")
    text = await reading_after_november_estimate(engine, clock)
    assert "Estimé : 174 kWh, facturé 228,47\u00a0DH" in text
    assert "Consommation réelle : 200 kWh, répartie sur 2 mois" in text


async def test_after_years_of_estimates_the_reading_counts_from_the_last_real_one(engine):
    # The meter reader last came on 30 April 2024; since then 30 monthly estimates of 100 kWh,
    # more than the recent readings a turn looks at first.
    async with engine.store.transaction() as tx:
        await tx.upsert_contract(
            Contract(
                "1000009",
                "electricity",
                "Hind Alaoui",
                "+212699999999",
                "fr",
                "Fès",
                "E-9",
                "postpaid",
                6,
                30000,
                date(2024, 4, 30),
                "BT-RES",
                False,
            )
        )
        day, index = date(2024, 4, 30), 30000
        for _ in range(30):
            nxt = (day.replace(day=1) + timedelta(days=62)).replace(day=1) - timedelta(days=1)  # next month's end
            await tx.add_estimated_reading(
                "1000009", nxt, index + 100, consumption=100, previous_index=index, previous_date=day, details={}
            )
            day, index = nxt, index + 100
    chat = await reading_chat(engine, phone="+212699999999", contract="1000009")
    await chat.press("Envoyer mon index")
    assert "Dernier index enregistré : 30000, le 30 avril 2024." in chat.text
    await chat.send("34100")
    await chat.press("Sans photo")
    assert "Consommation : 4\u202f100 kWh depuis 30000 (30 avril 2024)" in chat.text
    await chat.press("Confirmer")
    assert "Estimé : 3\u202f000 kWh" in chat.text  # all 30 estimates corrected


async def test_a_reading_after_years_of_estimates_reads_the_history_since_the_last_real_one_only(engine, monkeypatch):
    # Ten years of monthly meter-reader visits up to 30 April 2024, then 30 monthly estimates: the
    # turns look back past the estimates to the last real reading, never through the ten years.
    from storage.sqlite.repositories import SqliteReadings

    async with engine.store.transaction() as tx:
        await tx.upsert_contract(
            Contract(
                "1000009",
                "electricity",
                "Hind Alaoui",
                "+212699999999",
                "fr",
                "Fès",
                "E-9",
                "postpaid",
                6,
                30000,
                date(2024, 4, 30),
                "BT-RES",
                False,
            )
        )
        for k in range(120, 0, -1):
            months = 2024 * 12 + 3 - k  # k months before April 2024
            month = date(months // 12, months % 12 + 1, 28)
            await tx.upsert_history_reading("1000009", month, 30000 - 100 * k, "actual")
        day, index = date(2024, 4, 30), 30000
        for _ in range(30):
            nxt = (day.replace(day=1) + timedelta(days=62)).replace(day=1) - timedelta(days=1)
            await tx.add_estimated_reading(
                "1000009", nxt, index + 100, consumption=100, previous_index=index, previous_date=day, details={}
            )
            day, index = nxt, index + 100
        assert len(await tx.readings("1000009")) == 120 + 1 + 30  # the visits, the contract's last index, estimates
    sizes: list[int] = []
    real = SqliteReadings.readings

    async def counted(self, *args, **kw):
        found = await real(self, *args, **kw)
        sizes.append(len(found))
        return found

    monkeypatch.setattr(SqliteReadings, "readings", counted)
    chat = await reading_chat(engine, phone="+212699999999", contract="1000009")
    await chat.press("Envoyer mon index")
    assert "Dernier index enregistré : 30000, le 30 avril 2024." in chat.text
    await chat.send("34100")
    await chat.press("Sans photo")
    assert "Consommation : 4\u202f100 kWh depuis 30000 (30 avril 2024)" in chat.text
    await chat.press("Confirmer")
    assert "Estimé : 3\u202f000 kWh" in chat.text  # all 30 estimates corrected
    assert sizes and max(sizes) <= 32  # the 30 estimates and the real readings they follow, at most
