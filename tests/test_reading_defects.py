"""The meter-reading defects found by the walkthrough of issue 15, as customers meet them: a
chosen date kept or refused with its reason, the 150 kWh warning for the month still running,
absurd indexes questioned, long numbers explained, short periods not called outliers, indexes
written as on the meter, bands listed once, an index typed at the meter choice kept."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from .chat import Chat, Clock


@pytest.fixture
def clock():
    return Clock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))


async def linked(engine, lang_hint=None) -> Chat:
    """Fatima (1000001 electricity, last index 45210 on 31 October; 1000002 water, 1320), linked."""
    chat = Chat(engine, sender_phone="+212612345678", lang_hint=lang_hint)
    await chat.send("bonjour" if lang_hint != "ar" else "السلام")
    await chat.press("➕")
    await chat.send("1000001")
    return chat


async def customer_readings(engine, contract="1000001"):
    async with engine.store.snapshot() as tx:
        return [r for r in await tx.readings(contract, include_replaced=True) if r.source == "customer"]


async def send_reading(chat, opening, index, *, meter="1000001", skip="Sans photo", confirm="Confirmer"):
    await chat.send(opening)
    if any(meter in b.label for b in chat.buttons):
        await chat.press(meter)  # (a service named in the opening picks the meter itself)
    await chat.send(index)
    await chat.press(skip)
    await chat.press(confirm)


# ------------------------------------------------------------------ the chosen date
async def test_a_date_before_the_customers_own_reading_is_refused_with_its_reason_fr(engine, clock):
    chat = await linked(engine)
    await send_reading(chat, "je veux envoyer mon index", "45400")  # 1 December
    clock.advance(days=1)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    await chat.send("45420")
    await chat.press("Sans photo")
    await chat.press("Changer la date")
    await chat.send("le 30 novembre")
    assert (
        "Vous avez déjà envoyé l'index 45400 relevé le 1er décembre 2026 (référence RL-2026-000001) : "
        "ce nouvel index ne peut pas être daté d'avant."
    ) in chat.text
    assert "Vérifiez avant de confirmer" not in chat.text  # asked again, not dropped
    await chat.send("hier")
    assert "Index : 45420, relevé le 1er décembre 2026" in chat.text
    assert "remplacera l'index 45400" in chat.text
    await chat.press("Confirmer")
    rows = [(r.index_value, r.reading_date, r.status) for r in await customer_readings(engine)]
    assert rows == [(45400, date(2026, 12, 1), "replaced"), (45420, date(2026, 12, 1), "valid")]


async def test_a_date_given_with_the_index_is_kept_or_refused_aloud_darija(engine, clock):
    chat = await linked(engine, lang_hint="ar")
    await send_reading(chat, "بغيت نعطي المؤشر", "45400", skip="بدون صورة", confirm="تأكيد")
    clock.advance(days=1)
    await chat.send("bghit n3ti l'index")
    await chat.press("1000001")
    await chat.send("45420 nhar 30/11")  # before her own reading of 1 December
    await chat.press("بدون صورة")
    assert "سبق أن أرسلت المؤشر 45400 المقروء بتاريخ 1 دجنبر 2026" in chat.text
    assert "متى قرأت العداد؟" in chat.text  # the date is asked, not silently changed
    await chat.send("البارح")
    assert "المؤشر: 45420، بتاريخ 1 دجنبر 2026" in chat.text
    await chat.send("واخا")
    assert [r.reading_date for r in await customer_readings(engine) if r.status == "valid"] == [date(2026, 12, 1)]


async def test_a_backdated_reading_in_the_same_month_keeps_its_date(engine, clock):
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    chat = await linked(engine)
    await send_reading(chat, "je veux envoyer mon index", "45300")  # 23 November
    clock.advance(days=2)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    await chat.send("45330")
    await chat.press("Sans photo")
    await chat.press("Changer la date")
    await chat.send("le 24 novembre")
    assert "Index : 45330, relevé le 24 novembre 2026" in chat.text
    await chat.press("Confirmer")
    assert [r.reading_date for r in await customer_readings(engine) if r.status == "valid"] == [date(2026, 11, 24)]


# ------------------------------------------------------------------ the 150 kWh warning
async def test_on_the_first_no_warning_about_the_month_that_is_over(engine):
    chat = await linked(engine)  # 1 December
    await send_reading(chat, "je veux envoyer mon index", "45355")  # 145 kWh: 140 in November, 5 in December
    assert "novembre 2026 : 140 kWh (tarif progressif" in chat.text
    assert "décembre 2026 : 5 kWh" in chat.text
    assert "tarif supérieur" not in chat.text and "⚠️" not in chat.text


async def test_the_warning_counts_exactly_what_the_running_month_can_still_take_fr(engine, clock):
    clock.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    chat = await linked(engine)
    await send_reading(chat, "je veux envoyer mon index", "45346")  # 136 kWh, all in November
    assert (
        "⚠️ Ce mois-ci (novembre 2026), vous êtes à 136 kWh : le mois reste au tarif progressif jusqu'à 150 kWh, "
        "soit encore 14 kWh d'ici la fin du mois ; dès 151 kWh, toute la consommation du mois passe au tarif "
        "supérieur (environ 21,95\u00a0DH de plus)."
    ) in chat.text


async def test_the_warning_counts_exactly_in_arabic(engine, clock):
    clock.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    chat = await linked(engine, lang_hint="ar")
    await send_reading(chat, "بغيت نعطي المؤشر", "45346", skip="بدون صورة", confirm="تأكيد")
    assert (
        "⚠️ هذا الشهر (نونبر 2026) وصل استهلاكك إلى 136 ك.و.س: يبقى الشهر بالتسعيرة التصاعدية حتى 150 ك.و.س، "
        "أي 14 ك.و.س أخرى إلى آخر الشهر؛ وابتداء من 151 ك.و.س يُحتسب كل استهلاك الشهر بالثمن الأعلى"
    ) in chat.text


async def test_at_the_line_itself_one_more_unit_switches_the_month_arabizi(engine, clock):
    clock.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    chat = await linked(engine, lang_hint="ar")
    await send_reading(chat, "bghit nsift l'index", "45360", skip="بدون صورة", confirm="تأكيد")  # 150 kWh
    assert "نونبر 2026: 150 ك.و.س (تسعيرة تصاعدية" in chat.text
    assert (
        "⚠️ هذا الشهر (نونبر 2026) وصل استهلاكك إلى 150 ك.و.س، وهو حد التسعيرة التصاعدية: ابتداء من 151 ك.و.س "
        "يُحتسب كل استهلاك الشهر بالثمن الأعلى"
    ) in chat.text


# ------------------------------------------------------------------ after an estimated bill: the bands once
async def after_november_estimate(engine, clock, lang_hint=None) -> str:
    """November billed on an estimate of 174 kWh; on 5 December Fatima sends 45410 (200 kWh since
    the real reading of 31 October) and confirms: the confirmation's text."""
    from storage import Bill

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
        await tx.upsert_history_reading("1000001", date(2026, 11, 30), 45384, "estimated")
    clock.now = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    chat = await linked(engine, lang_hint)
    if lang_hint == "ar":
        await send_reading(chat, "bghit nsift l'index", "45410", skip="بدون صورة", confirm="تأكيد")
    else:
        await send_reading(chat, "je veux envoyer mon index", "45410")
    return chat.text


async def test_a_prebill_after_an_estimate_lists_its_bands_once_fr(engine, clock):
    text = await after_november_estimate(engine, clock)
    assert text.count("novembre 2026 : 171 kWh (tarif sélectif") == 1
    assert text.count("décembre 2026 : 29 kWh (tarif progressif") == 1
    assert text.count("171 kWh × 1,0732") == 1
    assert "Estimé : 174 kWh, facturé 228,47\u00a0DH" in text
    assert "Consommation réelle : 200 kWh, répartie sur 2 mois et calculée par tranche comme ci-dessus" in text
    assert text.index("Total estimé TTC") < text.index("Régularisation des factures estimées")


async def test_a_prebill_after_an_estimate_lists_its_bands_once_ar(engine, clock):
    text = await after_november_estimate(engine, clock, lang_hint="ar")
    assert text.count("نونبر 2026: 171 ك.و.س") == 1 and text.count("دجنبر 2026: 29 ك.و.س") == 1
    assert "الاستهلاك الحقيقي: 200 ك.و.س، موزع على" in text and "كما في التفصيل أعلاه" in text


# ------------------------------------------------------------------ an index far beyond any use
async def flagged(engine, contract="1000001"):
    return [(r.index_value, r.review, r.review_reason, r.photo_ref) for r in await customer_readings(engine, contract)]


async def test_an_absurd_index_is_not_taken_on_a_bare_yes_fr(engine):
    chat = await linked(engine)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    await chat.send("99999")  # 54,789 kWh in 31 days: ~304 × the usual 5.8 kWh/day
    assert (
        "Cela ferait 54\u202f789 kWh en 31 jours, environ 304 fois votre consommation habituelle : c'est sûrement "
        "une erreur de frappe ou de lecture. Retapez l'index (chiffres noirs seulement), ou envoyez une photo du "
        "compteur"
    ) in chat.text
    assert [b.label for b in chat.buttons] == ["✏️ Retaper l'index", "C'est bien l'index", "Annuler"]
    await chat.send("oui")
    assert "nous gardons l'index 99999, mais un agent le vérifiera avant la facturation" in chat.text
    assert "Envoyez une photo nette du compteur" in chat.text
    await chat.press("Sans photo")
    assert "🔎 Consommation inhabituelle : un agent vérifiera l'index avant la facturation." in chat.text
    await chat.press("Confirmer")
    assert "un agent la vérifiera avant la facturation" in chat.text
    assert await flagged(engine) == [(99999, True, "outlier", None)]


async def test_an_absurd_index_typed_again_goes_on_darija(engine):
    chat = await linked(engine, lang_hint="ar")
    await chat.send("بغيت نعطي المؤشر")
    await chat.press("1000001")
    await chat.send("٩٩٩٩٩")
    assert "أي حوالي 304 مرات استهلاكك المعتاد: غالبا هناك خطأ في الكتابة أو في القراءة" in chat.text
    await chat.send("45400")  # typed again: 190 kWh, ordinary
    assert "أرسل صورة واضحة للعداد" in chat.text
    await chat.press("بدون صورة")
    assert "استهلاك غير معتاد" not in chat.text
    await chat.press("تأكيد")
    assert await flagged(engine) == [(45400, False, None, None)]


async def test_an_absurd_index_proved_by_a_photo_is_kept_for_review_arabizi(engine):
    chat = await linked(engine, lang_hint="ar")
    await chat.send("bghit nsift l'index 99999")
    await chat.press("1000001")
    assert "غالبا هناك خطأ في الكتابة أو في القراءة" in chat.text
    await chat.send_photo("wa-media-77")
    assert "سيتحقق أحد أعواننا من المؤشر بهذه الصورة قبل الفوترة" in chat.text
    assert "الصورة: مرفقة" in chat.text and "🔎 استهلاك غير معتاد" in chat.text
    await chat.press("تأكيد")
    assert await flagged(engine) == [(99999, True, "outlier", "wa-media-77")]


# ------------------------------------------------------------------ too many digits; too short to tell
async def test_a_thirty_digit_number_gets_the_dial_count(engine):
    chat = await linked(engine)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    await chat.send("123456789012345678901234567890")
    assert "Votre compteur n'a que 5 chiffres : l'index ne peut pas dépasser 99999." in chat.text
    assert "Tapez seulement les chiffres" not in chat.text
    assert "Tapez l'index affiché sur le compteur" in chat.text  # asked again


async def test_too_many_digits_in_arabic_script_and_arabizi(engine):
    chat = await linked(engine, lang_hint="ar")
    await chat.send("بغيت نعطي المؤشر")
    await chat.press("1000001")
    await chat.send("٤٥٢١٠٤٥٢١٠٤٥٢١٠")
    assert "عدادك فيه 5 أرقام فقط: المؤشر لا يمكن أن يتجاوز 99999" in chat.text
    await chat.send("l'index howa 4521045210452104521")
    assert "عدادك فيه 5 أرقام فقط" in chat.text and "اكتب الأرقام الظاهرة على العداد فقط" not in chat.text
    assert await customer_readings(engine) == []


async def test_a_day_after_the_last_reading_a_cubic_metre_or_two_is_no_outlier(engine, clock):
    clock.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    chat = await linked(engine)
    await send_reading(chat, "je veux envoyer mon index", "1330", meter="1000002")  # 10 m³ in 30 days
    clock.advance(days=1)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000002")
    await chat.send("1332")  # 2 m³ in one day: 6 × a day's use, less than a week's
    assert "votre consommation habituelle" not in chat.text
    assert "Envoyez une photo nette du compteur" in chat.text
    await chat.press("Sans photo")
    assert "Consommation : 2 m³ depuis 1330 (30 novembre 2026)" in chat.text


async def test_a_day_after_the_last_reading_darija(engine, clock):
    clock.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    chat = await linked(engine, lang_hint="ar")
    await send_reading(chat, "بغيت نعطي المؤشر ديال الما", "1330", meter="1000002", skip="بدون صورة", confirm="تأكيد")
    clock.advance(days=1)
    await chat.send("bghit nsift l'index")
    await chat.press("1000002")
    await chat.send("1331")
    assert "استهلاكك المعتاد" not in chat.text and "أرسل صورة واضحة للعداد" in chat.text


async def test_a_reading_held_for_review_is_not_the_next_ones_baseline(engine, clock):
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    chat = await linked(engine)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    await chat.send("99999")
    await chat.press("C'est bien l'index")
    await chat.press("Sans photo")
    await chat.press("Confirmer")
    clock.now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    assert "Dernier index enregistré : 45210, le 31 octobre 2026." in chat.text
    await chat.send("45400")
    assert "plus petit" not in chat.text
    await chat.press("Sans photo")
    assert "Consommation : 190 kWh depuis 45210 (31 octobre 2026)" in chat.text


# ------------------------------------------------------------------ an index typed when the meter is asked
async def test_an_index_typed_at_the_meter_choice_picks_the_meter_it_fits_fr(engine):
    chat = await linked(engine)
    await chat.send("je veux envoyer mon index")
    assert "Pour quel compteur" in chat.text
    await chat.send("45300")  # 90 kWh for E-77001; 43,980 m³ for the water meter
    assert "L'index 45300 correspond au compteur E-77001 du contrat 1000001 (électricité, Casablanca)." in chat.text
    assert "Envoyez une photo nette du compteur" in chat.text
    await chat.press("Sans photo")
    assert "Index : 45300, relevé le 1er décembre 2026" in chat.text
    await chat.press("Confirmer")
    assert [r.index_value for r in await customer_readings(engine, "1000001")] == [45300]
    assert await customer_readings(engine, "1000002") == []


async def test_an_index_typed_at_the_meter_choice_darija(engine):
    chat = await linked(engine, lang_hint="ar")
    await chat.send("بغيت نعطي المؤشر")
    await chat.send("1325")  # below E-77001's 45210; 5 m³ for the water meter
    assert "المؤشر 1325 يوافق العداد W-88002" in chat.text
    await chat.press("بدون صورة")
    assert "المؤشر: 1325، بتاريخ 1 دجنبر 2026" in chat.text
    await chat.send("واخا")
    assert [r.index_value for r in await customer_readings(engine, "1000002")] == [1325]


async def test_an_index_that_fits_no_meter_is_kept_while_the_meter_is_asked_arabizi(engine):
    chat = await linked(engine, lang_hint="ar")
    await chat.send("bghit nsift l'index")
    await chat.send("45100")  # below 45210, and absurd for the water meter
    assert "حسنا، المؤشر 45100. لأي عداد هو؟" in chat.text
    assert [b.payload for b in chat.buttons][:2] == ["c:1000001", "c:1000002"]
    await chat.press("1000001")  # checked at once on that meter, not asked again
    assert "المؤشر 45100 أصغر من آخر مؤشر مسجل (45210 بتاريخ 31 أكتوبر 2026)" in chat.text
    await chat.send("45310")
    assert "أرسل صورة واضحة للعداد" in chat.text


async def test_an_index_with_the_service_named_fr(engine):
    chat = await linked(engine)
    await chat.send("je veux envoyer mon index")
    await chat.send("c'est 45300 pour l'eau")  # fits the electricity meter, but water is named: asked
    assert "L'index 45300 est noté. Pour quel compteur est-il ?" in chat.text
    assert "correspond au compteur" not in chat.text
    await chat.press("1000002")
    assert "c'est sûrement une erreur de frappe" in chat.text  # checked on the water meter
    await chat.send("1330")
    assert "Envoyez une photo nette du compteur" in chat.text


async def test_a_contract_number_typed_at_the_meter_choice_is_the_meter_not_an_index(engine):
    chat = await linked(engine)
    await chat.send("je veux envoyer mon index")
    await chat.send("1000002")
    assert "Tapez l'index affiché sur le compteur W-88002" in chat.text
    assert "est noté" not in chat.text


# ------------------------------------------------------------------ indexes as on the meter
async def test_six_dial_indexes_are_written_without_separators_fr(engine):
    chat = Chat(engine, sender_phone="+212661234567")  # Youssef: 1000003, 6 dials, 120400
    await chat.send("bonjour")
    await chat.press("➕")
    await chat.send("1000003")
    await chat.send("je veux envoyer mon index")
    assert "Dernier index enregistré : 120400, le 31 octobre 2026." in chat.text
    await chat.send("120 350")
    assert "L'index 120350 est plus petit que le dernier enregistré (120400, le 31 octobre 2026)." in chat.text
    await chat.send("1 234 567")
    assert "Votre compteur n'a que 6 chiffres : l'index ne peut pas dépasser 999999." in chat.text
    await chat.send("120.500")
    await chat.press("Sans photo")
    assert "Index : 120500, relevé le 1er décembre 2026" in chat.text
    assert "Consommation : 100 kWh depuis 120400 (31 octobre 2026)" in chat.text


async def test_six_dial_indexes_are_written_without_separators_ar(engine):
    chat = Chat(engine, sender_phone="+212661234567", lang_hint="ar")
    await chat.send("السلام")
    await chat.press("➕")
    await chat.send("1000003")
    await chat.send("بغيت نعطي المؤشر")
    assert "آخر مؤشر مسجل: 120400 بتاريخ 31 أكتوبر 2026." in chat.text
    await chat.send("120350")
    assert "المؤشر 120350 أصغر من آخر مؤشر مسجل (120400 بتاريخ 31 أكتوبر 2026)" in chat.text
    await chat.send("١٢٠٥٠٠")
    await chat.press("بدون صورة")
    assert "المؤشر: 120500، بتاريخ 1 دجنبر 2026" in chat.text and "منذ 120400" in chat.text


async def test_a_number_longer_than_every_meter_is_not_kept_as_an_index_at_the_meter_choice(engine):
    chat = await linked(engine)
    await chat.send("je veux envoyer mon index")
    await chat.send("1000003")  # another customer's contract: no meter of hers
    assert "Choisissez le compteur dans la liste." in chat.text and "est noté" not in chat.text
    await chat.press("1000001")
    assert "Tapez l'index affiché sur le compteur E-77001" in chat.text


async def test_a_photo_sent_at_the_outlier_question_proves_it_for_review(engine):
    chat = await linked(engine)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    await chat.send("46500")  # 1,290 kWh in 31 days: ~7 × the usual, a question
    assert "environ 7 fois votre consommation habituelle. L'index est-il exact ?" in chat.text
    await chat.send_photo("tg-file-46500")
    assert "Un agent vérifiera l'index avec cette photo avant la facturation." in chat.text
    assert "Photo : jointe" in chat.text
    await chat.press("Confirmer")
    assert await flagged(engine) == [(46500, True, "outlier", "tg-file-46500")]
