"""The README's command lines work as written in a second shell, where the venv is not on PATH."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .chat import Chat, open_engine

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
ADDAD = ROOT / ".venv" / "bin" / "addad"


def _commands() -> list[str]:
    """Command lines a reader copies: fenced shell lines and inline code outside the reference table."""
    fenced = [line for block in re.findall(r"```sh\n(.*?)```", README, re.S) for line in block.splitlines()]
    fenced += [
        line
        for block in re.findall(r"```\n(.*?)```", README, re.S)
        for line in block.splitlines()
        if line.startswith("$ ")
    ]  # a transcript's typed command
    prose = "\n".join(line for line in README.splitlines() if not line.startswith("|"))
    inline = re.findall(r"(?<!`)`([^`\n]+(?:\n[^`\n]+)?)`(?!`)", re.sub(r"```.*?```", "", prose, flags=re.S))
    return [c for c in fenced + inline if re.search(r"(?<![\w/.-])addad \w", c) or "bin/addad" in c]


def test_every_copied_addad_command_names_the_venv_entry_point():
    commands = _commands()
    assert any("requests approve" in c for c in commands)
    bare = [c for c in commands if re.search(r"(?<![\w/.-])addad \w", c)]
    assert bare == [], f"needs the venv on PATH: {bare}"


@pytest.mark.skipif(not ADDAD.exists(), reason="no .venv/bin/addad in this checkout")
async def test_the_approve_line_works_in_a_second_shell(tmp_path):
    # The demo folder with a pending instalment plan, filed the way the README tells.
    (tmp_path / "addad-demo").mkdir()
    engine = await open_engine(tmp_path / "addad-demo" / "addad-demo.sqlite3")
    try:
        chat = Chat(engine, channel="console", sender_phone="+212612345678")
        await chat.send("bonjour")
        await chat.press("➕")
        await chat.send("1000001")
        await chat.send("je voudrais payer en 3 fois")
        await chat.press("Perte d'emploi")
        await chat.press("Envoyer la demande")
        assert "IN-2026-000001" in chat.text
    finally:
        await engine.store.close()
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    line = next(c for c in _commands() if "requests approve" in c)
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}  # a fresh shell: no venv
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", line],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "IN-2026-000001: approved" in done.stdout
    engine = await open_engine(tmp_path / "addad-demo" / "addad-demo.sqlite3")
    try:
        async with engine.store.snapshot() as tx:
            assert (await tx.request("IN-2026-000001")).status == "approved"
    finally:
        await engine.store.close()
