"""A server reachable from the network: no anonymous administrator, login on as soon as the
first account exists, figure files only for their readers, and a login throttle that a
stranger cannot turn against the real user.

The servers are real: `kb serve` as a subprocess on a fresh data directory, or uvicorn on
127.0.0.1 reached from two loopback addresses (127.0.0.1 and 127.0.0.2 are distinct peers
on Linux) for the throttle.
"""

from __future__ import annotations

import logging
import subprocess

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AuthenticationError
from sqlalchemy import select

from app.accounts import LoginThrottle, TooManyAttempts
from app.models import Chunk, ChunkKind
from app.service import KnowledgeBase
from tests.conftest import ROOT, SAMPLES, free_port, make_settings
from tests.servers import KB, kb_env, kb_serve, serving
from ui.server import create_app

# --- refusing to start open on the network ------------------------------------------------


@pytest.mark.slow  # the CLI in a process of its own: real models, or the app's start
def test_a_server_on_a_network_address_without_accounts_refuses_to_start(tmp_path):
    port = free_port()
    try:
        run = subprocess.run(
            [str(KB), "serve", "--host", "0.0.0.0", "--port", str(port)],
            env=kb_env(tmp_path / "data"),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("kb serve --host 0.0.0.0 without accounts kept running: it served the network open")
    assert run.returncode == 1
    message = " ".join(run.stderr.split())
    assert "refusing to serve on 0.0.0.0 without accounts" in message
    assert "kb admin create NAME" in message and "--insecure-no-auth" in message


@pytest.mark.slow  # the CLI in a process of its own: real models, or the app's start
def test_insecure_no_auth_starts_open_and_says_so_loudly(tmp_path):
    log = tmp_path / "serve.log"
    with kb_serve(tmp_path / "data", "--host", "0.0.0.0", "--insecure-no-auth", log=log) as url:
        assert httpx.get(f"{url}/config", timeout=30).status_code == 200  # open, as asked
    assert "INSECURE: serving on 0.0.0.0 with --insecure-no-auth" in log.read_text()


# --- the first account switches login on, without a restart ----------------------------------


def login_cookies(url: str, username: str) -> httpx.Cookies:
    response = httpx.post(f"{url}/login", data={"username": username, "password": f"{username}-password"}, timeout=60)
    assert response.status_code == 200, response.text
    return response.cookies


def test_the_first_account_turns_login_on_for_chat_console_and_figures_without_a_restart(tmp_path, models):
    data_dir = tmp_path / "data"
    kb = KnowledgeBase(make_settings(data_dir), models=models)
    try:
        report = kb.ingest(kb.system_user(), "signs", paths=[SAMPLES / "danger-high-voltage-sign.jpg"])
        assert not report.failed, report.failed
        with kb.database.session() as session:
            figure = session.scalar(select(Chunk.image_path).where(Chunk.kind == ChunkKind.image))
        with kb_serve(data_dir, "--host", "127.0.0.1", log=tmp_path / "serve.log") as url:
            figure_url = f"{url}/gradio_api/file={figure}"
            # Loopback, no account: the single-user local app.
            assert httpx.get(f"{url}/config", timeout=30).status_code == 200
            assert Client(f"{url}/admin/", verbose=False).predict(api_name="/dashboard")
            assert httpx.get(figure_url, timeout=30).status_code == 200

            created = subprocess.run(
                [str(KB), "admin", "create", "alice"],
                env=kb_env(data_dir, MMKB_NEW_PASSWORD="alice-password"),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert created.returncode == 0, created.stderr
            kb.accounts.create_user("bob", "bob-password")  # no membership: may read nothing

            assert httpx.get(f"{url}/config", timeout=30).status_code == 401
            assert httpx.get(f"{url}/admin/config", timeout=30).status_code == 401
            with pytest.raises(AuthenticationError):
                Client(f"{url}/admin/", verbose=False).predict(api_name="/dashboard")
            assert httpx.get(figure_url, timeout=30).status_code == 401
            # The figure goes to whoever the API would give it to, and only to them.
            assert httpx.get(figure_url, cookies=login_cookies(url, "alice"), timeout=30).status_code == 200
            assert httpx.get(figure_url, cookies=login_cookies(url, "bob"), timeout=30).status_code == 404
    finally:
        kb.close()


# --- the login throttle -----------------------------------------------------------------------


def from_address(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60)


def test_bad_logins_from_one_address_leave_another_addresses_login_working(kb, caplog):
    kb.accounts.create_user("alice", "alice-password", is_admin=True)
    caplog.set_level(logging.WARNING, logger="app.accounts")
    with serving(create_app(kb)) as url, from_address("127.0.0.2") as stranger, from_address("127.0.0.1") as alice:
        wrong = {"username": "alice", "password": "not-her-password"}
        assert [stranger.post(f"{url}/admin/login", data=wrong).status_code for _ in range(5)] == [400] * 5
        # The chat, the console and the API share the count of that address.
        assert stranger.post(f"{url}/login", data=wrong).status_code == 429
        refused = stranger.post(f"{url}/api/tokens", json=wrong)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0

        right = {"username": "alice", "password": "alice-password"}
        assert alice.post(f"{url}/api/tokens", json=right).status_code == 200
        assert alice.post(f"{url}/login", data=right).status_code == 200
        assert alice.post(f"{url}/admin/login", data=right).status_code == 200

    failures = [r.getMessage() for r in caplog.records if r.name == "app.accounts"]
    assert len([m for m in failures if m.startswith("failed login")]) == 5
    assert all("'alice'" in m and "127.0.0.2" in m for m in failures)
    assert not any("not-her-password" in m for m in failures)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_failure_table_stays_bounded_and_keeps_lockouts_in_force():
    clock = Clock()
    throttle = LoginThrottle(limit=5, window_s=300, lockout_s=60, max_entries=1000, clock=clock)
    for _ in range(5):
        throttle.failed("admin", "203.0.113.9")
    for number in range(50_000):  # the same stranger, inventing names
        throttle.failed(f"invented-{number}", "203.0.113.9")
    assert len(throttle) <= 1000
    with pytest.raises(TooManyAttempts):
        throttle.check("admin", "203.0.113.9")
    throttle.check("admin", "198.51.100.7")  # the real admin, elsewhere: not locked out


def test_lockouts_back_off_and_quiet_is_forgiven():
    clock = Clock()
    throttle = LoginThrottle(limit=5, window_s=300, lockout_s=60, clock=clock)
    for _ in range(5):
        throttle.check("eve", "192.0.2.1")
        throttle.failed("eve", "192.0.2.1")
    with pytest.raises(TooManyAttempts) as first:
        throttle.check("eve", "192.0.2.1")
    assert first.value.retry_after_s == 60
    clock.now += 61
    throttle.check("eve", "192.0.2.1")
    throttle.failed("eve", "192.0.2.1")  # straight back to guessing: twice as long
    with pytest.raises(TooManyAttempts) as second:
        throttle.check("eve", "192.0.2.1")
    assert second.value.retry_after_s == 120
    clock.now += 121 + 301  # the lockout over and a whole window of quiet
    throttle.check("eve", "192.0.2.1")
    throttle.failed("eve", "192.0.2.1")
    throttle.check("eve", "192.0.2.1")  # counting from one again
