"""Single sign-on by LDAP bind against a real directory: Debian's slapd, started by the test on
a loopback port from a temporary slapd.conf and loaded with people and groups (tests/ldap_server.py).
Directory users log in to the API, the chat and the admin console, get exactly the roles their
groups map to, lose them when the directory drops them from a group, and local accounts keep
working. Over TLS: tests/test_ldap_tls.py."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import httpx
import pytest
from ldap3 import MODIFY_ADD, MODIFY_DELETE, Connection, Server
from sqlalchemy import select

from app.directory import Directory, DirectoryConfig, DirectoryConfigError
from app.models import Chunk, Collection, Role
from app.service import KnowledgeBase
from tests.conftest import free_port, make_settings
from tests.ldap_server import GROUPS, PEOPLE, ROOT_DN, ROOT_PASSWORD, SEARCH_DN, SEARCH_PASSWORD, needs_slapd, running_slapd
from tests.servers import serving
from ui.server import create_app

pytestmark = needs_slapd


@pytest.fixture(scope="module")
def ldap_url():
    with running_slapd() as directory:
        yield directory.ldap_url


def _directory_settings(ldap_url: str) -> dict:
    """An Active-Directory-like setup: a search account finds the user and their groups."""
    return dict(
        ldap_url=ldap_url,
        ldap_user_search_base=PEOPLE,
        ldap_user_filter="(uid={username})",
        ldap_bind_dn=SEARCH_DN,
        ldap_bind_password=SEARCH_PASSWORD,
        ldap_group_search_base=GROUPS,
    )


def _change_group(ldap_url: str, group: str, username: str, add: bool) -> None:
    """What the directory's administrator does: add someone to a group or take them out."""
    with Connection(Server(ldap_url), ROOT_DN, ROOT_PASSWORD, auto_bind=True) as connection:
        change = MODIFY_ADD if add else MODIFY_DELETE
        assert connection.modify(f"cn={group},{GROUPS}", {"member": [(change, [f"uid={username},{PEOPLE}"])]}), connection.result


ENGINEERING_NOTE = b"Engineering note: the HX-FAN-77 cooling fan is replaced every 20000 hours of operation.\n"
SALES_NOTE = b"Sales note: the spring discount code for partners is SALES-4411, valid until the end of May.\n"


@pytest.fixture(scope="module")
def site(ldap_url, tmp_path_factory, models):
    """The chat, the console and the API on loopback, signing in through the directory;
    'engineering' maps the engineering group to reader, 'sales' the sales group to editor."""
    data_dir = tmp_path_factory.mktemp("ldap-data")
    notes = tmp_path_factory.mktemp("ldap-notes")
    (notes / "engineering.txt").write_bytes(ENGINEERING_NOTE)
    (notes / "sales.txt").write_bytes(SALES_NOTE)
    kb = KnowledgeBase(make_settings(data_dir, **_directory_settings(ldap_url)), models=models)
    admin = kb.system_user()
    assert not kb.ingest(admin, "engineering", paths=[notes / "engineering.txt"]).failed
    assert not kb.ingest(admin, "sales", paths=[notes / "sales.txt"]).failed
    kb.map_directory_group(admin, "engineering", "engineering", Role.reader)
    kb.map_directory_group(admin, "sales", f"cn=sales,{GROUPS}", Role.editor)  # by DN: either works
    kb.accounts.create_user("carol", "carol-local-pw")  # a local account, unknown to the directory
    kb.grant("carol", "sales")
    kb.accounts.create_user("erin", "erin-local-pw")  # local, with a namesake in the directory
    with kb.database.session() as session:
        chunks = {
            name: session.scalar(select(Chunk.id).join(Collection).where(Collection.name == name))
            for name in ("engineering", "sales")
        }
    with serving(create_app(kb)) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield client, chunks
    kb.close()


def _token(client: httpx.Client, username: str, password: str) -> dict[str, str]:
    response = client.post("/api/tokens", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _readable(client: httpx.Client, headers: dict[str, str]) -> list[str]:
    response = client.get("/api/collections", headers=headers)
    assert response.status_code == 200, response.text
    return [c["name"] for c in response.json()]


def test_a_directory_user_gets_exactly_the_role_their_group_maps_to(site):
    client, chunks = site
    alice = _token(client, "alice", "alice-directory-pw")
    assert client.get("/api/me", headers=alice).json()["is_admin"] is False
    assert _readable(client, alice) == ["engineering"]
    # Reads her collection's text...
    view = client.get(f"/api/chunks/{chunks['engineering']}/view", headers=alice)
    assert view.status_code == 200 and "HX-FAN-77" in view.text
    # ...as a reader only: no uploads, no member list.
    upload = client.post("/api/collections/engineering/documents", headers=alice, files=[("files", ("n.txt", b"a note"))])
    assert upload.status_code == 403
    assert client.get("/api/collections/engineering/members", headers=alice).status_code == 403
    # The other collection does not exist for her: its text never comes back.
    for response in (
        client.get(f"/api/chunks/{chunks['sales']}/view", headers=alice),
        client.get("/api/collections/sales/documents", headers=alice),
        client.post("/api/ask", headers=alice, json={"question": "What is the discount code?", "collections": ["sales"]}),
    ):
        assert response.status_code == 404
        assert "SALES-4411" not in response.text

    # bob's group maps (by its DN) to editor of sales: he may add documents there.
    bob = _token(client, "bob", "bob-directory-pw")
    assert _readable(client, bob) == ["sales"]
    upload = client.post(
        "/api/collections/sales/documents",
        headers=bob,
        files=[("files", ("price-list.txt", b"Partner price list: the SX-400 inverter costs 1200 euros.\n"))],
    )
    assert upload.status_code == 200, upload.text
    assert client.get("/api/collections/sales/members", headers=bob).status_code == 403  # editor, not admin
    assert client.get(f"/api/chunks/{chunks['engineering']}/view", headers=bob).status_code == 404


def test_a_wrong_password_or_an_unknown_name_is_refused_and_never_logged(site, caplog):
    client, _ = site
    caplog.set_level(logging.DEBUG)
    for username, password in (
        ("alice", "not-alices-password"),
        ("alice", ""),
        ("nobody", "alice-directory-pw"),
        ("*", "alice-directory-pw"),
        ("alice)(uid=*", "alice-directory-pw"),
    ):
        response = client.post("/api/tokens", json={"username": username, "password": password})
        assert response.status_code == 401, (username, response.text)
        assert response.json()["detail"] == "wrong user name or password"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "failed login: user 'alice'" in logged
    for secret in ("not-alices-password", "alice-directory-pw", SEARCH_PASSWORD):
        assert secret not in logged


def test_leaving_a_group_in_the_directory_removes_the_role_at_the_next_login(site, ldap_url):
    client, chunks = site
    before = _token(client, "frank", "frank-directory-pw")
    assert _readable(client, before) == ["engineering"]

    _change_group(ldap_url, "engineering", "frank", add=False)
    _change_group(ldap_url, "sales", "frank", add=True)
    after = _token(client, "frank", "frank-directory-pw")
    assert _readable(client, after) == ["sales"]
    # The role went from the user, so a token issued before goes without it too.
    assert _readable(client, before) == ["sales"]
    assert client.get(f"/api/chunks/{chunks['engineering']}/view", headers=before).status_code == 404

    _change_group(ldap_url, "sales", "frank", add=False)
    assert _readable(client, _token(client, "frank", "frank-directory-pw")) == []


def test_local_accounts_keep_working_and_a_directory_namesake_cannot_take_one_over(site):
    client, chunks = site
    carol = _token(client, "carol", "carol-local-pw")
    assert _readable(client, carol) == ["sales"]
    # erin is local here: her local password logs her in, the directory's erin's does not.
    assert client.post("/api/tokens", json={"username": "erin", "password": "erin-directory-pw"}).status_code == 401
    erin = _token(client, "erin", "erin-local-pw")
    assert _readable(client, erin) == []  # the engineering group is the directory's erin's, not hers
    assert client.get(f"/api/chunks/{chunks['engineering']}/view", headers=erin).status_code == 404


def test_directory_users_sign_in_to_the_chat_and_the_admin_console(site):
    client, _ = site
    for path in ("/login", "/admin/login"):
        assert client.post(path, data={"username": "alice", "password": "alice-directory-pw"}).status_code == 200, path
        assert client.post(path, data={"username": "alice", "password": "wrong-password"}).status_code != 200, path
        assert client.post(path, data={"username": "carol", "password": "carol-local-pw"}).status_code == 200, path


def test_an_unreachable_directory_is_a_clear_error_and_local_accounts_still_log_in(tmp_path, models, caplog):
    closed = f"ldap://127.0.0.1:{free_port()}/"  # nothing listens there (the trailing / as slapd -h writes it)
    kb = KnowledgeBase(make_settings(tmp_path / "data", **_directory_settings(closed), ldap_timeout_s=2), models=models)
    # With a directory, the chat and the console ask for a login before any local account exists.
    assert kb.login_required()
    kb.accounts.create_user("carol", "carol-local-pw")
    caplog.set_level(logging.DEBUG)
    try:
        with serving(create_app(kb, mount_ui=False)) as url, httpx.Client(base_url=url, timeout=60) as client:
            refused = client.post("/api/tokens", json={"username": "alice", "password": "alice-directory-pw"})
            assert refused.status_code == 503
            assert refused.json()["detail"] == "the sign-in directory cannot be reached; try again later"
            assert int(refused.headers["Retry-After"]) > 0
            assert client.post("/api/tokens", json={"username": "carol", "password": "carol-local-pw"}).status_code == 200
    finally:
        kb.close()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"directory {closed} could not be asked" in logged
    assert "alice-directory-pw" not in logged and SEARCH_PASSWORD not in logged and "Traceback" not in logged


def test_a_dn_template_binds_without_a_search_account(ldap_url):
    """The simpler setup (OpenLDAP style): the user's DN is built from the name, the groups are
    read as the user."""
    settings = make_settings(
        Path(tempfile.gettempdir()),
        ldap_url=ldap_url,
        ldap_user_dn_template=f"uid={{username}},{PEOPLE}",
        ldap_group_search_base=GROUPS,
    )
    directory = Directory(DirectoryConfig.from_settings(settings))
    found = directory.authenticate("bob", "bob-directory-pw")
    assert found is not None and found.dn == f"uid=bob,{PEOPLE}"
    assert {"sales", f"cn=sales,{GROUPS}".lower()} <= found.groups and "engineering" not in found.groups
    assert directory.authenticate("bob", "alice-directory-pw") is None


def test_a_directory_without_a_way_to_find_users_is_refused_at_start(tmp_path):
    with pytest.raises(DirectoryConfigError, match="MMKB_LDAP_USER_DN_TEMPLATE"):
        DirectoryConfig.from_settings(make_settings(tmp_path, ldap_url="ldap://127.0.0.1:389/"))
    with pytest.raises(DirectoryConfigError, match="ldap:// or ldaps://"):
        DirectoryConfig.from_settings(make_settings(tmp_path, ldap_url="http://directory", ldap_user_search_base=PEOPLE))
