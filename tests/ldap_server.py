"""A real directory for the LDAP tests: Debian's slapd, started on loopback from a temporary
slapd.conf and loaded with people and groups, optionally with TLS (ldaps:// and StartTLS)
from a private CA made here. The one way the tests start slapd."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ldap3 import Connection, Server

from tests.conftest import free_port
from tests.servers import stop

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
needs_slapd = pytest.mark.skipif(
    not SLAPD.exists(), reason="Debian slapd is not installed (scripts/setup.sh --with-test-services installs it)"
)

BASE = "dc=example,dc=org"
ROOT_DN, ROOT_PASSWORD = f"cn=admin,{BASE}", "directory-root-secret"
SEARCH_DN, SEARCH_PASSWORD = f"cn=mmkb-search,{BASE}", "search-account-secret"
PEOPLE, GROUPS = f"ou=people,{BASE}", f"ou=groups,{BASE}"
# name -> directory password; groups below. frank is only for the group-change test.
PEOPLE_PASSWORDS = {
    "alice": "alice-directory-pw",
    "bob": "bob-directory-pw",
    "erin": "erin-directory-pw",
    "frank": "frank-directory-pw",
}
GROUP_MEMBERS = {"engineering": ["alice", "erin", "frank"], "sales": ["bob"]}

SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {root}/slapd.pid
{tls}database mdb
maxsize 10485760
suffix "{base}"
rootdn "{root_dn}"
rootpw {root_password}
directory {root}/db
# Like a real directory: passwords only for binding, entries only for signed-in readers.
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
"""

# Like an enterprise directory: a password is taken only over TLS (ldaps:// or after StartTLS).
TLS_CONF = """\
TLSCACertificateFile {ca}
TLSCertificateFile {certificate}
TLSCertificateKeyFile {key}
security simple_bind=128
"""


def _ldif() -> str:
    entries = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: {SEARCH_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: mmkb-search\n"
        f"userPassword: {SEARCH_PASSWORD}",
    ]
    for name, password in PEOPLE_PASSWORDS.items():
        entries.append(
            f"dn: uid={name},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {name}\ncn: {name.title()}\nsn: {name}\n"
            f"userPassword: {password}"
        )
    for group, members in GROUP_MEMBERS.items():
        lines = "\n".join(f"member: uid={m},{PEOPLE}" for m in members)
        entries.append(f"dn: cn={group},{GROUPS}\nobjectClass: groupOfNames\ncn: {group}\n{lines}")
    return "\n\n".join(entries) + "\n"


# --- A private CA, as an enterprise runs one, and the certificates it signs. ---


@dataclass(frozen=True)
class CertificateAuthority:
    name: str
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, name: str) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(name, certificate, key)

    def write(self, path: Path) -> Path:
        """The CA certificate as PEM: what MMKB_LDAP_CA_FILE names."""
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path

    def issue(self, names: list[str], directory: Path, stem: str) -> tuple[Path, Path]:
        """A server certificate for `names` (IP addresses or DNS names), signed by this CA:
        (certificate PEM, key PEM) written to `directory`."""
        key = ec.generate_private_key(ec.SECP256R1())
        alternative_names: list[x509.GeneralName] = []
        for name in names:
            try:
                alternative_names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alternative_names.append(x509.DNSName(name))
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        certificate_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        key_path.chmod(0o600)
        return certificate_path, key_path


@dataclass(frozen=True)
class ServerTls:
    """What slapd serves TLS with: its certificate and key, and the CA that signed them."""

    ca_file: Path
    certificate_file: Path
    key_file: Path


@dataclass(frozen=True)
class RunningSlapd:
    ldap_url: str  # ldap://127.0.0.1:PORT (StartTLS there too when it has TLS)
    ldaps_url: str | None  # ldaps://127.0.0.1:PORT2 when it has TLS


@contextmanager
def running_slapd(tls: ServerTls | None = None) -> Iterator[RunningSlapd]:
    """slapd on loopback with the people and groups above for the duration of the block; with
    `tls`, it also answers StartTLS on ldap:// and listens on ldaps://, and takes passwords
    only over TLS."""
    root = Path(tempfile.mkdtemp(prefix="mmkb-slapd-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        (root / "db").mkdir()
        conf = root / "slapd.conf"
        tls_conf = "" if tls is None else TLS_CONF.format(ca=tls.ca_file, certificate=tls.certificate_file, key=tls.key_file)
        conf.write_text(SLAPD_CONF.format(root=root, tls=tls_conf, base=BASE, root_dn=ROOT_DN, root_password=ROOT_PASSWORD))
        (root / "data.ldif").write_text(_ldif())
        subprocess.run([str(SLAPADD), "-f", str(conf), "-l", str(root / "data.ldif")], check=True, capture_output=True)
        running = RunningSlapd(
            ldap_url=f"ldap://127.0.0.1:{free_port()}",
            ldaps_url=None if tls is None else f"ldaps://127.0.0.1:{free_port()}",
        )
        listen = " ".join(f"{url}/" for url in (running.ldap_url, running.ldaps_url) if url)
        # -d 0: stays in the foreground, so the test owns the process and stops it.
        server = subprocess.Popen(
            [str(SLAPD), "-f", str(conf), "-h", listen, "-d", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 30
        while not all(answers(url) for url in (running.ldap_url, running.ldaps_url) if url):
            assert server.poll() is None, (
                f"slapd exited: {server.stderr.read().decode(errors='replace') if server.stderr else ''}"
            )
            assert time.monotonic() < deadline, "slapd did not start"
            time.sleep(0.2)
        yield running
    finally:
        if server is not None:
            stop(server)
        shutil.rmtree(root, ignore_errors=True)


def answers(url: str) -> bool:
    """Whether slapd answers a bind at `url` (as root; for ldaps://, over ldap3's default TLS,
    which verifies nothing: enough to know it is up). Over ldap:// to a directory with TLS, the
    answer is a refusal (confidentialityRequired), which is an answer."""
    try:
        connection = Connection(Server(url, connect_timeout=1), ROOT_DN, ROOT_PASSWORD, receive_timeout=1)
        try:
            connection.bind()
            return connection.result is not None and connection.result.get("description") is not None
        finally:
            connection.unbind()
    except Exception:
        return False
