"""`addad demo` and `addad console` as a person runs them: real processes, typed lines."""

from __future__ import annotations

import os
import subprocess
import sys

from storage import open_store

from .chat import seed


def run_addad(args: list[str], lines: list[str], cwd, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input="\n".join(lines) + "\n",
        text=True,
        capture_output=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.getcwd(), **env},
    )


def test_demo_opens_a_chat_as_the_demo_customer(tmp_path):
    done = run_addad(["demo", "--lang", "fr"], ["2", "1000001"], tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Démo : vous êtes Fatima Zahra Bennani" in out
    assert "  2. 🧾 Mes factures, solde" in out  # buttons as numbered choices
    assert "Le contrat 1000001 (électricité, Casablanca) est maintenant relié" in out
    assert "Total à payer" in out
    assert "Au revoir" in out
    assert "Traceback" not in done.stderr
    assert (tmp_path / "addad-demo" / "addad-demo.sqlite3").exists()
    assert (tmp_path / "addad-demo" / "contracts.csv").exists()
    # A second demo reuses the database and remembers the conversation's link. Its first menu is
    # the reminders question, owed since the link (alone: "3" is its "Non merci"), then the menu.
    again = run_addad(["demo", "--lang", "fr"], ["3", "2"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert "  3. 🔕 Non merci" in again.stdout and "nous ne vous enverrons plus de rappels" in again.stdout
    assert "Total à payer" in again.stdout and "reliez d'abord" not in again.stdout
    # --lang is the person's explicit choice, even over the language the chat used before.
    arabic = run_addad(["demo", "--lang", "ar"], ["2"], tmp_path)
    assert "المبلغ الإجمالي المستحق" in arabic.stdout


async def test_console_in_arabic_on_the_configured_database(tmp_path):
    db = tmp_path / "prod.sqlite3"
    store = await open_store(db)
    try:
        await seed(store)
    finally:
        await store.close()
    done = run_addad(
        ["console", "--phone", "0661234567", "--lang", "ar"],
        ["بغيت نخلص الفاتورة شحال خاصني", "1000003", "/cancel"],
        tmp_path,
        ADDAD_DATABASE=str(db),
    )
    assert done.returncode == 0, done.stderr
    assert "مرحبا بك" in done.stdout
    assert "العقد 1000003 (الكهرباء، الرباط) مربوط الآن" in done.stdout
    assert "لا توجد أي فاتورة غير مؤداة" in done.stdout
    assert "إلى اللقاء" in done.stdout


def test_console_rejects_a_bad_phone_in_one_line(tmp_path):
    done = run_addad(["console", "--phone", "12ab"], [], tmp_path, ADDAD_DATABASE=str(tmp_path / "x.sqlite3"))
    assert done.returncode == 2
    assert done.stderr.strip().startswith("addad: --phone:") and "Traceback" not in done.stderr


async def test_console_shows_no_direction_marks_bullets_schedules_and_says_goodbye_in_the_current_language(tmp_path):
    import re

    db = tmp_path / "prod.sqlite3"
    store = await open_store(db)
    try:
        await seed(store)
    finally:
        await store.close()
    done = run_addad(
        ["console", "--phone", "+212612345678", "--lang", "fr"],
        ["facilités de paiement", "1000001", "en 3 mois", "1", "/language", "1", "شحال خاصني نخلص"],
        tmp_path,
        ADDAD_DATABASE=str(db),
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # The instalment schedule is bulleted; only the choices are numbered.
    assert re.search(r"^  • Échéance 1, le \d", out, re.M) and re.search(r"^  • Échéance 3, le \d", out, re.M)
    assert "  1. ✅ Envoyer la demande\n  2. Annuler" in out
    assert not re.search(r"^\s*\d+\. \d", out, re.M)  # no numbered line that is a date
    # Arabic with references and amounts, in texts and button labels: no invisible marks printed.
    assert "مرجع الفاتورة: F-2026-09-1" in out and "المبلغ الإجمالي المستحق" in out
    assert "📄 أكتوبر 2026 · 1000002" in out and "📄 شتنبر 2026 · 1000001" in out
    assert not re.search("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", out)
    # Switched to Arabic: the goodbye is Arabic too.
    assert out.rstrip().endswith("إلى اللقاء 👋") and "Au revoir" not in out


def test_the_demos_meter_photo_is_kept_beside_the_demo_database(tmp_path):
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 200, 200)).save(tmp_path / "meter.jpg")
    env = {k: "" for k in ("ADDAD_DATABASE", "ADDAD_MEDIA_DIR")}
    lines = ["bghit nsift l index", "1000001", "30150", f"/photo {tmp_path / 'meter.jpg'}", "تأكيد"]
    done = run_addad(["demo", "--lang", "ar"], lines, tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert "المرجع: RL-" in done.stdout
    kept = [p for p in (tmp_path / "addad-demo" / "media").rglob("*") if p.is_file()]
    assert len(kept) == 1 and not (tmp_path / "media").exists()
