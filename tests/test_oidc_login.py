"""Single sign-on by OpenID Connect against a real provider: panva/oidc-provider (npm, pinned in
tests/oidc_provider/package.json) started by the test on a loopback port, with one confidential
client and accounts whose `groups` claim maps to collection roles. The test drives the
provider's login page with plain HTTP (and once with a browser): the authorization-code flow
with PKCE signs the user in to the chat and the admin console at once, with exactly the roles
their groups map to; a tampered state, a replayed code, a callback from another browser and a
cancelled sign-in are refused with a clear page; local password logins keep working.

Nothing is ingested, so no model is loaded."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy import select

from app.models import Chunk, Collection, Role
from app.service import KnowledgeBase
from tests.conftest import ROOT, free_port, make_settings
from tests.servers import needs_chromium, serving, stop
from ui.server import create_app

PROVIDER_DIR = ROOT / "tests" / "oidc_provider"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed (the test OpenID provider runs on node)")

CLIENT_ID, CLIENT_SECRET = "mmkb", "mmkb-client-secret-for-the-tests-only"
ACCOUNTS = {
    "alice": {"password": "alice-provider-pw", "groups": ["Engineering"]},  # case differs from the mapping's
    "bob": {"password": "bob-provider-pw", "groups": ["sales", "unmapped"]},
    "frank": {"password": "frank-provider-pw", "groups": ["engineering"]},
    "erin": {"password": "erin-provider-pw", "groups": ["engineering"]},  # a local account of that name exists
}


def _write_config(path: Path, redirect_uri: str, accounts: dict) -> None:
    path.write_text(
        json.dumps(
            {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [redirect_uri], "accounts": accounts}
        )
    )


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """The provider on loopback, with mmkb's callback on a port chosen now (the client's
    redirect URI is registered before mmkb starts). Yields (issuer, config file, mmkb port)."""
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(
            f"oidc-provider is not installed: run `npm ci` in {PROVIDER_DIR} (scripts/setup.sh --with-test-services does)"
        )
    mmkb_port, port = free_port(), free_port()
    config = tmp_path_factory.mktemp("oidc-provider") / "config.json"
    _write_config(config, f"http://127.0.0.1:{mmkb_port}/auth/oidc/callback", ACCOUNTS)
    server = subprocess.Popen(
        [str(NODE), "server.mjs", str(port), str(config)],
        cwd=PROVIDER_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _answers(issuer):
            assert server.poll() is None, f"the provider exited: {server.stderr.read().decode(errors='replace')}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the provider did not start"
            time.sleep(0.2)
        yield issuer, config, mmkb_port
    finally:
        stop(server)


def _answers(issuer: str) -> bool:
    try:
        return httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _oidc_settings(issuer: str) -> dict:
    return dict(
        oidc_issuer=issuer, oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET, oidc_scopes="openid profile groups"
    )


@pytest.fixture(scope="module")
def site(provider, tmp_path_factory):
    """mmkb on loopback signing in through the provider: the 'engineering' group reads the
    engineering collection, 'sales' edits sales. carol and erin are local accounts."""
    issuer, _, port = provider
    kb = KnowledgeBase(make_settings(tmp_path_factory.mktemp("oidc-data"), **_oidc_settings(issuer)))
    admin = kb.system_user()
    for name in ("engineering", "sales"):
        kb.create_collection(admin, name)
    kb.map_directory_group(admin, "engineering", "engineering", Role.reader)
    kb.map_directory_group(admin, "sales", "sales", Role.editor)
    kb.accounts.create_user("carol", "carol-local-pw")
    kb.grant("carol", "sales")
    kb.accounts.create_user("erin", "erin-local-pw")
    with serving(create_app(kb), port=port) as url:
        yield kb, url
    kb.close()


def _browser(url: str) -> httpx.Client:
    """One browser's cookie jar; redirects followed by hand, to look at each step."""
    return httpx.Client(base_url=url, timeout=30, follow_redirects=False)


def _start(client: httpx.Client, next_path: str = "/") -> str:
    """mmkb's redirect to the provider's authorization endpoint."""
    response = client.get("/auth/oidc/login", params={"next": next_path})
    assert response.status_code == 303, response.text
    return response.headers["location"]


def _sign_in_at_provider(client: httpx.Client, authorize_url: str, username: str, password: str) -> str:
    """The user at the provider: its login page, then back. Returns mmkb's callback URL (not yet visited)."""
    to_login = client.get(authorize_url)
    assert to_login.status_code == 303, to_login.text
    login_page = urlsplit(authorize_url)._replace(path=urlsplit(to_login.headers["location"]).path, query="")
    assert client.get(urlunsplit(login_page)).status_code == 200
    resumed = client.post(urlunsplit(login_page) + "/login", data={"login": username, "password": password})
    assert resumed.status_code == 303, resumed.text
    back = client.get(resumed.headers["location"])
    assert back.status_code == 303, back.text
    callback = back.headers["location"]
    assert callback.startswith(str(client.base_url).rstrip("/") + "/auth/oidc/callback?"), callback
    return callback


def _signed_in_as(client: httpx.Client, path: str = "") -> str | None:
    """Who Gradio takes this browser to be, at the chat ('') or the console ('/admin')."""
    response = client.get(f"{path}/gradio_api/user")
    assert response.status_code == 200, response.text
    return response.json()


def _readable(kb: KnowledgeBase, username: str) -> list[str]:
    return [c.name for c in kb.readable_collections(kb.user(username))]


def _server_log(caplog) -> str:
    """What the server logged: all but this test's own HTTP client (httpx, httpcore), whose
    debug log shows the URLs it fetched, the provider's redirects with their codes among them."""
    own = ("httpx", "httpcore")
    return "\n".join(r.getMessage() for r in caplog.records if r.name.split(".")[0] not in own)


def _with_state(url: str, state: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, "state": state})))


def test_the_code_flow_with_pkce_signs_in_to_chat_and_console_with_the_mapped_roles(site, caplog):
    kb, url = site
    caplog.set_level(logging.DEBUG)
    with _browser(url) as client:
        assert _signed_in_as(client) is None
        authorize = _start(client)
        # The authorization request: code flow, PKCE S256, state and nonce, the configured scopes.
        query = parse_qs(urlsplit(authorize).query)
        assert query["response_type"] == ["code"] and query["client_id"] == [CLIENT_ID]
        assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
        assert "code_verifier" not in query and CLIENT_SECRET not in authorize
        assert query["state"][0] and query["nonce"][0] and query["scope"] == ["openid profile groups"]
        assert query["redirect_uri"] == [f"{url}/auth/oidc/callback"]

        callback = _sign_in_at_provider(client, authorize, "alice", "alice-provider-pw")
        code = parse_qs(urlsplit(callback).query)["code"][0]
        done = client.get(callback)
        assert done.status_code == 303 and done.headers["location"] == "/", done.text
        # Logged in to both the chat and the admin console, as the provider's user.
        assert _signed_in_as(client) == "alice"
        assert _signed_in_as(client, "/admin") == "alice"
        page = client.get("/")
        assert page.status_code == 200
    alice = kb.user("alice")
    assert alice.from_directory and not alice.password_hash and not alice.is_admin
    assert _readable(kb, "alice") == ["engineering"]
    assert "oidc sign-in: 'alice'" in _server_log(caplog)
    logged = _server_log(caplog)
    for secret in (CLIENT_SECRET, code, "alice-provider-pw"):
        assert secret not in logged


def test_group_membership_decides_the_roles_at_each_sign_in(site, provider):
    kb, url = site
    issuer, config, port = provider
    with _browser(url) as client:
        done = client.get(_sign_in_at_provider(client, _start(client, "/admin/"), "bob", "bob-provider-pw"))
        assert done.headers["location"] == "/admin/"  # back to the console, where the sign-in began
        assert _signed_in_as(client) == "bob"
    assert _readable(kb, "bob") == ["sales"]

    with _browser(url) as client:
        # Only this site's own pages are places to go back to: the login URL is no open redirect.
        done = client.get(_sign_in_at_provider(client, _start(client, "https://evil.example/"), "frank", "frank-provider-pw"))
        assert done.headers["location"] == "/"
    assert _readable(kb, "frank") == ["engineering"]
    # The provider's administrator moves frank from engineering to sales.
    _write_config(config, f"{url}/auth/oidc/callback", {**ACCOUNTS, "frank": {**ACCOUNTS["frank"], "groups": ["sales"]}})
    try:
        with _browser(url) as client:
            client.get(_sign_in_at_provider(client, _start(client), "frank", "frank-provider-pw"))
        assert _readable(kb, "frank") == ["sales"]
    finally:
        _write_config(config, f"{url}/auth/oidc/callback", ACCOUNTS)


def test_a_tampered_state_or_a_callback_from_another_browser_is_refused(site):
    _, url = site
    with _browser(url) as client:
        callback = _sign_in_at_provider(client, _start(client), "alice", "alice-provider-pw")
        state = parse_qs(urlsplit(callback).query)["state"][0]
        tampered = client.get(_with_state(callback, state[:-1] + ("A" if state[-1] != "A" else "B")))
        assert tampered.status_code == 400
        assert "not started in this browser" in tampered.text and "Traceback" not in tampered.text
        assert _signed_in_as(client) is None
        # A callback URL someone else started (login CSRF): this browser has no state cookie for it.
        with _browser(url) as victim:
            forced = victim.get(callback)
            assert forced.status_code == 400 and "not started in this browser" in forced.text
            assert _signed_in_as(victim) is None


def test_a_replayed_code_is_refused(site):
    _, url = site
    with _browser(url) as client:
        callback = _sign_in_at_provider(client, _start(client), "alice", "alice-provider-pw")
        assert client.get(callback).status_code == 303
        # The same callback again: its state cookie went with the first use...
        replayed = client.get(callback)
        assert replayed.status_code == 400 and "not started in this browser" in replayed.text
        # ...and with the cookie put back, the server has used the state up.
        state = parse_qs(urlsplit(callback).query)["state"][0]
        client.cookies.set("mmkb-oidc-state", state, path="/auth/oidc/callback")
        replayed = client.get(callback)
        assert replayed.status_code == 400 and "used already or has expired" in replayed.text
        # The old code under a fresh sign-in's state: the provider refuses the used code.
        client.cookies.clear()  # the state cookie put back above
        fresh_state = parse_qs(urlsplit(_start(client)).query)["state"][0]
        reused = client.get(_with_state(callback, fresh_state))
        assert reused.status_code == 400, reused.text
        assert "refused this sign-in" in reused.text and "Traceback" not in reused.text


def test_a_sign_in_cancelled_at_the_provider_is_a_clear_page(site):
    _, url = site
    with _browser(url) as client:
        authorize = _start(client)
        to_login = client.get(authorize)
        interaction = urlsplit(authorize)._replace(path=urlsplit(to_login.headers["location"]).path, query="")
        back = client.get(client.post(urlunsplit(interaction) + "/abort").headers["location"])
        assert back.status_code == 303
        cancelled = client.get(back.headers["location"])
        assert cancelled.status_code == 403
        assert "cancelled or refused at the sign-in provider" in cancelled.text
        assert _signed_in_as(client) is None


def test_local_password_logins_keep_working_and_a_provider_namesake_cannot_take_one_over(site):
    kb, url = site
    with _browser(url) as client:
        # The login pages offer single sign-on beside the password form.
        for path in ("", "/admin"):
            check = client.get(f"{path}/gradio_api/login_check")
            assert check.status_code == 401 and "/auth/oidc/login" in check.json()["detail"]["auth_message"]
            assert client.post(f"{path}/login", data={"username": "carol", "password": "carol-local-pw"}).status_code == 200
        assert _signed_in_as(client) == "carol"
    assert _readable(kb, "carol") == ["sales"]
    with _browser(url) as client:
        refused = client.get(_sign_in_at_provider(client, _start(client), "erin", "erin-provider-pw"))
        assert refused.status_code == 403 and "local account" in refused.text
        assert _signed_in_as(client) is None
        assert client.post("/login", data={"username": "erin", "password": "erin-local-pw"}).status_code == 200
    assert _readable(kb, "erin") == []  # the provider's erin's groups are not hers
    assert not kb.user("erin").from_directory


def test_an_unreachable_provider_is_a_clear_page_and_passwords_still_log_in(tmp_path, caplog):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    kb = KnowledgeBase(make_settings(tmp_path / "data", **_oidc_settings(closed), oidc_timeout_s=2))
    assert kb.login_required()  # single sign-on alone makes login required
    kb.accounts.create_user("carol", "carol-local-pw")
    caplog.set_level(logging.DEBUG)
    try:
        with serving(create_app(kb)) as url, _browser(url) as client:
            down = client.get("/auth/oidc/login")
            assert down.status_code == 503
            assert "cannot be reached; try again later" in down.text and "Traceback" not in down.text
            assert client.post("/login", data={"username": "carol", "password": "carol-local-pw"}).status_code == 200
    finally:
        kb.close()
    logged = _server_log(caplog)
    assert "could not be read" in logged and CLIENT_SECRET not in logged


@needs_chromium
def test_sign_in_with_sso_in_chromium(site, browser):
    kb, url = site
    page = browser.new_page()
    try:
        page.goto(url + "/")
        page.get_by_text("Sign in with SSO").click()
        page.locator("#login").fill("alice")
        page.locator("#password").fill("alice-provider-pw")
        page.locator("#sign-in").click()
        page.locator("#notice").get_by_text("Signed in as").wait_for(timeout=60_000)
        assert "alice" in page.locator("#notice").inner_text()
        # The chat offers the collections her group reads, and no other.
        page.locator("#collection input").click()
        options = page.get_by_role("option")
        options.first.wait_for(timeout=30_000)
        offered = options.all_inner_texts()
        assert any("engineering" in o for o in offered) and not any("sales" in o for o in offered), offered
        page.keyboard.press("Escape")
        # With no password to give POST /api/tokens, she makes her API token in the chat, and
        # the API (as /v1 and MCP would) knows her by it, with her roles.
        page.locator("#api-access").get_by_text("API access").click()
        page.locator("#create-token").click()
        token_box = page.locator("#api-token textarea, #api-token input").first
        token_box.wait_for(timeout=30_000)
        page.wait_for_function(
            "() => (document.querySelector('#api-token textarea, #api-token input') || {}).value", timeout=30_000
        )
        token = token_box.input_value()
        me = httpx.get(f"{url}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert me.status_code == 200 and me.json()["username"] == "alice", me.text
        readable = httpx.get(f"{url}/api/collections", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
        assert [c["name"] for c in readable] == ["engineering"]
        page.goto(url + "/admin/")
        page.get_by_text("Signed in as").first.wait_for(timeout=60_000)
    finally:
        page.close()


@pytest.mark.slow  # ingests with the real text embedder
def test_a_provider_user_never_gets_a_forbidden_collections_text(site, tmp_path):
    kb, url = site
    admin = kb.system_user()
    notes = {
        "engineering": "The dewpoint sensor of line four is recalibrated every ninety days.",
        "sales": "The confidential Q3 sales quota for the northern region is 4.2 million euros.",
    }
    for collection, sentence in notes.items():
        note = tmp_path / f"{collection}-note.md"
        note.write_text(f"# {collection}\n\n{sentence}\n", encoding="utf-8")
        assert not kb.ingest(admin, collection, paths=[note]).failed
    with _browser(url) as client:
        assert client.get(_sign_in_at_provider(client, _start(client), "alice", "alice-provider-pw")).status_code == 303
    # The token the chat's API panel makes for her (tested in Chromium above), used on every route.
    headers = {"Authorization": f"Bearer {kb.accounts.issue_token(kb.user('alice'), 'chat')}"}

    def search(question: str, collections: list[str] | None) -> httpx.Response:
        body = {"question": question, "collections": collections, "hyde": False}
        return httpx.post(f"{url}/api/search", json=body, headers=headers, timeout=120)

    found = search("How often is the dewpoint sensor recalibrated?", ["engineering"])
    assert found.status_code == 200 and "ninety days" in found.json()[0]["text"]
    forbidden = search("What is the Q3 sales quota?", ["sales"])
    assert forbidden.status_code == 404 and "4.2 million" not in forbidden.text
    everything = search("What is the Q3 sales quota?", None)
    assert everything.status_code == 200 and "4.2 million" not in everything.text
    assert {s["collection"] for s in everything.json()} == {"engineering"}
    with kb.database.session() as session:
        sales_chunk = session.scalar(
            select(Chunk.id).join(Collection, Collection.id == Chunk.collection_id).where(Collection.name == "sales")
        )
    opened = httpx.get(f"{url}/api/chunks/{sales_chunk}/view", headers=headers, timeout=60)
    assert opened.status_code in (403, 404) and "4.2 million" not in opened.text
