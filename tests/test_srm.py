"""Issue 24: the SRM Casablanca-Settat profile, its demo, legacy references and the transition."""

from __future__ import annotations

import re

import pytest

from conversations.profile import ProfileError, bundled_profiles, load_profile, profile_path

from .test_console import run_addad


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
