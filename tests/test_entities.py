"""Entities that tell numbers apart (issue 17): the index beside a contract number, amounts,
counts, years, hours and kWh that are not indexes, leading zeros as the meter shows them, month
counts in words and with fillers; and the trained model reading what the rules never saw."""

from __future__ import annotations

from datetime import date

import pytest

from conversations.understanding import understand

TODAY = date(2026, 12, 1)


def entities(text: str) -> dict:
    return understand(text, today=TODAY).entities


@pytest.mark.parametrize(
    "text,index,contract",
    [
        ("lindex howa 52 310 o numéro dyal contrat 1077321", 52310, "1077321"),
        ("l'index 0031207", 31207, None),
        ("compteur 0031207", 31207, None),
        ("mon compteur affiche 0004512", 4512, None),
        ("العداد فيه 0031207", 31207, None),
        ("contrat 1077321, index 45 120", 45120, "1077321"),
    ],
)
def test_the_index_beside_a_contract_number_and_with_leading_zeros(text, index, contract):
    found = entities(text)
    assert found.get("index") == index
    assert found.get("contract") == contract


@pytest.mark.parametrize(
    "text",
    [
        "450 درهم",
        "3andi 2 factures ma khlsthomch",
        "عندي 3 فواتير ما خلصتهمش",
        "la facture de 2021 n'est pas juste",
        "facture dyal 2021",
        "الساعة 10 واش الوكالة محلولة",
        "vous ouvrez a quelle heure, 8 ?",
        "daz 150 kwh o twal3at lfactura",
        "ma consommation a dépassé 150 kwh ce mois",
        "combien je dois pour les 3 derniers mois",
        "j'ai payé 320 dh hier",
        "c koi le tarif de la tranche 150",  # a tariff band's bound, kWh unsaid
        "pourquoi je paie plus quand je depasse 100",
        "chhal taman dyal tranche 150",
        "ما هو ثمن الشطر 150",
        "fat 150 o tla3 lfatura",
    ],
)
def test_amounts_counts_years_hours_and_kwh_are_not_indexes(text):
    assert "index" not in entities(text)


def test_an_index_named_as_such_stays_one_with_its_unit_or_a_year_like_value():
    assert entities("index 45123 kwh")["index"] == 45123
    assert entities("l'index 2021")["index"] == 2021
    assert entities("1 204 m3")["index"] == 1204
    assert entities("mon index est 45400, j'ai dépassé la tranche 150")["index"] == 45400
    assert entities("lcompteur fih 150")["index"] == 150


@pytest.mark.parametrize(
    "text,months",
    [
        ("خمسة ديال الشهور", 5),
        ("عشرة ديال الشهور", 10),
        ("bghit nkhelles f arba3 d chhour", 4),
        ("tlata d chhour 3afak", 3),
        ("khamsa dlchhour", 5),
        ("dix mois svp", 10),
        ("على 12 شهر", 12),
        ("je veux payer en 3x", 3),
        ("wach n9der nkhelles lfactura f 2 mrat", 2),
        ("ثلاثة أشهر", 3),
        ("sur six mois", 6),
        ("ndfe3ha 3la tlt chhour", 3),
        ("wach n9der nkhelles f joj mrat", 2),
        ("بغيت نخلص فجوج مرات", 2),
        ("نقسمها على ربعة ديال المرات", 4),
        ("نخلص على مرتين", 2),
        ("5ams chhour afak", 5),
    ],
)
def test_month_counts_in_words_and_with_fillers(text, months):
    assert entities(text).get("months") == months


@pytest.mark.parametrize(
    "text",
    [
        "encore une fois",
        "une fois",
        "3 mois impayés, je veux payer",
        "depuis 2 mois",
        "j'ai reçu une facture de 2 mois d'un coup",
        "jatni lfatoura dyal 3 chhour mjmou3a",
        "ما جاوش يقراو العداد منذ شهرين",
    ],
)
def test_what_is_not_a_month_count(text):
    assert "months" not in entities(text)


@pytest.mark.parametrize(
    "text",
    [
        "bghit nkhelles f arba3 d chhour",
        "je veux payer ma facture en 2 fois",
        "wach n9der nkhelles lfactura f 2 mrat",
        "bghit nkhelles 3 chhour dyal lfatora",
    ],
)
def test_paying_over_months_is_a_facility_not_the_balance(text):
    assert understand(text, today=TODAY).intent == "deferral"


@pytest.mark.parametrize(
    "text,intent",
    [
        # Words the rules were never given; the trained model reads them (source "model").
        ("lkarta dyal do tqadat w ana bla dou daba", "prepaid"),
        ("كيفاش نقدر نتواصل مع مصلحة الزبناء", "agent"),
    ],
)
def test_the_model_reads_what_the_rules_never_saw(text, intent):
    u = understand(text, today=TODAY)
    assert (u.intent, u.source) == (intent, "model")
    assert u.runner_up is None  # not a close call: no question


@pytest.mark.parametrize(
    "text, intents",
    [
        ("la safi", {"cancel"}),
        ("ok", {"unknown"}),
        # one word naming a service: a broken supply, or nothing the bot should act on
        ("الضو", {"agent", "unknown"}),
        ("lma", {"agent", "unknown"}),
    ],
)
def test_one_or_two_words(text, intents):
    assert understand(text, today=TODAY).intent in intents
