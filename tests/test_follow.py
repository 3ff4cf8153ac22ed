"""Conversations that follow the customer: what the first message said is kept across linking
and choices, a request for something else mid-journey is answered and the journey offered
back, "menu" / "annuler" / "safi" work everywhere, /language keeps the journey."""

from __future__ import annotations

from .chat import Chat
from .test_reading import readings


async def vouched(engine, lang_hint=None) -> Chat:
    """A customer whose phone the channel vouches for (as WhatsApp does): linking needs only the number."""
    return Chat(engine, sender_phone="+212612345678", lang_hint=lang_hint)


# ------------------------------------------------------------------ what was said first is kept
async def test_index_in_the_first_message_survives_linking_and_the_meter_choice_darija(engine):
    chat = await vouched(engine)
    await chat.send("salam bghit nsift l'index 45400")
    assert "رقم العقد" in chat.text  # linking first
    await chat.send("1000001")
    assert "مربوط" in chat.text
    # Two meters on this phone: which one, with the index kept (not asked again).
    assert "1000002" in " ".join(b.label for b in chat.buttons)
    await chat.press("1000001")
    assert "المؤشر 45400 يوافق العداد E-77001" in chat.text  # shown back: which index, which meter
    assert "صورة" in chat.text  # straight to the photo: the index is not asked again
    await chat.press_payload("skip")
    assert "45400" in chat.text and "190" in chat.text  # shown back for confirmation, with the consumption
    await chat.press_payload("yes")
    assert [r.index_value for r in await readings(engine, "1000001") if r.source == "customer"] == [45400]


async def test_service_and_index_in_the_first_message_pick_the_meter_arabic(engine):
    chat = await vouched(engine)
    await chat.send("بغيت نصيفط المؤشر ديال الضو 45400")
    await chat.send("1000001")
    # Electricity named: no meter question; the index is checked at once and shown back later.
    assert "1000002" not in " ".join(b.label for b in chat.buttons)
    await chat.press_payload("skip")
    assert "45400" in chat.text and "1000001" in chat.text


async def test_month_count_in_the_first_message_survives_linking_french(engine):
    chat = await vouched(engine, lang_hint="fr")
    await chat.send("Bonjour, je voudrais payer en 3 fois svp")
    await chat.send("1000001")
    assert "3 mois" not in " ".join(b.label for b in chat.buttons)  # the count is not asked again
    assert "motif" in chat.text.lower() or "raison" in chat.text.lower()
    await chat.press_payload("r:job")
    assert "3 mois" in chat.text  # shown back in the summary
    await chat.press_payload("yes")
    assert "IN-2026-000001" in chat.text


async def test_a_request_reference_in_the_first_message_is_tracked_after_linking(engine):
    chat = await vouched(engine, lang_hint="fr")
    await chat.send("je veux payer en 3 fois")
    await chat.send("1000001")
    await chat.press_payload("r:job")
    await chat.press_payload("yes")
    other = Chat(engine, user="u2", sender_phone="+212612345678", lang_hint="fr")
    await other.send("où en est ma demande IN-2026-000001 ?")
    assert "IN-2026-000001" in other.text


# ------------------------------------------------------------------ digressions
async def test_balance_asked_at_the_summary_then_the_reading_is_offered_back_french(engine):
    chat = await vouched(engine, lang_hint="fr")
    await chat.send("je veux envoyer mon index d'électricité 45400")
    await chat.send("1000001")
    await chat.press_payload("skip")
    assert "45400" in chat.text  # the summary, waiting for confirmation
    await chat.send("au fait, combien je dois ?")
    assert "218,90" in chat.text  # the balance, not "confirm or change"
    assert "Votre index 45400 n'est pas encore envoyé" in chat.text
    await chat.press("Reprendre")
    assert "45400" in chat.text and "Confirmer" in " ".join(b.label for b in chat.buttons)
    await chat.press("Confirmer")
    assert "RL-2026-000001" in chat.text
    assert "pas encore envoyé" not in chat.text  # done: not offered again


async def test_balance_asked_at_the_index_question_darija_arabizi_and_back_with_wakha(engine):
    chat = await vouched(engine)
    await chat.send("bghit nsift lcompteur dyal do")
    await chat.send("1000001")
    assert "المؤشر" in chat.text or "العداد" in chat.text
    await chat.send("chhal khassni nkhelles")
    assert "218,90" in chat.text
    assert "▶️" in " ".join(b.label for b in chat.buttons)
    await chat.send("wakha")  # yes to the offer
    assert "45210" in chat.text  # the index question again, with the last index


async def test_a_request_at_a_free_text_prompt_is_not_filed_as_the_answer(engine):
    chat = await vouched(engine, lang_hint="fr")
    await chat.send("je veux payer en 3 fois")
    await chat.send("1000001")
    await chat.press_payload("r:other")
    await chat.send("combien je dois au total ?")
    assert "ressemble à une autre demande" in chat.text
    await chat.press("C'est ma réponse")
    assert "combien je dois au total ?" in chat.text  # taken as the reason, shown in the summary
    assert "Envoyer la demande" in " ".join(b.label for b in chat.buttons)


async def test_a_request_at_a_free_text_prompt_can_go_to_that_request_arabic(engine):
    chat = await vouched(engine)
    await chat.send("bghit nkhelles 3la 3 chhour")
    await chat.send("1000001")
    await chat.press_payload("r:other")
    await chat.send("شحال خاصني نخلص")
    assert "هادا هو جوابي" in " ".join(b.label for b in chat.buttons)
    await chat.press("فواتيري")
    assert "218,90" in chat.text
    async with engine.store.snapshot() as tx:
        assert await tx.requests(contract="1000001") == []  # nothing filed with that "reason"


async def test_an_index_at_the_index_question_is_an_answer_even_with_request_words(engine):
    chat = await vouched(engine, lang_hint="fr")
    await chat.send("je veux envoyer mon index d'électricité")
    await chat.send("1000001")
    await chat.send("l'index du compteur est 45400")
    assert "photo" in chat.text.lower()


# ------------------------------------------------------------------ global words
async def test_menu_words_work_inside_a_journey(engine):
    for word in ("menu", "القائمة", "lmenu", "retour", "رجوع", "Menu !"):
        chat = Chat(engine, user=f"menu-{word}", sender_phone="+212612345678", lang_hint="fr")
        await chat.send("je veux envoyer mon index")
        await chat.send("1000001")
        await chat.send(word)
        labels = " ".join(b.label for b in chat.buttons)
        assert "Mes factures" in labels or "فواتيري" in labels, word  # the menu, not the help text
        assert "Reprendre" in labels or "نكمل" in labels, word  # the reading is offered back


async def test_cancel_words_work_inside_a_journey(engine):
    for word in ("annuler", "إلغاء", "safi", "bla", "Annuler."):
        chat = Chat(engine, user=f"cancel-{word}", sender_phone="+212612345678", lang_hint="fr")
        await chat.send("je veux envoyer mon index")
        await chat.send("1000001")
        await chat.send(word)
        assert "annulé" in chat.text.lower() or "ألغي" in chat.text or "تم الإلغاء" in chat.text, word
        assert "Reprendre" not in " ".join(b.label for b in chat.buttons), word  # cancelled is forgotten


async def test_language_switch_in_a_journey_keeps_the_journey(engine):
    chat = await vouched(engine, lang_hint="fr")
    await chat.send("je veux envoyer mon index d'électricité")
    await chat.send("1000001")
    assert "45210" in chat.text
    await chat.send("/language")
    await chat.press("العربية")
    assert ("45210" in chat.text and "المؤشر" in chat.text) or ("45210" in chat.text and "العداد" in chat.text)
    await chat.send("45400")
    assert "صورة" in chat.text  # the journey went on, in Arabic


async def test_a_journey_started_again_supersedes_the_one_left(engine):
    chat = await vouched(engine, lang_hint="fr")
    await chat.send("je veux envoyer mon index d'électricité 45400")
    await chat.send("1000001")
    await chat.send("combien je dois ?")
    assert "Votre index 45400 n'est pas encore envoyé" in chat.text
    await chat.send("menu")
    await chat.send("je veux envoyer mon index d'électricité 45450")  # started again, another index
    await chat.press_payload("skip")
    assert "45450" in chat.text
    await chat.press("Confirmer")
    assert "RL-2026-000001" in chat.text
    assert "pas encore envoyé" not in chat.text  # the old 45400 is not offered back
    assert [r.index_value for r in await readings(engine, "1000001") if r.source == "customer"] == [45450]


async def test_the_request_chosen_at_a_free_text_prompt_keeps_what_its_message_said(engine):
    chat = await vouched(engine, lang_hint="fr")
    await chat.send("je veux payer en 3 fois")
    await chat.send("1000001")
    await chat.press_payload("r:other")
    await chat.send("je veux envoyer mon index d'électricité 45400")
    await chat.press("Envoyer mon index")
    assert "photo" in chat.text.lower()  # the index of that message, not asked again


# ------------------------------------------------------------------ two requests in one message
async def test_two_requests_read_in_one_message_are_asked_about_darija(engine):
    chat = await vouched(engine)
    # how much is owed, and where the agency is: two requests, the model's top two neck and neck
    # ("wach nkhelles lfactura wla nmchi l lwakala" is agency, sure, since batches 7-10)
    await chat.send("bghit n3ref chhal 3liya w fin lwakala")
    assert "شنو بغيتي" in chat.text
    assert sorted(b.payload for b in chat.buttons) == ["go:agency", "go:bills"]
    await chat.press("فواتيري")
    await chat.send("1000001")
    assert "462,07" in chat.text  # the balance, after linking


async def test_two_requests_read_in_one_message_are_asked_about_french(engine, monkeypatch):
    # The question's mechanics, whatever a retrained model makes of this wording: the model puts
    # the two requests neck and neck (the Darija test above and the held-out report cover the
    # real model's close calls).
    from conversations import intent_model

    real = intent_model.predict
    close = "combien je dois et où est l'agence"
    monkeypatch.setattr(
        intent_model, "predict", lambda text: ("balance", 0.48, "agency", 0.46) if text == close else real(text)
    )
    chat = await vouched(engine, lang_hint="fr")
    await chat.send("bonjour")
    await chat.send(close)
    assert "que souhaitez-vous" in chat.text
    await chat.press("Agences")
    assert "nom de la ville" in chat.text  # not linked: which city?


async def test_a_city_named_settles_it_and_a_sure_model_asks_nothing(engine):
    chat = await vouched(engine, lang_hint="fr")
    await chat.send("bonjour")
    await chat.send("où payer ma facture à Rabat ?")
    assert "Rabat" in chat.text and "que souhaitez-vous" not in chat.text
    await chat.send("je veux payer plus tard")  # the rules hesitate, the trained model is sure
    assert "que souhaitez-vous" not in chat.text


# ------------------------------------------------------------------ numbers given before asked
async def test_a_contract_number_in_the_first_message_is_not_asked_again_darija(engine):
    chat = await vouched(engine)
    await chat.send("lindex howa 45 400 o numéro dyal contrat 1000001")
    assert "رقم العقد" not in chat.text  # the number was given: linked at once (the phone vouches)
    assert "1000001" in chat.text and "E-77001" in chat.text  # and the meter of that contract taken
    await chat.press_payload("skip")
    await chat.press_payload("yes")
    assert [r.index_value for r in await readings(engine, "1000001") if r.source == "customer"] == [45400]


async def test_a_contract_number_given_first_still_needs_its_proof_french(engine):
    chat = Chat(engine, lang_hint="fr")  # no phone the channel vouches for
    await chat.send("bonjour, mon index est 45400, contrat 1000003")
    assert "numéro de contrat" not in chat.text  # not asked again...
    assert "vérifier que ce contrat est bien le vôtre" in chat.text  # ...but proven like a typed one


async def test_a_bare_contract_shaped_number_before_linking_is_asked_about_french(engine):
    chat = await vouched(engine, lang_hint="fr")
    await chat.send("bonjour")
    await chat.send("1000001")
    assert "1000001 : est-ce votre numéro de contrat ou l'index de votre compteur ?" in chat.text
    await chat.press("🔗 C'est mon numéro de contrat")
    assert "Le contrat 1000001 (électricité, Casablanca) est maintenant relié" in chat.text
    await chat.no_reminders()  # the linking journey ended: the reminders question, then the menu
    assert "Envoyer mon index" in " ".join(b.label for b in chat.buttons)  # nothing guessed


async def test_a_bare_number_said_to_be_the_index_is_kept_through_linking_arabic(engine):
    chat = await vouched(engine)
    await chat.send("السلام")
    await chat.send("١٠٤٥٠٠")
    assert "واش 104500 هو رقم العقد ديالك ولا مؤشر العداد؟" in chat.text
    await chat.press("📟 إرسال مؤشر العداد")
    assert "رقم العقد" in chat.text  # linking first, then the index kept
    await chat.send("1000001")
    await chat.press("1000001")
    assert "104500" in chat.text


async def test_a_bare_number_once_linked_is_the_index_as_before(engine):
    chat = await vouched(engine, lang_hint="fr")
    await chat.send("contrat 1000001")
    assert "est maintenant relié" in chat.text
    await chat.send("menu")
    await chat.send("104500")  # contract-shaped, but a linked chat sends its index
    assert "est-ce votre numéro de contrat" not in chat.text
    assert "Pour quel compteur voulez-vous envoyer l'index ?" in chat.text


async def test_a_contract_number_alone_is_linked_without_being_asked_for_arabic(engine):
    chat = await vouched(engine)
    await chat.send("رقم العقد 1000001")
    assert "مربوط" in chat.text and "1000001" in chat.text  # linked at once (the phone vouches)
    assert "أرسل رقم العقد" not in chat.text  # not asked for the number just given
    # Then what for: the two requests the message may have meant, the contract kept for either.
    assert "شنو بغيتي" in chat.text and "📟 إرسال مؤشر العداد" in [b.label for b in chat.buttons]
    await chat.press("🧾 فواتيري ورصيدي")
    assert "462,07 درهم" in chat.text


# ------------------------------------------------------------------ the language the customer writes
async def test_the_chat_follows_a_customer_who_writes_the_other_language(engine):
    chat = await vouched(engine, lang_hint="fr")  # a phone set to French
    await chat.send("bonjour")
    await chat.send("je voudrais payer en plusieurs fois")
    assert "numéro de contrat" in chat.text  # French so far
    await chat.send("عافاك بغيت نخلص على 3 شهور")  # then plainly Arabic, the request said again
    assert "رقم العقد" in chat.text and "contrat" not in chat.text
    assert "6 إلى 10" not in chat.text  # its "3" is a month count, not a contract number typed wrong
    await chat.send("1000001")  # digits, one word, arabizi: the chat keeps its language
    assert "مربوط الآن" in chat.text and "ما سبب الطلب" in chat.text  # the 3 months kept: no plan asked
    await chat.send("wakha")  # an "ok" is no reason: asked again
    assert "اختر سببا من القائمة" in chat.text
    assert "تحقق من طلبك" not in chat.text
    await chat.send("1")
    assert "على 3 أشهر" in chat.text and "154,02" in chat.text and "فقدان العمل" in chat.text
    await chat.send("je préfère le français s'il vous plaît")  # three words of French
    assert "langue" in chat.text and not any("\u0600" <= ch <= "\u06ff" for ch in chat.text)


async def test_a_french_sentence_in_an_arabic_chat_is_answered_in_french(engine):
    chat = await vouched(engine, lang_hint="ar")
    await chat.send("السلام عليكم")
    assert "مرحبا" in chat.text or "أهلا" in chat.text
    await chat.send("merci")  # one word: still Arabic
    assert "contrat" not in chat.text
    await chat.send("je veux voir mes factures")
    assert "contrat" in chat.text and "رقم العقد" not in chat.text


async def test_the_request_said_again_at_the_contract_list_keeps_its_month_count(engine):
    chat = await vouched(engine, lang_hint="fr")
    await chat.send("je veux payer en plusieurs fois")
    await chat.press("Je ne connais pas mon numéro")
    assert "Lequel voulez-vous relier" in chat.text
    await chat.send("bghit nkhlas 3la 3 chhor")  # arabizi: the chat stays French
    assert "Lequel voulez-vous relier" in chat.text and "Choisissez un contrat" not in chat.text
    await chat.send("1")
    assert "est maintenant relié" in chat.text and "Pour quelle raison" in chat.text  # no plan asked
    await chat.send("1")
    assert "échelonnement en 3 mois" in chat.text and "154,02" in chat.text


async def test_a_sentence_the_question_cannot_take_goes_where_it_asks_even_read_by_the_model(engine):
    chat = await vouched(engine, lang_hint="ar")
    await chat.send("fin kayna l'agence")
    assert "المدينة" in chat.text
    # Not a city, words the rules do not know: the trained model's sure reading is followed.
    await chat.send("bghit ntkelem m3a chi wahed")
    assert "080 200 77 77" in chat.text and "لم أتعرف على المدينة" not in chat.text
    await chat.send("menu")
    await chat.send("بغيت نخلص على 3 شهور")
    await chat.send("1000001")
    assert "ما سبب الطلب" in chat.text
    # At a free-text question the customer is asked which it is, never moved unasked.
    await chat.send("bghit ntkellem m3a wa7ed mn service")
    assert "bghit ntkellem m3a wa7ed mn service" in chat.text
    assert [b.payload for b in chat.buttons] == ["go:contact", "dg:answer"]
    await chat.press_payload("dg:answer")
    assert "تحقق من طلبك" in chat.text and "bghit ntkellem m3a wa7ed mn service" in chat.text


async def test_greetings_are_answered_as_they_were_said(engine):
    ar = await vouched(engine, lang_hint="ar")
    await ar.send("السلام عليكم")  # the welcome
    await ar.send("شكرا بزاف")
    assert "العفو" in ar.text and "وعليكم السلام" not in ar.text
    await ar.send("salam alaykoum")
    assert "وعليكم السلام" in ar.text
    await ar.send("صباح الخير")
    assert "أهلا وسهلا" in ar.text and "وعليكم السلام" not in ar.text
    fr = Chat(engine, user="greeted-fr", lang_hint="fr")
    await fr.send("bonjour")
    await fr.send("merci beaucoup")
    assert "Avec plaisir" in fr.text and "Bonjour 🙂" not in fr.text
    await fr.send("salut")
    assert "Bonjour 🙂" in fr.text  # 10:00 in Casablanca
    engine.clock.advance(hours=10)  # 20:00
    await fr.send("salut")
    assert "Bonsoir 🙂" in fr.text
