"""Issue 24: the SRM Casablanca-Settat profile, its demo, legacy references and the transition."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conversations.profile import ProfileError, bundled_profiles, load_profile, profile_path

from .test_console import run_addad
from .test_import_export import CONTRACTS, ops  # noqa: F401 (fixture)


def test_both_bundled_profiles_load_and_are_chosen_by_name():
    assert {"onee", "srm-cs"} <= set(bundled_profiles())
    srm = load_profile("srm-cs")
    assert srm.operator.short_name.fr == "SRM Casablanca-Settat"
    assert [o.code for o in srm.legacy_operators] == ["lydec", "radeej", "radeec", "onee"]
    assert srm.legacy_operator("lydec").reference_ok("0193017183")
    assert not srm.legacy_operator("lydec").reference_ok("019301718")  # Lydec's are 10 digits
    assert srm.contract_number_ok("1000001") and not srm.contract_number_ok("0193017183")
    assert srm.transition is not None and "Lydec" in srm.transition.fr and "ليديك" in srm.transition.ar
    assert load_profile().operator.code == "onee" and load_profile(None).legacy_operators == []
    assert profile_path("srm-cs").name == "srm-cs.toml"
    with pytest.raises(ProfileError, match=r"srm-rsk: no such bundled operator profile \(bundled: .*onee.*srm-cs"):
        load_profile("srm-rsk")


def test_every_unsourced_figure_of_the_srm_profile_is_marked():
    text = profile_path("srm-cs").read_text(encoding="utf-8")
    header = text.split("contract_pattern")[0]
    assert "Sourced figures" in header and "EXAMPLE figures" in header
    # The figures no source gave are each marked where they stand.
    for line in text.splitlines():
        if re.match(r"(phones|email|website) =", line) or "meter_rental" in line or 'key = "fixed"' in line:
            assert "EXAMPLE" in line, line


def _broken(tmp_path, old: str, new: str):
    source = profile_path("srm-cs").read_text(encoding="utf-8")
    assert old in source
    path = tmp_path / "broken.toml"
    path.write_text(source.replace(old, new, 1), encoding="utf-8")
    return path


def test_a_broken_srm_profile_says_which_field(tmp_path):
    cases = [
        ('code = "radeej"', 'code = "lydec"', "legacy_operators: codes must be unique"),
        ("reference_pattern = '^[0-9]{10}$'", "reference_pattern = '^[0-9{10}$'", "reference_pattern"),
        ('code = "lydec"', 'code = "Lydec Casa"', "legacy_operators.0.code"),
        ("[transition]", "[unused_transition]", "unused_transition"),
    ]
    for old, new, message in cases:
        with pytest.raises(ProfileError, match=re.escape(message)):
            load_profile(_broken(tmp_path, old, new))


def test_a_profile_listing_previous_operators_must_explain_them(tmp_path):
    source = profile_path("srm-cs").read_text(encoding="utf-8")
    start = source.index("[transition]")
    end = source.index("[[payment_channels]]")
    path = tmp_path / "no-transition.toml"
    path.write_text(source[:start] + source[end:], encoding="utf-8")
    with pytest.raises(ProfileError, match="a transition text is needed"):
        load_profile(path)


def test_the_srm_demo_runs_in_the_region(tmp_path):
    lines = ["2", "1000001", "menu", "agence à Mohammédia"]
    done = run_addad(["demo", "--operator", "srm-cs", "--lang", "fr"], lines, tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "bienvenue chez l'assistant de la SRM Casablanca-Settat" in out
    assert "Le contrat 1000001 (électricité, Casablanca) est maintenant relié" in out
    assert "Agence Mohammédia Centre" in out
    assert "Traceback" not in done.stderr
    folder = tmp_path / "addad-demo-srm-cs"
    assert (folder / "addad-demo.sqlite3").exists() and not (tmp_path / "addad-demo").exists()
    legacy = (folder / "legacy.csv").read_text(encoding="utf-8").splitlines()
    assert legacy[0] == "legacy_operator,legacy_reference,contract"
    assert "lydec,0193 017 183,1000001" in legacy
    contracts = (folder / "contracts.csv").read_text(encoding="utf-8")
    assert "Rabat" not in contracts and "Marrakech" not in contracts and "Mohammédia" in contracts
    # ADDAD_OPERATOR names the profile just as well, in Arabic too.
    arabic = run_addad(["demo", "--lang", "ar"], ["2"], tmp_path, ADDAD_OPERATOR="srm-cs")
    assert arabic.returncode == 0, arabic.stderr
    assert "المبلغ الإجمالي المستحق" in arabic.stdout  # the SRM demo's chat, already linked
    assert not (tmp_path / "addad-demo").exists()


def test_an_unknown_operator_name_is_one_line(tmp_path):
    done = run_addad(["demo", "--operator", "srm-xyz"], [], tmp_path)
    assert done.returncode == 2
    assert "srm-xyz: no such bundled operator profile" in done.stderr and "Traceback" not in done.stderr


# ---------------------------------------------------------------------- addad import legacy
LEGACY = """\
legacy_operator,legacy_reference,contract
lydec,0193 017 183,1000001
lydec,0193-017-184,1000002
onee,٩١٠٠٠٠٠٣,1000003
"""


@pytest.fixture
def srm_ops(tmp_path):
    """`addad …` on a scratch database with the SRM profile and the contracts imported."""
    env = {**os.environ, "ADDAD_DATABASE": str(tmp_path / "addad.sqlite3"), "ADDAD_OPERATOR": "srm-cs"}

    def addad(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
        )

    def write(name: str, text: str) -> str:
        (tmp_path / name).write_text(text, encoding="utf-8")
        return name

    addad.write = write  # type: ignore[attr-defined]
    addad.db = tmp_path / "addad.sqlite3"  # type: ignore[attr-defined]
    done = addad("import", "contracts", write("contracts.csv", CONTRACTS))
    assert done.returncode == 0, done.stderr
    return addad


def _legacy_rows(db) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT reference_key, legacy_operator, reference, contract FROM legacy_references ORDER BY 1"
        ).fetchall()
    finally:
        con.close()


def test_import_legacy_stores_references_as_printed_and_is_idempotent(srm_ops):
    ops = srm_ops
    path = ops.write("legacy.csv", LEGACY)
    checked = ops("import", "legacy", path, "--check")
    assert checked.returncode == 0, checked.stderr
    assert "legacy.csv: 3 rows checked: no problem found (--check: nothing was written)" in checked.stdout
    assert _legacy_rows(ops.db) == []
    done = ops("import", "legacy", path)
    assert done.returncode == 0, done.stderr
    assert "legacy.csv: 3 rows: 3 inserted, 0 updated, 0 unchanged" in done.stdout
    assert _legacy_rows(ops.db) == [
        ("0193017183", "lydec", "0193 017 183", "1000001"),
        ("0193017184", "lydec", "0193-017-184", "1000002"),
        ("91000003", "onee", "٩١٠٠٠٠٠٣", "1000003"),
    ]
    again = ops("import", "legacy", path)
    assert "3 rows: 0 inserted, 0 updated, 3 unchanged" in again.stdout
    moved = ops("import", "legacy", ops.write("moved.csv", LEGACY.replace("184,1000002", "184,1000003")))
    assert "3 rows: 0 inserted, 1 updated, 2 unchanged" in moved.stdout
    assert _legacy_rows(ops.db)[1][3] == "1000003"


def test_a_legacy_file_with_bad_rows_is_rejected_whole_with_every_line(srm_ops):
    ops = srm_ops
    bad = LEGACY + "\n".join(
        [
            "redal,0537 000 111,1000001",  # line 5: not an operator SRM Casablanca-Settat replaced
            "lydec,0193 017 183,1000004",  # line 6: line 2's reference, another contract
            "lydec,0200 000 001,9999999",  # line 7: no such contract
            "lydec,0193 017,1000004",  # line 8: not Lydec's 10 digits
            "radeej,RJ-12,1000004",  # line 9: letters
        ]
    )
    done = ops("import", "legacy", ops.write("legacy.csv", bad + "\n"))
    assert done.returncode == 1
    assert [l for l in done.stderr.splitlines() if l.startswith("legacy.csv:")] == [
        "legacy.csv:5: legacy_operator: unknown operator 'redal' "
        "(the operator profile lists lydec, radeej, radeec, onee)",
        "legacy.csv:6: legacy_reference: duplicate legacy reference (a reference maps to one contract) "
        "(first on line 2)",
        "legacy.csv:7: contract: unknown contract 9999999 (import contracts first)",
        "legacy.csv:8: legacy_reference: '0193 017' does not match lydec's reference format ^[0-9]{10}$",
        "legacy.csv:9: legacy_reference: 'RJ-12' is not digits (spaces, dashes and dots between them allowed)",
    ]
    assert done.stderr.strip().endswith("addad: legacy.csv rejected: 5 problem(s), nothing was written")
    assert _legacy_rows(ops.db) == []


def test_the_onee_profile_has_no_previous_operator_to_import(ops):
    assert ops("import", "contracts", ops.write("contracts.csv", CONTRACTS)).returncode == 0
    done = ops("import", "legacy", ops.write("legacy.csv", LEGACY))
    assert done.returncode == 1
    assert "legacy.csv:2: legacy_operator: unknown operator 'lydec' (the operator profile lists none)" in done.stderr


def test_the_legacy_migration_keeps_requests_and_their_instalments(tmp_path):
    from storage.sqlite.schema import migrations, statements

    db = tmp_path / "old.sqlite3"
    con = sqlite3.connect(db)
    con.execute("PRAGMA foreign_keys = ON")
    for version, _name, sql in migrations():
        if version >= 12:
            break
        for statement in statements(sql):
            con.execute(statement)
        con.execute(f"PRAGMA user_version = {version}")
    con.execute(
        "INSERT INTO requests (id, reference, kind, channel, user_id, lang, created_at, updated_at) "
        "VALUES (7, 'IN-2026-000001', 'instalment', 'telegram', '42', 'fr', '2026-11-01', '2026-11-01')"
    )
    con.execute("INSERT INTO instalment_lines VALUES (7, 1, '2026-12-01', 10000)")
    con.commit()
    con.close()
    done = run_addad(["db", "upgrade"], [], tmp_path, ADDAD_DATABASE=str(db))
    assert done.returncode == 0, done.stderr
    assert "0012_legacy.sql" in done.stdout
    con = sqlite3.connect(db)
    con.execute("PRAGMA foreign_keys = ON")
    assert con.execute("SELECT request_id, amount FROM instalment_lines").fetchall() == [(7, 10000)]
    assert con.execute("SELECT reference, kind FROM requests").fetchall() == [("IN-2026-000001", "instalment")]
    con.execute(
        "INSERT INTO requests (reference, kind, channel, user_id, lang, created_at, updated_at) "
        "VALUES ('BR-2026-000001', 'connection', 'telegram', '42', 'fr', '2026-11-01', '2026-11-01')"
    )
    with pytest.raises(sqlite3.IntegrityError):  # the lines still belong to a request that exists
        con.execute("INSERT INTO instalment_lines VALUES (99, 1, '2026-12-01', 10000)")
    with pytest.raises(sqlite3.IntegrityError):  # and the kinds are still a fixed set
        con.execute(
            "INSERT INTO requests (reference, kind, channel, user_id, lang, created_at, updated_at) "
            "VALUES ('XX-2026-000001', 'anything', 'telegram', '42', 'fr', '2026-11-01', '2026-11-01')"
        )
    assert {r[1] for r in con.execute("PRAGMA index_list(requests)")} >= {
        "requests_contract",
        "requests_chat",
        "requests_status",
    }
    con.close()


# ---------------------------------------------------------------------- linking by a legacy reference
SRM_LEGACY = """\
legacy_operator,legacy_reference,contract
lydec,0193 017 183,1000001
lydec,0193 017 184,1000002
onee,9100 0003,1000003
"""


@pytest.fixture
async def srm_engine(tmp_path, clock):
    """The seeded store (tests/chat.py) with SRM Casablanca-Settat's profile and legacy.csv
    imported through the real importer."""
    from conversations.engine import Engine
    from storage import open_store
    from storage.csvio import import_file

    from .chat import seed

    store = await open_store(tmp_path / "addad.sqlite3", clock=clock)
    await seed(store)
    profile = load_profile("srm-cs")
    (tmp_path / "legacy.csv").write_text(SRM_LEGACY, encoding="utf-8")
    await import_file(store, "legacy", tmp_path / "legacy.csv", profile)
    try:
        yield Engine(store, profile, clock=clock)
    finally:
        await store.close()


async def _add_contract(engine, typed: str, *, lang: str = "fr", **kw):
    from .chat import Chat

    chat = Chat(engine, **kw)
    await chat.send("bonjour" if lang == "fr" else "السلام")
    await chat.press("Ajouter un contrat" if lang == "fr" else "إضافة عقد")
    await chat.send(typed)
    return chat


async def _links(engine, chat) -> list[str]:
    async with engine.store.snapshot() as tx:
        return sorted(c.contract for c in await tx.linked_contracts(chat.channel, chat.user))


async def test_a_lydec_reference_as_printed_links_todays_contract_in_french(srm_engine):
    chat = await _add_contract(srm_engine, "0193 017 183")
    asked = chat.text
    assert "Lydec" not in asked and "1000001" not in asked  # nothing told before proof
    await chat.press("Montant")
    await chat.send("218,90")  # the last bill's amount (tests/chat.py seed)
    assert "Votre contrat Lydec 0193 017 183 est désormais le contrat 1000001 chez SRM Casablanca-Settat." in chat.text
    assert "Le contrat 1000001 (électricité, Casablanca) est maintenant relié" in chat.text
    assert await _links(srm_engine, chat) == ["1000001"]


async def test_a_lydec_reference_in_arabic_indic_digits_links_in_darija(srm_engine):
    # The WhatsApp sender's number is the contract's: the vouched phone is the proof.
    chat = await _add_contract(
        srm_engine, "٠١٩٣-٠١٧-١٨٣", lang="ar", channel="whatsapp", user="212612345678", sender_phone="+212612345678"
    )
    assert "العقد ديالك عند ليديك رقم 0193 017 183 ولّى دابا هو العقد 1000001 عند الشركة الجهوية" in chat.text
    assert "مربوط الآن بهذه المحادثة" in chat.text
    assert await _links(srm_engine, chat) == ["1000001", "1000002"]  # and her other contract on that phone


async def test_a_reference_typed_in_arabizi_darija_with_words_around_it(srm_engine):
    chat = await _add_contract(srm_engine, "hahowa numero dyal lydec 0193017184", lang="fr")
    await chat.press("Montant")
    await chat.send("30,24")  # wrong on purpose: 1000002's proof fails like any other
    assert "ne correspond pas" in chat.text and "Lydec" not in chat.text
    async with srm_engine.store.snapshot() as tx:
        [failed] = await tx.audit_entries(action="link_failed")
    assert failed["contract"] == "1000002"  # counted against today's contract: the same proof limit


async def test_an_unknown_legacy_reference_is_answered_like_an_unknown_contract(srm_engine):
    known = await _add_contract(srm_engine, "0193 017 183", user="a")
    unknown = await _add_contract(srm_engine, "0200 000 009", user="b")
    assert unknown.text == known.text  # the same proof question
    assert [b.label for b in unknown.buttons] == [b.label for b in known.buttons]
    for chat in (known, unknown):
        await chat.press("Montant")
        await chat.send("999,00")
    assert unknown.text == known.text and "ne correspond pas" in unknown.text
    # In Arabic too, and the unknown one is recorded on the number typed.
    ar_known = await _add_contract(srm_engine, "0193 017 183", lang="ar", user="c", lang_hint="ar")
    ar_unknown = await _add_contract(srm_engine, "0200 000 009", lang="ar", user="d", lang_hint="ar")
    assert ar_unknown.text == ar_known.text
    async with srm_engine.store.snapshot() as tx:
        contracts = [e["contract"] for e in await tx.audit_entries(action="link_failed")]
    assert sorted(contracts) == ["0200000009", "1000001"]


async def test_the_proof_limit_counts_legacy_and_current_numbers_together(srm_engine):
    limit = srm_engine.profile.linking.max_failed_proofs
    for i in range(limit):
        typed = "0193 017 183" if i % 2 else "1000001"
        chat = await _add_contract(srm_engine, typed, user=f"attacker{i}")
        await chat.press("Montant")
        await chat.send(f"{i + 1},00")
    late = await _add_contract(srm_engine, "0193 017 183", user="late")
    await late.press("Montant")
    await late.send("218,90")  # the right amount, refused: proof by amount is suspended on 1000001
    assert "la vérification par le montant est suspendue" in late.text
    assert await _links(srm_engine, late) == []


async def test_a_number_in_no_known_format_gets_the_format_message(srm_engine):
    for typed in ("12 34", "0193 017 183 0000"):  # no contract (6-7 digits), no old reference (6-12)
        chat = await _add_contract(srm_engine, typed, user=typed)
        assert "Merci de le retaper" in chat.text
        assert [b.label for b in chat.buttons] == ["🤷 Je ne connais pas mon numéro", "Annuler"]


# ---------------------------------------------------------------------- "is Lydec still my operator?"
ASKED = [
    "wach lydec mazal",
    "واش ليديك باقي",
    "Lydec c'est fini ?",
    "wach mazal lydec?",
    "l'ONEE c'est toujours mon fournisseur ?",
]


def test_the_transition_rule_is_narrow():
    import glob
    import json
    from datetime import date

    from conversations.understanding import _TRANSITION, normalize, understand

    for text in ASKED:
        u = understand(text, today=date(2026, 11, 23))
        assert (u.intent, u.entities.get("topic"), u.source) == ("help", "transition", "rules"), text
    for text in ("bghit nkhelles lydec", "encore une facture onee", "fatura dyal lydec", "واش مازال خاصني نخلص"):
        assert understand(text, today=date(2026, 11, 23)).entities.get("topic") is None, text
    # High precision: not one of the labelled customer messages reads as the question.
    labelled = [
        json.loads(line)["text"]
        for f in glob.glob("data/intents/*.jsonl")
        for line in Path(f).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert len(labelled) > 1000
    assert [m for m in labelled if _TRANSITION.search(normalize(m))] == []


async def test_customers_asking_whether_lydec_is_still_their_operator_get_the_explanation(srm_engine):
    from .chat import Chat

    darija = Chat(srm_engine, user="d")
    await darija.send("wach lydec mazal")
    assert "الشركة الجهوية متعددة الخدمات الدار البيضاء-سطات هي اللي كتوزع الماء والكهرباء" in darija.text
    assert "بلاصة ليديك" in darija.text
    arabic = Chat(srm_engine, user="a")
    await arabic.send("واش ليديك باقي")
    assert "منذ 1 أكتوبر 2024" in arabic.text
    french = Chat(srm_engine, user="f")
    await french.send("Lydec c'est fini ?")
    assert "Depuis le 1er octobre 2024, la SRM Casablanca-Settat assure la distribution" in french.text
    assert "la référence imprimée sur vos anciennes factures reste valable" in french.text
    # Asked in the middle of linking, it is answered and the question asked again.
    linking = await _add_contract(srm_engine, "lydec c'est fini ?", user="m")
    assert "Depuis le 1er octobre 2024" in linking.text
    await linking.send("0193 017 183")
    assert "Montant" in " ".join(b.label for b in linking.buttons)


async def test_the_onee_profile_says_onee_is_the_operator(engine):
    from .chat import Chat

    chat = Chat(engine)
    await chat.send("l'ONEE c'est toujours mon fournisseur ?")
    assert "C'est bien ONEE qui distribue votre eau et votre électricité" in chat.text
    ar = Chat(engine, user="ar")
    await ar.send("واش المكتب الوطني مازال")
    assert "المكتب الوطني للكهرباء والماء هو اللي كيوزع عليك الماء والكهرباء" in ar.text


# ---------------------------------------------------------------------- bills line by line
async def _srm_march_2025_bill(engine) -> None:
    """The published SRM bill's figures (86 kWh, 92.93 DH TTC) on Youssef's contract."""
    from datetime import date

    from storage import Bill

    async with engine.store.transaction() as tx:
        await tx.upsert_bill(
            Bill(
                "1574210424 GZ",
                "1000003",
                date(2025, 1, 31),
                date(2025, 2, 28),
                date(2025, 3, 5),
                date(2025, 3, 25),
                120200,
                120286,
                86,
                False,
                9293,
                0,
            )
        )


async def test_the_srm_bill_explanation_shows_its_lines_in_french(srm_engine):
    from .chat import Chat

    await _srm_march_2025_bill(srm_engine)
    chat = Chat(srm_engine, sender_phone="+212661234567")
    await chat.send("bonjour")
    await chat.send("mes factures")
    await chat.send("1000003")
    await chat.press("2025")
    text = chat.text.replace("\xa0", " ").replace("\u202f", " ")
    assert "86 kWh × 0,84 = 72,24 DH" in text
    assert "Location du compteur : 2,70 DH" in text and "Entretien du branchement : 3,57 DH" in text
    assert "TVA : 14,05 DH" in text
    assert "TVA 18 % sur l'énergie (72,24 DH) : 13,00 DH" in text
    assert "TVA 15 % sur Location du compteur (2,70 DH) : 0,41 DH" in text
    assert "Autres taxes : 0,37 DH" in text
    assert "92,93 DH" in text and "diffère" not in text  # computed as billed


async def test_the_srm_bill_explanation_in_arabic(srm_engine):
    from .chat import Chat

    await _srm_march_2025_bill(srm_engine)
    chat = Chat(srm_engine, sender_phone="+212661234567", lang_hint="ar")
    await chat.send("السلام")
    await chat.send("فواتيري")
    await chat.send("1000003")
    await chat.press("2025")
    text = chat.text.replace("\xa0", " ").replace("\u202f", " ")
    assert "كراء العداد" in text and "صيانة الربط" in text
    assert "الضريبة على القيمة المضافة 15٪ على كراء العداد" in text
    assert "رسوم أخرى" in text


# ---------------------------------------------------------------------- connection and transfer requests
async def _srm_agencies(engine) -> None:
    from storage import Agency

    async with engine.store.transaction() as tx:
        for city, name, address, phone, name_ar in (
            ("Casablanca", "Agence Maârif", "12 rue Abou Al Waqt", "0522 99 11 22", "وكالة المعاريف"),
            ("Mohammédia", "Agence Mohammédia Centre", "Boulevard Hassan II", "0523 32 10 10", "وكالة المحمدية"),
        ):
            await tx.upsert_agency(Agency(city, name, address, phone, "Lun-Ven 8h30-16h30", None, name_ar, None, None))


async def _requests(engine) -> list:
    async with engine.store.snapshot() as tx:
        return await tx.requests()


async def test_a_new_meter_asked_in_darija_lists_documents_and_agencies_and_files_an_appointment(srm_engine):
    from .chat import Chat

    await _srm_agencies(srm_engine)
    chat = Chat(srm_engine, user="new", lang_hint="ar")
    await chat.send("salam, bghit compteur jdid f mohammedia")
    text = chat.text
    assert "باش تطلب عداد جديد، جيب معاك للوكالة:" in text
    assert "• عقد الملكية أو عقد الكراء" in text and "رخصة البناء أو رخصة السكن" in text
    assert "وكالة المحمدية" in text and "0523 32 10 10" in text
    assert "Agence Maârif" not in text and "وكالة المعاريف" not in text  # only the customer's city
    await chat.press("موعد فالوكالة")
    assert "على أي رقم نتصل بك؟" in chat.text  # no phone known (not linked, not WhatsApp): asked
    await chat.send("0661 23 45 67")
    assert re.search(r"طلب ربط عداد جديد ديالك مسجل بالمرجع BR-2026-000001", chat.text)
    assert "+21266123••••" in chat.text
    [request] = await _requests(srm_engine)
    assert (request.reference, request.kind, request.status, request.contract) == (
        "BR-2026-000001",
        "connection",
        "pending",
        None,
    )
    assert request.details == {"city": "Mohammédia", "want": "appointment", "phone": "+212661234567"}


async def test_a_subscription_transfer_in_french_with_the_linked_contract(srm_engine):
    from .chat import Chat

    await _srm_agencies(srm_engine)
    chat = Chat(srm_engine, user="212612345678", channel="whatsapp", sender_phone="+212612345678")
    await chat.send("bonjour")
    await chat.send("Ajouter un contrat")  # linked by the WhatsApp number: 1000001 and 1000002, Casablanca
    await chat.send("1000001")
    await chat.send("je voudrais un changement de titulaire")
    text = chat.text
    assert "Pour reprendre un abonnement à votre nom, apportez à l'agence :" in text
    assert "• La dernière facture payée du compteur" in text
    assert "l'ancienne référence (Lydec)" in text
    assert "Agence Maârif" in text  # the linked contracts' city, not asked
    await chat.press("Être rappelé")  # the WhatsApp number is known: not asked
    assert "Votre demande de mutation d'abonnement est enregistrée sous la référence MU-2026-000001" in chat.text
    assert "un conseiller vous rappellera au +21261234•••• (Casablanca)" in chat.text
    [request] = await _requests(srm_engine)
    assert request.kind == "transfer" and request.details["want"] == "callback"
    # It is tracked like any request.
    await chat.send("suivi MU-2026-000001")
    assert "MU-2026-000001" in chat.text and "demande de mutation d'abonnement" in chat.text


async def test_the_connection_journey_from_its_question_with_a_typed_city(srm_engine):
    from .chat import Chat

    await _srm_agencies(srm_engine)
    chat = Chat(srm_engine, user="q")
    await chat.send("bonjour")
    await chat.send("un nouveau branchement svp")
    assert "Dans quelle ville" in chat.text
    await chat.send("Tombouctou")
    assert "Je ne trouve pas cette ville" in chat.text
    await chat.send("casa")
    assert "Pour un nouveau compteur, apportez à l'agence :" in chat.text and "Agence Maârif" in chat.text
    await chat.press("Menu")
    assert await _requests(srm_engine) == []


async def test_a_lydec_reference_typed_in_arabizi_darija_is_answered_in_arabic(srm_engine):
    from .chat import Chat

    chat = Chat(srm_engine, user="arabizi", lang_hint="ar")
    await chat.send("salam")
    await chat.press("إضافة عقد")
    await chat.send("ha ref dyali f lfatura l9dima dyal lydec: 0193 017 183")
    await chat.press("مبلغ آخر فاتورة")
    await chat.send("218,90")
    assert "العقد ديالك عند ليديك رقم 0193 017 183 ولّى دابا هو العقد 1000001" in chat.text
    assert await _links(srm_engine, chat) == ["1000001"]


def test_the_srm_demo_links_by_the_lydec_reference(tmp_path):
    done = run_addad(["demo", "--operator", "srm-cs", "--lang", "fr"], ["8", "0193 017 183"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (
        "Votre contrat Lydec 0193 017 183 est désormais le contrat 1000001 chez SRM Casablanca-Settat." in done.stdout
    )
    arabic = run_addad(["demo", "--operator", "srm-cs", "--lang", "ar"], ["wach lydec mazal"], tmp_path)
    assert "منذ 1 أكتوبر 2024" in arabic.stdout


def test_vat_by_year_is_validated(tmp_path):
    path = _broken(tmp_path, 'vat_by_year = { 2024 = "16"', 'vat_by_year = { 2024 = "160"')
    with pytest.raises(ProfileError, match=r"tariffs\.0\.vat_by_year: Value error, vat_by_year: 2024 = 160"):
        load_profile(path)


async def test_the_pre_bill_of_a_reading_shows_the_srm_lines(srm_engine):
    from datetime import date

    from conversations.tariff import prebill

    from .test_reading import reading_chat

    chat = await reading_chat(srm_engine)
    await chat.send("je veux envoyer mon index")
    await chat.press("1000001")
    await chat.send("45 340")
    await chat.press("Sans photo")
    await chat.press("Confirmer")
    text = chat.text.replace("\xa0", " ")
    assert "  • 100 kWh × 0,84 = 84,00 DH" in text and "  • 30 kWh × 1,02 = 30,60 DH" in text
    bill = prebill(srm_engine.profile.tariff("BT-RES"), date(2026, 10, 31), date(2026, 11, 23), 130)
    rental, upkeep = bill.fees
    [levy] = bill.levies
    assert f"Location du compteur : {fmt(rental.amount_ht)} DH" in text
    assert f"Entretien du branchement : {fmt(upkeep.amount_ht)} DH" in text
    assert f"Autres taxes : {fmt(levy.amount)} DH" in text and levy.amount == 28  # 0.37 × 0.77 month
    assert f"Total estimé TTC : {fmt(bill.total_ttc)} DH" in text


def fmt(centimes: int) -> str:
    return f"{centimes // 100},{centimes % 100:02d}"
