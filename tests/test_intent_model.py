"""The trained intent model (conversations/intent_model.py): the labelled data set it learns from
(data/intents/), the shipped file against a retrain, what it says of customers' messages, and
its held-out accuracy, printed in the terminal summary (tests/summary.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from conversations import intent_model, train_intents
from conversations.understanding import INTENTS, normalize, rules_only, understand

from . import summary

ROOT = Path(__file__).resolve().parent.parent
ENTITY_TYPES = {"index": int, "months": int, "contract": str, "date": str, "service": str, "reference": str}
GROUPS = ("darija_ar", "arabizi", "fr", "msa", "mixed")
TODAY = train_intents.TODAY


def _rows(name):
    return train_intents.load_rows(ROOT / "data" / "intents" / f"{name}.jsonl")


# --------------------------------------------------------------------------- the data set


def test_data_set_is_big_labelled_and_split_by_the_hash_rule():
    train, held = _rows("train"), _rows("heldout")
    rows = train + held
    assert len(rows) >= 2000
    assert len(held) >= 700  # frozen (about a quarter of the set when it was drawn); train grows
    for r in rows:
        assert r["intent"] in INTENTS, r
        assert r["group"] in GROUPS, r
        assert r["lang"] == ("fr" if r["group"] == "fr" else "ar"), r
        for k, v in r["entities"].items():
            assert isinstance(v, ENTITY_TYPES[k]), r
        if "date" in r["entities"]:
            date.fromisoformat(r["entities"]["date"])
        if "service" in r["entities"]:
            assert r["entities"]["service"] in ("electricity", "water"), r
    # held-out was chosen by the rule the README states (train may grow past it), and no
    # message is on both sides
    for r in held:
        assert int.from_bytes(hashlib.sha256(normalize(r["text"]).encode()).digest()[:8], "big") % 100 < 25, r
    assert not {normalize(r["text"]) for r in train} & {normalize(r["text"]) for r in held}
    # every intent in every group, on both sides
    for part in (train, held):
        seen = Counter((r["intent"], r["group"]) for r in part)
        assert all(seen[i, g] for i in INTENTS for g in GROUPS), [
            (i, g) for i in INTENTS for g in GROUPS if not seen[i, g]
        ]


def test_dev_set_is_apart_from_train_and_held_out():
    """data/intents/dev.jsonl (batch 11's author) measures choices: never trained on, and no
    message of it is, even near (train_intents.near_key), in train or held-out."""
    dev = _rows("dev")
    assert len(dev) >= 400
    assert all(train_intents.row_problem(r) is None for r in dev), [r for r in dev if train_intents.row_problem(r)]
    assert {r["group"] for r in dev} == set(GROUPS)
    keys = [train_intents.near_key(r["text"]) for r in dev]
    assert len(set(keys)) == len(keys)
    others = {train_intents.near_key(r["text"]) for r in _rows("train") + _rows("heldout")}
    assert not set(keys) & others
    assert not {r["text"] for r in dev} & {r["text"] for r in train_intents.training_rows()}


def test_second_dev_set_is_apart_from_every_other_set():
    """data/intents/dev2.jsonl (batches 12-13's two authors) is a second development set: well
    formed, never trained on, and no message of it near one of train, held-out or dev."""
    dev2 = _rows("dev2")
    assert len(dev2) >= 500
    assert all(train_intents.row_problem(r) is None for r in dev2)
    assert {r["group"] for r in dev2} == set(GROUPS)
    keys = [train_intents.near_key(r["text"]) for r in dev2]
    assert len(set(keys)) == len(keys)
    others = {train_intents.near_key(r["text"]) for r in _rows("train") + _rows("heldout") + _rows("dev")}
    assert not set(keys) & others
    trained = {train_intents.near_key(r["text"]) for r in train_intents.training_rows()}
    assert not set(keys) & trained


def test_new_batches_are_numbered_and_checked():
    train = _rows("train")
    batches = Counter(r.get("batch", 0) for r in train)
    assert batches[7] >= 700 and batches[8] >= 400 and batches[9] >= 400 and batches[10] >= 350, batches
    assert all(train_intents.row_problem(r) is None for r in train)


def test_adding_a_batch_drops_duplicates_and_refuses_bad_rows(tmp_path, monkeypatch):
    """`python -m conversations.train_intents --add FILE --batch N` as an operator runs it on a
    labelled export: a real file in, the rows that are new and well formed appended."""
    train = tmp_path / "train.jsonl"
    train.write_text(
        json.dumps({"text": "combien je dois", "intent": "balance", "lang": "fr", "entities": {}, "group": "fr"})
        + "\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(train_intents, "TRAIN", train)
    monkeypatch.setattr(train_intents, "DEV", tmp_path / "dev.jsonl")  # absent: nothing to compare
    monkeypatch.setattr(train_intents, "DEV2", tmp_path / "dev2.jsonl")
    held_text = _rows("heldout")[0]["text"]
    new = tmp_path / "new.jsonl"
    rows = [
        {"text": "Combien je dois ?", "intent": "balance", "lang": "fr", "entities": {}, "group": "fr"},  # near dup
        {"text": held_text, "intent": "unknown", "lang": "ar", "entities": {}, "group": "arabizi"},  # held-out
        {"text": "index 12877", "intent": "reading", "lang": "fr", "entities": {"index": 12877}, "group": "fr"},
        {"text": "index 45210", "intent": "reading", "lang": "fr", "entities": {"index": 45210}, "group": "fr"},
        {"text": "ok", "intent": "unknown", "lang": "ar", "entities": {"hint": "ar"}, "group": "arabizi"},
        {"text": "salam", "intent": "hello", "lang": "ar", "entities": {}, "group": "arabizi"},
        {"text": "bonjour", "intent": "greeting", "lang": "ar", "entities": {}, "group": "fr"},
        {"text": "👍", "intent": "unknown", "lang": "fr", "entities": {}, "group": "fr", "hint": "fr"},
    ]
    new.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    lines: list[str] = []
    kept = train_intents.add_batch(new, 12, train, out=lines.append)
    assert [r["text"] for r in kept] == ["index 12877", "👍"]
    assert [json.loads(x) for x in train.read_text(encoding="utf-8").splitlines()[1:]] == [
        {
            "text": "index 12877",
            "intent": "reading",
            "lang": "fr",
            "entities": {"index": 12877},
            "group": "fr",
            "batch": 12,
        },
        {"text": "👍", "intent": "unknown", "lang": "fr", "entities": {}, "group": "fr", "hint": "fr", "batch": 12},
    ]
    assert "duplicates dropped: {'train': 1, 'held-out': 1, 'this file': 1}; refused: 3" in lines[0]
    assert any("entity hint" in x for x in lines) and any("intent 'hello'" in x for x in lines)
    assert any("lang 'ar' for group fr" in x for x in lines)


def test_data_set_holds_the_hard_number_cases():
    by_text = {r["text"]: r for r in _rows("train") + _rows("heldout")}
    r = by_text["lindex howa 52 310 o numéro dyal contrat 1077321"]
    assert (r["intent"], r["entities"]) == ("reading", {"index": 52310, "contract": "1077321"})
    assert by_text["الانديكس هو 0031207"]["entities"] == {"index": 31207}
    assert by_text["daz 150 kwh o lfactura walat nar"]["entities"] == {}
    assert by_text["بغيت نخلص على خمسة ديال الشهور"]["entities"] == {"months": 5}
    assert by_text["arba3 d chhour 3afak"]["entities"] == {"months": 4}
    assert by_text["على 12 شهر"]["entities"] == {"months": 12}
    assert by_text["je peux etaler ma facture sur dix mois"]["entities"] == {"months": 10}
    r = by_text["est ce que je peux payer encore une fois le mois prochain au lieu de maintenant"]
    assert (r["intent"], r["entities"]) == ("deferral", {})
    assert by_text["علاش الفاتورة ديال الضو طلعات لـ 450 درهم"]["entities"] == {"service": "electricity"}


# --------------------------------------------------------------------------- the shipped file


def test_shipped_model_was_trained_on_todays_data():
    """Fails when train.jsonl, the project set, normalize() or CONFIG changed and nobody ran
    `python -m conversations.train_intents` (needs no scikit-learn)."""
    header = intent_model.load().header
    rows = train_intents.training_rows()
    assert header["rows"] == len(rows)
    assert header["fingerprint"] == train_intents.fingerprint(rows, train_intents.CONFIG), (
        "data or normalize() changed: run python -m conversations.train_intents"
    )


def test_shipped_model_is_a_retrain():
    sklearn = pytest.importorskip(
        "sklearn", reason="scikit-learn is not installed (pip install -e '.[train]'): the retrain comparison needs it"
    )
    import numpy
    import scipy

    header = intent_model.load().header
    versions = {"scikit-learn": sklearn.__version__, "scipy": scipy.__version__, "numpy": numpy.__version__}
    shipped = intent_model.MODEL_PATH.read_bytes()
    retrained = train_intents.build()
    if versions == header["trained_with"]:
        assert retrained == shipped, (
            "the shipped model is not what the data trains: run python -m conversations.train_intents"
        )
        assert train_intents.build() == retrained  # and training is deterministic
    else:
        # other library versions may round a few weights the other way: the decisions must agree
        tmp = intent_model.Model(*_parse(retrained))
        rows = train_intents.training_rows()
        same = sum(tmp.scores(r["text"])[0][0] == intent_model.predict(r["text"])[0] for r in rows)
        assert same >= 0.99 * len(rows), (versions, header["trained_with"])


def _parse(data: bytes):
    m = intent_model.from_bytes(data)
    return m.header, m.table


def test_inference_imports_nothing_heavy():
    code = (
        "import sys; from conversations import intent_model as m; r = m.predict('salam'); "
        "print([n for n in ('numpy', 'scipy', 'sklearn') if sys.modules.get(n) is not None], r[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split("] ")[0] + "]" == "[]"


# --------------------------------------------------------------------------- what customers write


@pytest.mark.parametrize(
    "text, intent",
    [
        # deferral read as balance was the rules' most frequent error: a month count wins
        ("bghit nkhelles lfatura 3la 4 chhour", "deferral"),
        ("je veux étaler ma facture sur 3 mois", "deferral"),
        ("بغيت نخلص الفاتورة على جوج شهور", "deferral"),
        ("خسرت الخدمة وما قدرتش نخلص", "deferral"),
        # the prepaid card empty at night, in words the rules never listed
        ("lcarte dyal lcompteur salat f lil", "prepaid"),
        ("الكارط تقاداو و الدراري فالظلام", "prepaid"),
        ("ma carte compteur est vide", "prepaid"),
        # reading with an index and a contract in one message
        ("lindex dyali 41 560 w contrat 1034567", "reading"),
        ("العداد ديال الما فيه 2 310", "reading"),
        # a person, an outage
        ("bghit nhder m3a chi mowadaf", "agent"),
        ("الضو مقطوع فالحومة من البارح", "agent"),
        ("plus d'eau chez moi depuis ce matin", "agent"),
        # estimated bill, the 150 kWh band
        ("3tawni facture estimée w ma jawch y9raw lcompteur", "balance"),
        ("pourquoi je paie la tranche au dessus de 150 kwh", "balance"),
        # agencies in cities, tracking, social words, off-topic
        ("fin kayna l'agence f safi", "agency"),
        ("الوكالة ديال تطوان فين جات", "agency"),
        ("fin wsel talab dyal ta9sit", "track"),
        ("السلام عليكم ورحمة الله", "greeting"),
        ("allah ybarek fik khouya", "greeting"),
        ("chkoun rbe7 lmatch dyal lbare7", "unknown"),
        ("raconte moi une blague", "unknown"),
        ("en français svp", "language"),
        ("بلاش، ما بغيتش نكمل", "cancel"),
    ],
)
def test_customer_messages(text, intent):
    got, p, runner_up, p2 = intent_model.predict(text)
    assert got == intent, (text, got, p, runner_up, p2)
    assert 0 <= p2 <= p <= 1 and runner_up != got


@pytest.mark.parametrize(
    "text",
    [
        "je veux payer la facture en 3 fois",
        "bghit nkhelles 3la 3 chhour",
        "نخلص الفاتورة على 6 شهور",
        "wach n9der nkhelles lfactura f 2 mrat",
    ],
)
def test_paying_with_a_month_count_is_deferral_or_a_close_call_with_balance(text):
    """ "Pay" outweighed a month count in the rules. The model says deferral, or puts deferral
    and balance neck and neck: the case where the bot asks with two buttons (issue 17)."""
    got, p, runner_up, p2 = intent_model.predict(text)
    assert got == "deferral" or ({got, runner_up} == {"deferral", "balance"} and p - p2 < 0.2), (got, p, runner_up, p2)


@pytest.mark.parametrize(
    "text", [None, 42, b"bytes", "", "   ", "👍", "\x00\x01", "\ud800abc", "؟؟", "9" * 5000, "salam " * 2000]
)
def test_predict_takes_anything(text):
    intent, p, runner_up, p2 = intent_model.predict(text)
    assert intent in INTENTS and runner_up in INTENTS and intent != runner_up
    assert 0 <= p2 <= p <= 1


def test_packed_sums_are_the_plain_sums(monkeypatch):
    """raw_scores packs each bucket's twelve weights into one integer to add them in C; each
    block's sums are exactly the plain loop's (for each class, its int8 weight summed over the
    block's buckets), for every labelled message and for long and odd ones, also once its
    bounded cache of packed buckets has been emptied."""
    m = intent_model.load()
    monkeypatch.setattr(intent_model, "PACKED_CACHE", 512)  # so the emptying happens here too
    C = len(m.classes)
    texts = [r["text"] for name in ("heldout", "dev", "dev2") for r in _rows(name)]
    texts += ["x" * 3000, "ب " * 600, "salam " * 2000, "", "👍", "0" * 40, "مرحبا" * 120]
    for t in texts:
        for block in m.features(t):
            assert m.block_sum(block) == [sum(m.table[f * C + c] for f in block) for c in range(C)], t
    assert len(m._packed) <= 512


def test_no_letters_is_unknown():
    assert intent_model.predict("👍")[:2] == ("unknown", 1.0)
    assert intent_model.predict("")[:2] == ("unknown", 1.0)


# --------------------------------------------------------------------------- held-out figures


def test_held_out_accuracy_and_calibration():
    """A floor under today's held-out figures (docs/understanding.md), printed with them."""
    LINES = summary.section("intent model, held-out set")
    rows = _rows("heldout")
    preds = [intent_model.predict(r["text"]) for r in rows]
    ok = [p[0] == r["intent"] for p, r in zip(preds, rows, strict=False)]
    per_group = {g: [k for k, r in zip(ok, rows, strict=False) if r["group"] == g] for g in GROUPS}
    LINES.clear()
    LINES.append(
        f"{sum(ok)}/{len(ok)} = {100 * sum(ok) / len(ok):.1f} %; "
        + ", ".join(f"{g} {100 * sum(v) / len(v):.1f} %" for g, v in per_group.items())
    )
    sure = [k for k, p in zip(ok, preds, strict=False) if p[1] >= 0.9]
    LINES.append(f"with probability >= 0.9: {len(sure)} messages, {100 * sum(sure) / len(sure):.1f} % right")
    rules = [rules_only(r["text"], r.get("hint"), today=TODAY).intent == r["intent"] for r in rows]
    LINES.append(f"rules alone (understanding.rules_only) on the same messages: {100 * sum(rules) / len(rules):.1f} %")
    bot = [understand(r["text"], r.get("hint"), today=TODAY).intent == r["intent"] for r in rows]
    bot_group = {g: [k for k, r in zip(bot, rows, strict=False) if r["group"] == g] for g in GROUPS}
    LINES.append(
        f"as the bot reads them (understanding.understand): {100 * sum(bot) / len(bot):.1f} %; "
        + ", ".join(f"{g} {100 * sum(v) / len(v):.1f} %" for g, v in bot_group.items())
    )
    assert sum(ok) / len(ok) >= 0.91
    assert sum(bot) / len(bot) >= 0.91 and sum(bot) > sum(rules)
    for g in GROUPS:
        assert sum(per_group[g]) / len(per_group[g]) >= 0.88, g
        assert sum(bot_group[g]) / len(bot_group[g]) >= 0.88, g
    assert sum(sure) / len(sure) >= 0.97


def test_the_measured_alternatives_spell_as_customers_write():
    """--select's candidates (docs/understanding.md, understanding 3): a Darija message in
    Arabic letters as an arabizi author writes it, and French SMS and doubled arabizi letters
    folded; the shipped model (understanding 4) reads "pk" as "pourquoi" and "nkhelless" as
    "nkheles"."""
    assert train_intents.to_arabizi("بغيت نخلص الفاتورة ديالي") == "bghit nkhls lfatora diali"
    assert train_intents.to_arabizi("واش الوكالة محلولة؟") == "wach lokala m7lola?"
    assert [intent_model.fold(w) for w in ("pk", "jpp", "nkhelless", "فاتوره")] == [
        "pourquoi",
        "je peux pas",
        "nkheles",
        "فاتوره",
    ]
    rows = [{"text": "بغيت نخلص", "intent": "balance", "group": "darija_ar"}, {"text": "ok", "group": "fr"}]
    assert [r["text"] for r in train_intents.augmented(rows)] == ["bghit nkhls"]
    assert intent_model.load().folded
    assert intent_model.predict("pk la facture tjr elevee") == intent_model.predict(
        "pourquoi la facture toujours elevee"
    )
    assert intent_model.predict("bghit nkhelless") == intent_model.predict("bghit nkheles")


def test_suspects_lists_contradictory_near_duplicates(tmp_path, monkeypatch):
    """`--suspects` (the label review of understanding 3): two training rows that are the same
    example by near_key with different labels are printed together for the reviewer."""
    pytest.importorskip("sklearn")
    base = [
        ("combien je dois", "balance"),
        ("mon solde svp", "balance"),
        ("je veux payer en 3 fois", "deferral"),
        ("payer plus tard", "deferral"),
        ("Combien je dois ?", "deferral"),  # the slip: the first row, punctuated
    ]
    rows = [{"text": t, "intent": i, "lang": "fr", "entities": {}, "group": "fr"} for t, i in base]
    for n in range(12):  # enough rows of each label for five folds
        rows.append(
            {"text": f"facture numero {n} combien", "intent": "balance", "lang": "fr", "entities": {}, "group": "fr"}
        )
        rows.append(
            {"text": f"delai de paiement {n} svp", "intent": "deferral", "lang": "fr", "entities": {}, "group": "fr"}
        )
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    empty = tmp_path / "none.jsonl"
    empty.write_text("", encoding="utf-8")
    for name, path in (("TRAIN", train), ("HELDOUT", empty), ("DEV", empty), ("DEV2", empty), ("PROJECT", empty)):
        monkeypatch.setattr(train_intents, name, path)
    lines: list[str] = []
    train_intents.suspects(out=lines.append)
    clash = lines.index("\n1 near_key groups in train with different labels:")
    assert lines[clash + 1] == "  1: balance 'combien je dois' | 5: deferral 'Combien je dois ?'"


def test_leave_one_batch_out_keeps_each_author_and_their_near_duplicates_out(monkeypatch):
    """`--by-batch` (understanding 4): a batch is scored by a model that saw no row of it, and
    no other author's near duplicate of one of its rows ("Combien je dois ?" for "combien je
    dois"); the project set is trained on every time and never scored."""
    pytest.importorskip("sklearn")

    def row(text, intent, batch=None, group="fr"):
        return {"text": text, "intent": intent, "lang": "fr", "entities": {}, "group": group, "batch": batch}

    words = {0: ("eau", "mars", "avril", "mai"), 3: ("lumiere", "juin", "juillet", "aout")}
    rows = [row(f"facture {w} combien", "balance", b) for b in (0, 3) for w in words[b]]
    rows += [row(f"delai de paiement {w} svp", "deferral", b) for b in (0, 3) for w in words[b]]
    rows += [row("combien je dois", "balance", 0), row("Combien je dois ?", "balance", 3)]
    rows += [row("payer plus tard", "deferral", None, group="project")]
    seen: list[set[str]] = []
    real_fit = train_intents.fit
    monkeypatch.setattr(train_intents, "fit", lambda rs, cfg: seen.append({r["text"] for r in rs}) or real_fit(rs, cfg))
    result = train_intents.leave_one_batch_out(rows, train_intents.CONFIG)
    assert sorted(result) == [0, 3]
    for (b, (left, z)), trained in zip(result.items(), seen, strict=True):
        assert {r["batch"] for r in left} == {b} and len(z) == len(left)
        assert not trained & {"combien je dois", "Combien je dois ?"}  # neither twin, either way
        assert "payer plus tard" in trained and not trained & {r["text"] for r in left}
    summary = train_intents.lobo_summary(result)
    assert summary["per_batch"][0] == summary["L0"] and 0 <= summary["mean"] <= 1
    assert summary["per_group"].keys() == {"fr"}


def test_the_understanding_4_candidates_spell_as_other_authors_write():
    """The augmentations measured under understanding 4's rule: an arabizi message in Arabic
    letters (the schwa unwritten, digits for letters read back), and a respelt Latin message."""
    assert train_intents.to_arabic("bghit nkhelles lfatora dyal lma") == "بغيت نخلس لفاتورا ديال لما"
    assert train_intents.to_arabic("3afak 9rib l 7ay 12") == "عافاك قريب ل حاي 12"
    assert train_intents.respell("bonjour merci beaucoup", french=True) == "bjr mrci bcp"
    assert train_intents.respell("wach kayna chi wakala 9rib") == "wash kayna shi wakala qrib"
    rows = [
        {"text": "wach kayna chi wakala 9rib", "intent": "agency", "group": "arabizi"},
        {"text": "واش كاينة", "intent": "agency", "group": "darija_ar"},
    ]
    made = train_intents.augmented(rows, {"augment_arabic": True, "augment_respell": True})
    assert [(r["text"], r["group"]) for r in made] == [
        ("واش كاينا شي واكالا قريب", "darija_ar"),
        ("wash kayna shi wakala qrib", "arabizi"),
    ]
