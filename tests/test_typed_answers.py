"""Customers answer in their own words where the bot offers choices, and link a contract whose
number they do not know: through the engine, in French, Darija (both scripts) and Arabic."""

from __future__ import annotations

from datetime import date

import pytest

from conversations.understanding import parse_no_photo, parse_ordinal, parse_service, parse_yes_no
from storage import Bill, Contract

from .chat import Chat, add_omar


@pytest.fixture
async def engine(engine):
    async with engine.store.transaction() as tx:
        await add_omar(tx)
    return engine


FATIMA = "+212612345678"


async def _links(engine, chat) -> list[str]:
    async with engine.store.snapshot() as tx:
        return sorted(c.contract for c in await tx.linked_contracts(chat.channel, chat.user))


async def _linked_chat(engine, phone=FATIMA, lang_hint=None) -> Chat:
    chat = Chat(engine, sender_phone=phone, lang_hint=lang_hint)
    await chat.send("السلام" if lang_hint == "ar" else "bonjour")
    await chat.press("➕")
    await chat.send({FATIMA: "1000001", "+212677777777": "1000007"}[phone])
    await chat.no_reminders()
    return chat


def _labels(chat) -> list[str]:
    return [b.label.replace("\u2066", "").replace("\u2069", "") for b in chat.buttons]


# ---------------------------------------------------------------- linking without the contract number
async def test_whatsapp_customer_without_the_number_picks_a_masked_contract_by_service_word(engine):
    chat = Chat(engine, channel="whatsapp", sender_phone=FATIMA)  # the WhatsApp sender is vouched
    await chat.send("bonjour")
    await chat.send("combien je dois ?")
    assert "Envoyez votre numéro de contrat" in chat.text
    await chat.send("je ne connais pas mon numéro de contrat")
    assert "Voici les contrats enregistrés à votre numéro de téléphone" in chat.text
    assert _labels(chat) == ["•••0001 (électricité, Casablanca)", "•••0002 (eau, Casablanca)", "Annuler"]
    assert "1000001" not in chat.text + " ".join(_labels(chat))  # nothing copyable before the pick
    await chat.send("eau")
    assert "Le contrat 1000002 (eau, Casablanca) est maintenant relié" in chat.text
    assert "Total à payer : 462,07" in chat.text  # the balance that was asked for
    assert await _links(engine, chat) == ["1000001", "1000002"]
    async with engine.store.snapshot() as tx:
        ok = await tx.audit_entries(action="link_ok")
    assert {(a["contract"], a["details"]["method"]) for a in ok} == {("1000001", "phone"), ("1000002", "phone")}


@pytest.mark.parametrize(
    "said",
    [
        "je ne connais pas mon numéro de contrat",
        "ma3reftch numéro dyal lcontrat",
        "ما عندي رقم العقد",
        "fin nlqa numéro de contrat ?",
        "j'ai perdu ma facture",
        "ما لقيتش رقم العقد",
        "wach kayn chi tariqa bla numéro",
    ],
)
async def test_not_knowing_the_number_at_the_contract_question_does_not_loop(engine, said):
    chat = Chat(engine, sender_phone=FATIMA)
    await chat.send("bonjour")
    await chat.send("je veux payer ma facture")
    await chat.send(said)
    assert "6 à 10 chiffres" not in chat.text and "رقم العقد يتكون" not in chat.text
    assert "•••0001" in " ".join(_labels(chat))


async def test_darija_arabizi_without_the_number_picks_by_ordinal(engine):
    chat = Chat(engine, sender_phone=FATIMA, lang_hint="ar")  # console --phone
    await chat.send("salam")
    await chat.press("➕")
    await chat.send("ma3reftch numéro dyal lcontrat")
    assert "هذه هي العقود المسجلة برقم هاتفك" in chat.text
    await chat.send("lowel")
    assert "تم ✅ العقد 1000001 (الكهرباء، الدار البيضاء) مربوط الآن" in chat.text.replace("\u2066", "")


async def test_telegram_customer_shares_own_contact_then_picks_by_arabic_service_word(engine):
    chat = Chat(engine, channel="telegram", lang_hint="ar", contact_request=True)
    await chat.send("السلام")
    await chat.send("شحال خاصني نخلص")
    await chat.send("ما عندي رقم العقد")
    assert "شارك رقم هاتفك بالزر أسفله" in chat.text
    assert "اتصل بنا على 080 200 77 77" in chat.text
    share = [b for b in chat.buttons if b.request == "contact"]
    assert len(share) == 1 and chat.replies[-1].ask == "contact"
    await chat.share_contact("+212612345678")
    assert "هذه هي العقود المسجلة برقم هاتفك" in chat.text
    await chat.send("الضو")
    assert "العقد 1000001 (الكهرباء، الدار البيضاء) مربوط الآن" in chat.text
    assert await _links(engine, chat) == ["1000001", "1000002"]


async def test_someone_elses_contact_lists_nothing_and_counts_as_a_failure(engine):
    chat = Chat(engine, channel="telegram", contact_request=True)
    await chat.send("bonjour")
    await chat.press("➕")
    await chat.press("Je ne connais pas")
    await chat.share_contact("+212612345678", own=False)
    assert "Merci de partager votre propre numéro" in chat.text
    assert "•••" not in chat.text + " ".join(_labels(chat))
    async with engine.store.snapshot() as tx:
        assert [a["details"]["reason"] for a in await tx.audit_entries(action="link_failed")] == ["contact_not_own"]
    assert await _links(engine, chat) == []


async def test_without_a_vouched_phone_the_bot_says_where_the_number_is_and_lists_nothing(engine):
    chat = Chat(engine)  # a console without --phone
    await chat.send("bonjour")
    await chat.send("chhal khassni nkhelles")
    await chat.send("fin nlqa numéro de contrat ?")
    assert "imprimé en haut de votre facture" in chat.text and "appelez le 080 200 77 77" in chat.text
    await chat.send("mon numéro c'est le 06 12 34 56 78")  # a typed phone proves nothing
    assert "pas pour un numéro tapé" in chat.text
    assert "•••" not in chat.text + " ".join(_labels(chat)) and await _links(engine, chat) == []
    await chat.send("1000003")  # found it on the bill: the usual route
    assert "choisissez une méthode" in chat.text


async def test_a_forged_pick_of_a_contract_not_on_the_phone_links_nothing(engine):
    chat = Chat(engine, sender_phone=FATIMA)
    await chat.send("bonjour")
    await chat.press("➕")
    await chat.press("Je ne connais pas")
    await chat.press_payload("c:1000003")  # Youssef's contract
    assert await _links(engine, chat) == []
    assert "Youssef" not in chat.text and "1000003" not in chat.text


async def test_prepaid_customer_is_not_asked_for_the_number_on_a_bill(engine):
    chat = Chat(engine, sender_phone="+212655555555")
    await chat.send("bonjour")
    await chat.send("je veux une avance sur mon compteur prépayé")
    assert "reçus de recharge" in chat.text and "facture" not in chat.text
    await chat.send("12")
    assert "reçus de recharge" in chat.text and "facture" not in chat.text
    ar = Chat(engine, user="u-ar", lang_hint="ar")
    await ar.send("السلام")
    await ar.send("بغيت نشارجي الكونطور")
    await ar.send("ما عرفتش رقم العقد")
    assert "وصولات التعبئة" in ar.text and "الفاتورة" not in ar.text


# ---------------------------------------------------------------- typed answers to offered choices
@pytest.mark.parametrize(
    "typed, meter",
    [
        ("do", "E-77001"),
        ("d'do", "E-77001"),
        ("l'ma", "W-88002"),
        ("trisinti", "E-77001"),
        ("lma 3afak", "W-88002"),
        ("الضو", "E-77001"),
        ("الما", "W-88002"),
        ("l'électricité", "E-77001"),
        ("celui de l'eau", "W-88002"),
        ("1000002", "W-88002"),
        ("0002", "W-88002"),
        ("88002", "W-88002"),
        ("le deuxième", "W-88002"),
        ("التاني", "W-88002"),
        ("lowel", "E-77001"),
        ("le premier", "E-77001"),
    ],
)
async def test_the_meter_is_picked_by_service_word_number_or_ordinal(engine, typed, meter):
    chat = await _linked_chat(engine)
    await chat.send("bghit nsift l'index")
    assert "Pour quel compteur" in chat.text
    await chat.send(typed)
    assert f"Tapez l'index affiché sur le compteur {meter}" in chat.text


@pytest.mark.parametrize(
    "request_, reply",
    [
        ("combien je dois pour l'eau ?", "aucune facture impayée"),
        ("chhal khassni nkhelles f lma", "aucune facture impayée"),
        ("bghit nsift l'index dyal lma", "Tapez l'index affiché sur le compteur W-88002"),
    ],
)
async def test_a_request_naming_a_service_at_the_meter_choice_is_a_request(engine, request_, reply):
    chat = await _linked_chat(engine)
    await chat.send("nsift l'index")
    assert "Pour quel compteur" in chat.text
    await chat.send(request_)
    assert reply in chat.text


@pytest.mark.parametrize("typed", ["le deuxième", "التاني", "tani"])
async def test_an_ordinal_at_the_menu_is_that_entry(engine, typed):
    chat = await _linked_chat(engine)
    await chat.send(typed)  # 2nd entry: bills and balance
    assert "Total à payer : 462,07" in chat.text


async def test_two_meters_of_the_same_service_are_not_guessed(engine):
    async with engine.store.transaction() as tx:
        await tx.upsert_contract(
            Contract(
                "1000004",
                "water",
                "Fatima Zahra Bennani",
                FATIMA,
                "ar",
                "Casablanca",
                "W-88004",
                "postpaid",
                5,
                900,
                date(2026, 10, 31),
                "EAU-RES",
                False,
            )
        )
    chat = await _linked_chat(engine)
    await chat.send("nsift l'index")
    await chat.send("lma")
    assert "Choisissez le compteur dans la liste." in chat.text
    await chat.send("88004")
    assert "Tapez l'index affiché sur le compteur W-88004" in chat.text


@pytest.mark.parametrize("yes", ["iyeh", "ah wakha", "واخا", "ewa", "oui bien sûr"])
async def test_rollover_yes_in_darija_arabizi_and_french(engine, yes):
    chat = await _linked_chat(engine, phone="+212677777777")
    await chat.press("Envoyer mon index")
    await chat.send("00080")
    assert "repassé par zéro" in chat.text
    await chat.send(yes)
    assert "Envoyez une photo nette du compteur" in chat.text


@pytest.mark.parametrize("no", ["la", "lla", "la safi", "لا", "non merci"])
async def test_rollover_no_asks_the_index_again(engine, no):
    chat = await _linked_chat(engine, phone="+212677777777")
    await chat.press("Envoyer mon index")
    await chat.send("00080")
    await chat.send(no)
    assert "retapez l'index" in chat.text


async def test_safi_alone_is_not_taken_for_yes(engine):
    chat = await _linked_chat(engine, phone="+212677777777")
    await chat.press("Envoyer mon index")
    await chat.send("00080")
    await chat.send("safi")
    assert "Envoyez une photo" not in chat.text


@pytest.mark.parametrize(
    "lang_hint, skip, expected",
    [
        (None, "bla tswira", "Photo : aucune"),
        (None, "pas de photo merci", "Photo : aucune"),
        ("ar", "بلا صورة", "الصورة: بدون"),
        ("ar", "ma3ndich tswira", "الصورة: بدون"),
    ],
)
async def test_no_photo_in_words_skips_the_photo_step(engine, lang_hint, skip, expected):
    chat = await _linked_chat(engine, lang_hint=lang_hint)
    await chat.send("index 45340" if lang_hint is None else "بغيت نرسل المؤشر 45340")
    await chat.send("do")
    assert chat.replies[-1].ask == "photo"
    await chat.send(skip)
    assert expected in chat.text


@pytest.fixture
async def big_arrears(engine):
    async with engine.store.transaction() as tx:  # 462.07 + 300.00 DH due: 3 or 6 months allowed
        await tx.upsert_bill(
            Bill(
                "F-2026-08-1",
                "1000001",
                date(2026, 7, 31),
                date(2026, 8, 31),
                date(2026, 9, 5),
                date(2026, 9, 25),
                44700,
                44850,
                150,
                False,
                30000,
                0,
            )
        )
    return engine


@pytest.mark.parametrize(
    "lang_hint, typed, months",
    [
        (None, "en 6 fois", 6),
        (None, "sur six mois", 6),
        (None, "le deuxième", 3),
        ("ar", "f 6 chhour", 6),
        ("ar", "على ستة أشهر", 6),
        ("ar", "3 شهور", 3),
    ],
)
async def test_a_month_count_typed_at_the_facilities_question(big_arrears, lang_hint, typed, months):
    chat = await _linked_chat(big_arrears, lang_hint=lang_hint)
    await chat.press("📅")
    assert [b.payload for b in chat.buttons] == ["defer", "m3", "m6", "cmd:cancel"]
    await chat.send(typed)
    await chat.press_payload("r:job")  # the reason asked next: loss of job
    await chat.press_payload("yes")
    async with big_arrears.store.snapshot() as tx:
        (req,) = await tx.requests(contract="1000001")
    assert req.kind == "instalment" and req.months == months and len(req.lines) == months


async def test_a_date_typed_at_the_deferral_date_choice(engine):
    chat = await _linked_chat(engine)
    await chat.press("📅")
    await chat.press("Payer plus tard")
    assert "8 décembre 2026" in " ".join(_labels(chat))
    await chat.send("le 8 décembre")
    await chat.press_payload("r:job")
    await chat.press_payload("yes")
    async with engine.store.snapshot() as tx:
        (req,) = await tx.requests(contract="1000001")
    assert req.kind == "deferral" and req.defer_until == date(2026, 12, 8)


# ---------------------------------------------------------------- held-out phrasings
# Written once as customers write them and never tuned to: the score is reported, and the
# floor keeps it from sliding (58/61 when written; misses: "oui c bon", "oui oui c'est ça", "c bon").
HELD_OUT = (
    [
        (parse_yes_no, s, True)
        for s in [
            "ouii merci",
            "oui c bon",
            "Ah 3afak",
            "iyeh a khouya",
            "wakha safi",
            "ewa wakha",
            "ah ah",
            "oui oui c'est ça",
            "d'accord merci",
            "واخا",
            "ايه نعم",
            "اه صافي",
            "نعم أكيد",
            "ok 👍",
            "ayeh",
            "wah",
            "Oui !",
            "c bon",
            "yes",
            "okey",
        ]
    ]
    + [
        (parse_yes_no, s, False)
        for s in [
            "non",
            "non non merci",
            "la a khouya",
            "lla",
            "laaa",
            "la safi",
            "لا",
            "لا شكرا",
            "non pas besoin",
            "nn",
            "la machi daba",
            "ماشي دابا",
            "pas la peine",
            "no",
            "la la merci",
        ]
    ]
    + [
        (parse_ordinal, s, n)
        for s, n in {
            "le premier": 1,
            "premier": 1,
            "1er": 1,
            "la 2ème": 2,
            "le deuxieme": 2,
            "lowla": 1,
            "التانية": 2,
            "الاول": 1,
            "الأخير": -1,
            "le dernier": -1,
            "tani": 2,
            "ttani": 2,
            "الثالث": 3,
        }.items()
    ]
    + [
        (parse_no_photo, s, True)
        for s in [
            "bla tswira",
            "bla tswira 3afak",
            "ma3ndich tswira",
            "sans photo merci",
            "pas de photo",
            "بلا تصويرة",
            "ماعنديش صورة",
            "bla photo",
        ]
    ]
    + [
        (parse_service, s, v)
        for s, v in {
            "dyal do": "electricity",
            "compteur d'eau": "water",
            "lcompteur dyal lma": "water",
            "الكونطور ديال الضو": "electricity",
            "l'électricité": "electricity",
        }.items()
    ]
)


def test_held_out_phrasings_score():
    misses = [text for fn, text, want in HELD_OUT if fn(text) != want]
    assert len(HELD_OUT) - len(misses) >= 58, misses
