"""LDAP sign-in over TLS against a real directory (Debian's slapd, tests/ldap_server.py) whose
certificate a private CA made here signs, as in an enterprise: ldaps:// and StartTLS with
MMKB_LDAP_CA_FILE naming that CA. The directory takes passwords only over TLS, so a sign-in
that works went encrypted. An untrusted certificate, one for another name, or a CA file that
is no CA file is refused with a message that names the TLS problem and never the password.
No model is loaded."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.accounts import AuthError
from app.directory import TLS_REFUSED, Directory, DirectoryConfig, DirectoryConfigError
from app.models import Role
from app.service import KnowledgeBase
from tests.conftest import make_settings
from tests.ldap_server import (
    GROUPS,
    PEOPLE,
    PEOPLE_PASSWORDS,
    SEARCH_DN,
    SEARCH_PASSWORD,
    CertificateAuthority,
    RunningSlapd,
    ServerTls,
    needs_slapd,
    running_slapd,
)
from ui.server import create_app

pytestmark = needs_slapd

SECRETS = (*PEOPLE_PASSWORDS.values(), SEARCH_PASSWORD)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """The enterprise's CA and the directory's certificates it signs; another CA, trusted by nobody here."""
    root = tmp_path_factory.mktemp("ldap-pki")
    ca, other = CertificateAuthority.create("Example Corp Private CA"), CertificateAuthority.create("Some Other CA")
    certificate, key = ca.issue(["127.0.0.1", "localhost"], root, "directory")
    misnamed_certificate, misnamed_key = ca.issue(["directory.example.org"], root, "misnamed")
    return {
        "ca": ca.write(root / "ca.pem"),
        "other_ca": other.write(root / "other-ca.pem"),
        "certificate": certificate,
        "key": key,
        "misnamed_certificate": misnamed_certificate,
        "misnamed_key": misnamed_key,
    }


@pytest.fixture(scope="module")
def directory(pki) -> RunningSlapd:
    """The directory with a certificate for 127.0.0.1 and localhost."""
    with running_slapd(ServerTls(pki["ca"], pki["certificate"], pki["key"])) as server:
        yield server


@pytest.fixture(scope="module")
def misnamed_directory(pki) -> RunningSlapd:
    """A directory whose certificate, from the same CA, is for directory.example.org only."""
    with running_slapd(ServerTls(pki["ca"], pki["misnamed_certificate"], pki["misnamed_key"])) as server:
        yield server


def _tls_settings(server: RunningSlapd, transport: str) -> dict:
    """The Active-Directory-like setup of tests/test_ldap_login.py, over ldaps:// or StartTLS."""
    assert server.ldaps_url is not None
    url = {"ldaps": server.ldaps_url, "starttls": server.ldap_url, "ldaps-dns-name": server.ldaps_url}[transport]
    if transport == "ldaps-dns-name":  # the certificate's DNS name rather than its IP address
        url = url.replace("127.0.0.1", "localhost")
    return dict(
        ldap_url=url,
        ldap_start_tls=transport == "starttls",
        ldap_user_search_base=PEOPLE,
        ldap_user_filter="(uid={username})",
        ldap_bind_dn=SEARCH_DN,
        ldap_bind_password=SEARCH_PASSWORD,
        ldap_group_search_base=GROUPS,
        ldap_timeout_s=5,
    )


@pytest.fixture()
def make_kb(tmp_path, models):
    made: list[KnowledgeBase] = []

    def make(**settings) -> KnowledgeBase:
        kb = KnowledgeBase(make_settings(tmp_path / f"data-{len(made)}", **settings), models=models)
        made.append(kb)
        return kb

    yield make
    for kb in made:
        kb.close()


@pytest.mark.parametrize("transport", ["ldaps", "starttls", "ldaps-dns-name"])
def test_directory_users_sign_in_over_tls_with_the_private_ca_and_get_their_groups_roles(
    directory, pki, make_kb, transport, caplog
):
    kb = make_kb(**_tls_settings(directory, transport), ldap_ca_file=pki["ca"])
    root = kb.system_user()
    for name in ("engineering", "sales"):
        kb.create_collection(root, name)
    kb.map_directory_group(root, "engineering", "engineering", Role.reader)
    kb.map_directory_group(root, "sales", f"cn=sales,{GROUPS}", Role.editor)
    caplog.set_level(logging.DEBUG)

    alice = kb.accounts.login("alice", PEOPLE_PASSWORDS["alice"])
    assert [c.name for c in kb.readable_collections(alice)] == ["engineering"]
    bob = kb.accounts.login("bob", PEOPLE_PASSWORDS["bob"])
    assert [c.name for c in kb.readable_collections(bob)] == ["sales"]
    assert {(m.username, m.role) for m in kb.members(root, "engineering")} == {("alice", "reader")}
    assert {(m.username, m.role) for m in kb.members(root, "sales")} == {("bob", "editor")}
    # Over TLS, a wrong password is still judged by the directory, and refused.
    with pytest.raises(AuthError, match="wrong user name or password"):
        kb.accounts.login("alice", PEOPLE_PASSWORDS["bob"])
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert not any(secret in logged for secret in SECRETS)


def test_without_tls_this_directory_takes_no_password(directory, pki, make_kb, caplog):
    """What makes the test above prove encryption: the same sign-in over plain ldap://, without
    StartTLS, is refused by the directory (confidentialityRequired), and the log says how to fix it."""
    settings = _tls_settings(directory, "starttls") | {"ldap_start_tls": False}
    kb = make_kb(**settings, ldap_ca_file=pki["ca"])
    client = TestClient(create_app(kb, mount_ui=False))
    caplog.set_level(logging.DEBUG)
    refused = client.post("/api/tokens", json={"username": "alice", "password": PEOPLE_PASSWORDS["alice"]})
    assert refused.status_code == 503 and refused.json()["detail"] == TLS_REFUSED
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert (
        "confidentialityRequired: the directory takes passwords only over TLS: use ldaps:// or MMKB_LDAP_START_TLS=true" in logged
    )
    assert not any(secret in logged for secret in SECRETS)


def test_plain_ldap_to_another_host_is_warned_about_at_start(tmp_path, caplog):
    """Passwords in clear over the network: said once, when the directory is set up (loopback,
    as in these tests, is not warned about)."""
    caplog.set_level(logging.WARNING, logger="app.directory")
    base = dict(ldap_user_dn_template=f"uid={{username}},{PEOPLE}")
    for url, start_tls in (
        ("ldap://127.0.0.1:389", False),
        ("ldap://dc1.example.org:389", True),
        ("ldaps://dc1.example.org", False),
    ):
        Directory(DirectoryConfig.from_settings(make_settings(tmp_path, ldap_url=url, ldap_start_tls=start_tls, **base)))
    assert caplog.records == []
    Directory(DirectoryConfig.from_settings(make_settings(tmp_path, ldap_url="ldap://dc1.example.org:389", **base)))
    assert [r.getMessage() for r in caplog.records] == [
        "MMKB_LDAP_URL ldap://dc1.example.org:389 without MMKB_LDAP_START_TLS: passwords go to the directory unencrypted; "
        "use ldaps:// or MMKB_LDAP_START_TLS=true"
    ]


@pytest.mark.parametrize("transport", ["ldaps", "starttls"])
@pytest.mark.parametrize("trusted", ["system CAs", "another CA"])
def test_an_untrusted_certificate_is_refused_with_a_message_naming_the_tls_problem(
    directory, pki, make_kb, transport, trusted, caplog
):
    ca_file = None if trusted == "system CAs" else pki["other_ca"]
    kb = make_kb(**_tls_settings(directory, transport), ldap_ca_file=ca_file)
    kb.accounts.create_user("carol", "carol-local-pw")
    client = TestClient(create_app(kb, mount_ui=False))
    caplog.set_level(logging.DEBUG)

    refused = client.post("/api/tokens", json={"username": "alice", "password": PEOPLE_PASSWORDS["alice"]})
    assert refused.status_code == 503
    assert refused.json()["detail"] == TLS_REFUSED
    assert "TLS certificate" in TLS_REFUSED and "administrator" in TLS_REFUSED
    # Local accounts still sign in.
    assert client.post("/api/tokens", json={"username": "carol", "password": "carol-local-pw"}).status_code == 200

    logged = "\n".join(record.getMessage() for record in caplog.records)
    # The operator reads what failed and what to change.
    assert "certificate verify failed: self-signed certificate in certificate chain" in logged
    assert "set MMKB_LDAP_CA_FILE to the PEM certificate of the CA that signed it" in logged
    assert ("the system's CAs" if ca_file is None else f"MMKB_LDAP_CA_FILE={ca_file}") in logged
    assert not any(secret in logged for secret in SECRETS) and "carol-local-pw" not in logged
    assert "Traceback" not in logged


@pytest.mark.parametrize("transport", ["ldaps", "starttls"])
def test_a_certificate_for_another_host_name_is_refused(misnamed_directory, pki, make_kb, transport, caplog):
    """Signed by the trusted CA, but for directory.example.org: the name in MMKB_LDAP_URL
    (127.0.0.1) is checked against the certificate, and it does not match."""
    kb = make_kb(**_tls_settings(misnamed_directory, transport), ldap_ca_file=pki["ca"])
    client = TestClient(create_app(kb, mount_ui=False))
    caplog.set_level(logging.DEBUG)
    refused = client.post("/api/tokens", json={"username": "alice", "password": PEOPLE_PASSWORDS["alice"]})
    assert refused.status_code == 503 and refused.json()["detail"] == TLS_REFUSED
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "certificate is not valid for '127.0.0.1'" in logged
    assert "the directory's certificate does not name '127.0.0.1'" in logged
    assert not any(secret in logged for secret in SECRETS)


def test_a_ca_file_that_is_missing_or_no_certificate_is_refused_at_start(pki, tmp_path):
    """KnowledgeBase builds its Directory at start, so this stops `kb serve` before anyone signs in."""
    base = dict(ldap_url="ldaps://127.0.0.1:636", ldap_user_dn_template=f"uid={{username}},{PEOPLE}")
    for ca_file, reason in ((tmp_path / "missing.pem", "No such file"), (pki["key"], "no certificate")):
        config = DirectoryConfig.from_settings(make_settings(tmp_path, **base, ldap_ca_file=ca_file))
        with pytest.raises(DirectoryConfigError, match=f"MMKB_LDAP_CA_FILE .* is not a readable PEM file.*{reason}"):
            Directory(config)
