"""The web workspace over real HTTP on 127.0.0.1: accounts, sessions, CSRF, roles, headers,
the sign-in throttle and the audit log, in French and Arabic."""

from __future__ import annotations

import subprocess
import sys

import pytest
from yarl import URL

from bot.web import app as web_app
from storage import open_store

from .chat import Clock, seed
from .web_harness import PASSWORD, Browserish, add_account, serve_workspace


@pytest.fixture
async def served(tmp_path):
    clock = Clock()
    store = await open_store(tmp_path / "web.sqlite3", clock=clock)
    await seed(store)
    await add_account(store, "amina", "agent")
    await add_account(store, "karim", "supervisor")
    async with serve_workspace(store, clock) as s:
        yield s
    await store.close()


async def test_a_page_without_a_session_is_sent_to_sign_in_and_back(served):
    async with served.client() as c:
        page = await c.get("/web/requests?status=pending")
        assert URL(page.url).path == "/web/signin" and URL(page.url).query["next"] == "/web/requests?status=pending"
        assert "Connexion" in page.plain()
        page = await c.post("/web/signin", {"name": "amina", "password": PASSWORD, "next": "/web/signin-done"})
        assert page.url.endswith("/web/signin-done")  # a workspace page (here one that does not exist)
        assert page.status == 404 and "Cette page n'existe pas." in page.plain()


async def test_sign_in_sets_a_hardened_cookie_and_sign_out_ends_the_session(served):
    async with served.client() as c:
        await c.get("/web/signin")
        async with c.session.post(
            served.url + "/web/signin",
            data={"name": "Amina", "password": PASSWORD, "csrf": c.last.csrf, "next": "/web/"},
            allow_redirects=False,
        ) as r:
            assert r.status == 302
            cookie = r.cookies["addad_session"]
            assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Strict"
            assert cookie["path"] == "/web" and int(cookie["max-age"]) == 8 * 3600
            token = cookie.value
        async with served.store.snapshot() as tx:
            entries = await tx.audit_entries(action="web_signin")
            # the token is stored only as its HMAC: the database file signs nobody in
            rows = await tx._all("SELECT token_hash FROM web_sessions")
        assert entries[-1]["actor"] == "web:amina" and entries[-1]["details"]["address"] == "127.0.0.1"
        assert rows and token not in rows[0][0]
        page = await c.get("/web/")
        assert "amina · agent" in page.plain()
        page = await c.post("/web/signout", {})
        assert page.url.endswith("/web/signin")
        page = await c.get("/web/")  # the cookie, even if kept, names no session any more
        assert page.url.startswith(served.url + "/web/signin")
    # the old cookie replayed by someone who copied it
    async with Browserish(served.url) as other:
        other.jar.update_cookies({"addad_session": token})
        page = await other.get("/web/")
        assert "/web/signin" in page.url


async def test_a_wrong_password_is_refused_then_throttled_even_with_the_right_one(served):
    async with served.client() as c:
        await c.get("/web/signin")
        for _ in range(5):
            page = await c.post("/web/signin", {"name": "amina", "password": "guess-guess"})
            assert page.status == 401 and "Identifiant ou mot de passe incorrect." in page.plain()
        page = await c.post("/web/signin", {"name": "amina", "password": PASSWORD})
        assert page.status == 429 and "Trop d'essais. Réessayez dans 15 minutes." in page.plain()
        served.clock.advance(minutes=16)
        page = await c.post("/web/signin", {"name": "amina", "password": PASSWORD})
        assert page.status == 200 and "amina · agent" in page.plain()
    async with served.store.snapshot() as tx:
        actions = [e["action"] for e in await tx.audit_entries() if e["actor"] == "web:amina"]
    assert actions == ["web_signin_failed"] * 5 + ["web_signin_throttled", "web_signin"]


async def test_one_address_guessing_many_names_is_throttled(served):
    async with served.client() as c:
        await c.get("/web/signin")
        for i in range(20):
            await c.post("/web/signin", {"name": f"user{i}", "password": "guess-guess"})
        page = await c.post("/web/signin", {"name": "karim", "password": PASSWORD})
        assert page.status == 429


async def test_a_post_without_its_csrf_token_changes_nothing(served):
    async with served.client() as c:
        await c.sign_in("amina")
        page = await c.post("/web/signout", {}, csrf=False)
        assert page.status == 403 and "Ce formulaire a expiré" in page.plain()
        page = await c.post("/web/signout", {}, csrf="forged")
        assert page.status == 403
        page = await c.get("/web/")
        assert "amina · agent" in page.plain()  # still signed in: the forged sign-out did nothing
        # a token from another session is no good either
        async with served.client() as other:
            await other.sign_in("karim")
            page = await other.post("/web/signout", {}, csrf=c.last.csrf)
            assert page.status == 403
    async with served.client() as c:  # nor on the sign-in form (login CSRF)
        page = await c.post("/web/signin", {"name": "amina", "password": PASSWORD}, csrf=False)
        assert page.status == 403


async def test_security_headers_on_every_page(served):
    async with served.client() as c:
        for path in ("/web/signin", "/web/nowhere"):
            page = await c.get(path)
            csp = page.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
            assert page.headers["X-Frame-Options"] == "DENY"
            assert page.headers["X-Content-Type-Options"] == "nosniff"
            assert page.headers["Referrer-Policy"] == "same-origin"
            assert page.headers["Cache-Control"] == "no-store"
            assert "<script>" not in page.text and "style=" not in page.text
        page = await c.get("/web/static/style.css")
        assert page.status == 200 and "rtl" in page.text


async def test_the_sign_in_page_in_arabic_is_right_to_left(served):
    async with served.client() as c:
        page = await c.get("/web/lang/ar?next=/web/signin")
        assert '<html lang="ar" dir="rtl">' in page.text
        assert "تسجيل الدخول" in page.plain() and "Français" in page.plain()
        await c.post("/web/signin", {"name": "amina", "password": "nope-nope-nope"})
        assert "اسم المستخدم أو كلمة المرور غير صحيحة." in c.last.plain()
        page = await c.get("/web/lang/fr?next=https://evil.example/")  # never sent to another site
        assert URL(page.url).origin() == URL(served.url) and URL(page.url).path == "/web/signin"


async def test_a_disabled_account_is_signed_out_and_cannot_sign_in(served):
    async with served.client() as c:
        await c.sign_in("amina")
        async with served.store.transaction() as tx:
            await tx.update_account("amina", disabled=True)
        page = await c.get("/web/")
        assert "/web/signin" in page.url
        page = await c.sign_in("amina")
        assert page.status == 401


async def test_the_secret_is_generated_once_and_kept(tmp_path):
    store = await open_store(tmp_path / "s.sqlite3", clock=Clock())
    try:
        first = await web_app.resolve_secret(store, None)
        assert len(first) >= 32 and await web_app.resolve_secret(store, None) == first
        assert await web_app.resolve_secret(store, "from-the-environment") == b"from-the-environment"
    finally:
        await store.close()


def _addad(*args, env, input=None):
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, input=input, timeout=60
    )


def test_users_command_adds_lists_disables_and_resets(tmp_path, monkeypatch):
    import os

    env = {**os.environ, "ADDAD_DATABASE": str(tmp_path / "u.sqlite3"), "ADDAD_AGENT": "ops"}
    r = _addad("users", "add", "Sara", "--role", "supervisor", "--password-stdin", env=env, input=PASSWORD + "\n")
    assert r.returncode == 0 and r.stdout.strip() == "sara: added (supervisor)", r.stderr
    r = _addad("users", "add", "sara", "--role", "agent", "--password-stdin", env=env, input=PASSWORD + "\n")
    assert r.returncode == 2 and "an account sara exists" in r.stderr and "Traceback" not in r.stderr
    r = _addad("users", "add", "x", "--role", "agent", "--password-stdin", env=env, input="short\n")
    assert r.returncode == 2 and "at least 10 characters" in r.stderr
    r = _addad("users", "add", "bad name!", "--role", "agent", "--password-stdin", env=env, input=PASSWORD + "\n")
    assert r.returncode == 2 and "a-z 0-9" in r.stderr
    r = _addad("users", "disable", "sara", env=env)
    assert r.returncode == 0 and "sara: disabled" in r.stdout
    r = _addad("users", "list", env=env)
    assert "sara" in r.stdout and "supervisor" in r.stdout and "disabled" in r.stdout
    r = _addad("users", "reset", "sara", "--password-stdin", env=env, input="another long password\n")
    assert r.returncode == 0 and "password changed" in r.stdout
    r = _addad("users", "reset", "nobody", "--password-stdin", env=env, input=PASSWORD + "\n")
    assert r.returncode == 2 and "no account nobody" in r.stderr
    r = _addad("users", "list", env=env)
    assert "active" in r.stdout
    import sqlite3

    con = sqlite3.connect(tmp_path / "u.sqlite3")
    stored = con.execute("SELECT password_hash FROM accounts").fetchone()[0]
    actions = [row[0] for row in con.execute("SELECT action || ' ' || actor FROM audit_log ORDER BY id")]
    con.close()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert actions == [
        "web_account_add backoffice:ops",
        "web_account_disable backoffice:ops",
        "web_account_reset backoffice:ops",
    ]


def test_every_message_key_of_the_templates_is_in_both_catalogs():
    """The templates' keys (tests/test_locales.py scans the Python code only), prefixes included."""
    import re
    from pathlib import Path

    from conversations.i18n import catalog

    root = Path(__file__).resolve().parents[1] / "bot" / "web" / "templates"
    keys, prefixes = set(), set()
    for path in root.glob("*.html"):
        text = path.read_text(encoding="utf-8")
        keys |= set(re.findall(r't(?:\.n)?\("([a-z_]+\.[a-z_.]+[a-z_])"\)', text))
        keys |= set(re.findall(r't\.n\("([a-z_]+\.[a-z_.]+[a-z_])",', text))
        prefixes |= set(re.findall(r't\("([a-z_]+\.[a-z_.]+\.)" \+', text))
    assert len(keys) > 50 and prefixes
    for lang in ("fr", "ar"):
        messages = catalog(lang).messages
        assert not sorted(k for k in keys if k not in messages), lang
        for prefix in prefixes:
            assert any(k.startswith(prefix) for k in messages), prefix


def test_addad_web_serves_the_workspace_in_its_own_process(tmp_path):
    import os
    import socket
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "ADDAD_DATABASE": str(tmp_path / "w.sqlite3")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "web", "--listen", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:  # / → /web/ → sign-in
            assert r.url.startswith(f"http://127.0.0.1:{port}/web/signin")
            assert "Connexion" in r.read().decode()
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    import sqlite3

    con = sqlite3.connect(tmp_path / "w.sqlite3")
    assert con.execute("SELECT count(*) FROM workspace_settings WHERE name = 'web_secret'").fetchone()[0] == 1
    con.close()


def _on_a_terminal(args, env, typed: list[str]) -> tuple[int, str]:
    """`addad ARGS` with a pseudo-terminal as its controlling terminal (getpass reads /dev/tty),
    each of `typed` written after the prompt before it appears."""
    import fcntl
    import os
    import pty
    import select
    import termios
    import time

    master, slave = pty.openpty()

    def controlling_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    seen, pending, deadline, answered = b"", list(typed), time.monotonic() + 60, 0
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the process ended and closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if pending and seen[answered:].rstrip().endswith(b":"):  # a new prompt
                os.write(master, (pending.pop(0) + "\n").encode())
                answered = len(seen)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(master)
    return proc.returncode, seen.decode(errors="replace")


def test_users_add_asks_the_password_twice_on_the_terminal_without_echo(tmp_path):
    import os

    env = {**os.environ, "ADDAD_DATABASE": str(tmp_path / "t.sqlite3")}
    code, out = _on_a_terminal(["users", "add", "nadia", "--role", "agent"], env, [PASSWORD, "something else!"])
    assert code == 2 and "New password:" in out and "Repeat it:" in out
    assert "the two passwords differ; nothing changed" in out and PASSWORD not in out  # never echoed
    code, out = _on_a_terminal(["users", "add", "nadia", "--role", "agent"], env, [PASSWORD, PASSWORD])
    assert code == 0 and "nadia: added (agent)" in out and PASSWORD not in out


async def test_behind_a_local_https_proxy_cookies_stay_secure_and_the_throttle_counts_people(served):
    proxied = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "Host": "workspace.example"}
    async with served.client() as c:
        await c.get("/web/signin", headers=proxied)
        async with c.session.post(
            served.url + "/web/signin",
            data={"name": "amina", "password": PASSWORD, "csrf": c.last.csrf},
            headers=proxied,
            allow_redirects=False,
        ) as r:
            assert r.status == 302 and r.cookies["addad_session"]["secure"]
    async with served.client() as c:
        await c.get("/web/signin", headers=proxied)
        for i in range(20):  # one person guessing names, behind the proxy
            page = await c.post("/web/signin", {"name": f"user{i}", "password": "guess-guess"}, headers=proxied)
            assert page.status == 401
        page = await c.post("/web/signin", {"name": "karim", "password": PASSWORD}, headers=proxied)
        assert page.status == 429  # that person's address is throttled...
        page = await c.post(
            "/web/signin",
            {"name": "karim", "password": PASSWORD},
            headers={**proxied, "X-Forwarded-For": "198.51.100.2"},
        )
        assert page.status == 200 and "karim · superviseur" in page.plain()  # someone else is not locked out
    async with served.store.snapshot() as tx:
        entry = (await tx.audit_entries(action="web_signin"))[0]
    assert entry["details"]["address"] == "203.0.113.7"
    # without a proxy, a plain-HTTP host that is not localhost
    async with served.client() as c, c.session.get(served.url + "/web/signin", headers={"Host": "ws.example"}) as r:
        assert not r.cookies["addad_pre"]["secure"]  # a browser would drop a Secure one over HTTP
