"""Wording a customer reads: French elision with the operator's name, "1er" for the first of the
month, no parenthesis inside another, the Arabic «للمساعدة»."""

from __future__ import annotations

from datetime import date

import pytest

from conversations.i18n import LANGS, catalog, placeholders, translator
from conversations.profile import load_profile

from .chat import Chat


def _depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
    return deepest


@pytest.mark.parametrize("lang", LANGS)
def test_no_parenthesis_inside_another_with_the_values_that_carry_one(lang):
    t, profile = translator(lang), load_profile()
    # Values put into texts that bring their own brackets.
    samples = {
        "contract": [t("contract.label", number="1000001", service=t("service.electricity"), city="Casablanca")],
        "kind": [t(k) for k in catalog(lang).messages if k.startswith("request.kind_")],
        "tariff": [tariff.name.get(lang) for tariff in profile.tariffs],
    }
    nested = []
    for key, text in catalog(lang).messages.items():
        for form in text if isinstance(text, tuple) else (text,):
            fields = placeholders(form)
            for name, values in samples.items():
                for value in values if name in fields else ():
                    filled = form.format(**{f: value if f == name else "x" for f in fields})
                    if _depth(filled) > 1:
                        nested.append(f"{key}: {filled}")
    assert not nested, "\n".join(nested)


def test_french_dates_write_the_first_of_the_month_as_1er():
    fr, ar = translator("fr"), translator("ar")
    assert fr.date(date(2026, 12, 1)) == "1er décembre 2026"
    assert fr.date(date(2027, 1, 1), with_year=False) == "1er janvier"
    assert fr.date(date(2026, 12, 11)) == "11 décembre 2026" and fr.date(date(2026, 12, 21)) == "21 décembre 2026"
    assert ar.date(date(2026, 12, 1)) == "1 دجنبر 2026"
    assert fr.of_month(date(2026, 10, 1)) == "d'octobre 2026" and fr.of_month(date(2026, 9, 1)) == "de septembre 2026"


async def test_the_first_of_the_month_in_a_conversation_is_1er(engine):
    engine.clock.now = engine.clock.now.replace(day=1)  # 1 November: the latest deferral is 31 December
    chat = Chat(engine, sender_phone="+212612345678")
    await chat.send("bonjour")
    await chat.send("je veux payer plus tard")
    await chat.send("1000001")
    await chat.press("Payer plus tard")
    assert [b.label for b in chat.buttons] == ["16 novembre 2026", "1er décembre 2026", "31 décembre 2026"]
    await chat.send("1er décembre")  # typed back as written
    await chat.press("Maladie")
    assert "Demande : payer le tout avant le 1er décembre 2026" in chat.text


async def test_french_says_de_l_onee_and_arabic_reads_well(engine):
    fr = Chat(engine, user="fr", lang_hint="fr")
    await fr.send("bonjour")
    assert "bienvenue chez l'assistant de l'ONEE" in fr.text and "de ONEE" not in fr.text
    await fr.send("je veux parler à un conseiller")
    assert "Le centre de relation clientèle de l'ONEE :" in fr.text
    ar = Chat(engine, user="ar", lang_hint="ar")
    await ar.send("السلام")
    assert "أنا المساعد الرقمي ديال المكتب الوطني للكهرباء والماء." in ar.text
    await ar.send("بغيت نهضر مع شي واحد")
    assert "مركز خدمة الزبناء ديال المكتب الوطني للكهرباء والماء:" in ar.text


def test_a_profile_without_the_phrase_falls_back_to_de_and_its_name():
    operator = load_profile().operator.model_copy(update={"of_short_name": None})
    assert operator.of("fr") == "de ONEE" and operator.of("ar") == "ديال المكتب الوطني للكهرباء والماء"


def test_the_arabic_help_hint_says_lilmusa3ada():
    ar = catalog("ar").messages
    assert not [k for k, v in ar.items() if isinstance(v, str) and " لمساعدة" in " " + v]
    assert "للمساعدة في الشحن" in ar["reading.only_prepaid"]


async def test_the_reading_window_starts_on_the_1er(engine):
    chat = Chat(engine, sender_phone="+212612345678")
    await chat.send("bonjour")
    await chat.send("je veux envoyer mon index")
    await chat.send("1000001")
    assert "Les index sont attendus du 1er au 10 de chaque mois" in chat.text  # 23 November: outside it
