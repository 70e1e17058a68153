"""LDAP / Active Directory sign-in: a bind as the user checks the password, a search finds
their groups. Only the client side; app.directory_accounts turns the result into a local user
and collection roles."""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPBindError, LDAPException, LDAPStartTLSError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn
from pydantic import SecretStr

from app.settings import Settings

logger = logging.getLogger(__name__)


class DirectoryUnavailable(Exception):
    """The directory could not be asked (down, unreachable, refused the service account, its
    TLS certificate not accepted); the message is safe to show and names no secret."""


UNREACHABLE = "the sign-in directory cannot be reached; try again later"
TLS_REFUSED = (
    "the sign-in directory cannot be reached securely: its TLS certificate or settings were not accepted; "
    "ask an administrator (the server log says why)"
)


class DirectoryConfigError(ValueError):
    pass


@dataclass(frozen=True)
class DirectoryConfig:
    url: str
    user_dn_template: str | None
    user_search_base: str | None
    user_filter: str
    bind_dn: str | None
    bind_password: SecretStr | None
    group_search_base: str | None
    group_filter: str
    group_name_attribute: str
    start_tls: bool
    ca_file: Path | None
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> DirectoryConfig | None:
        """None while no directory is configured (MMKB_LDAP_URL unset)."""
        if not settings.ldap_url:
            return None
        if not settings.ldap_user_dn_template and not settings.ldap_user_search_base:
            raise DirectoryConfigError(
                "MMKB_LDAP_URL is set but neither MMKB_LDAP_USER_DN_TEMPLATE nor MMKB_LDAP_USER_SEARCH_BASE: "
                "the directory cannot find a user's entry"
            )
        if settings.ldap_user_dn_template and "{username}" not in settings.ldap_user_dn_template:
            raise DirectoryConfigError("MMKB_LDAP_USER_DN_TEMPLATE needs a {username} placeholder")
        if not settings.ldap_url.startswith(("ldap://", "ldaps://")):
            raise DirectoryConfigError(f"MMKB_LDAP_URL must start with ldap:// or ldaps://, not {settings.ldap_url!r}")
        return cls(
            url=settings.ldap_url,
            user_dn_template=settings.ldap_user_dn_template,
            user_search_base=settings.ldap_user_search_base,
            user_filter=settings.ldap_user_filter,
            bind_dn=settings.ldap_bind_dn,
            bind_password=settings.ldap_bind_password,
            group_search_base=settings.ldap_group_search_base,
            group_filter=settings.ldap_group_filter,
            group_name_attribute=settings.ldap_group_name_attribute,
            start_tls=settings.ldap_start_tls,
            ca_file=settings.ldap_ca_file,
            timeout_s=settings.ldap_timeout_s,
        )


@dataclass(frozen=True)
class DirectoryUser:
    username: str
    # The entry's DN; for a user an OpenID provider signed in (app.oidc), issuer#subject.
    dn: str
    # Each group as both its name (e.g. its cn) and its DN, lower-cased: a mapping may name either.
    groups: frozenset[str]


class _VerifyingTls(Tls):
    """TLS for ldaps:// and StartTLS that OpenSSL verifies during the handshake: the chain up to
    the given CAs and the server's name (DNS name or IP address in the certificate's subject
    alternative names), as Python's default context does for HTTPS. ldap3's own Tls checks the
    name after the handshake with ssl.match_hostname, which Python 3.12 removed; ldap3's fallback
    then refuses every IP address (ldaps://10.0.0.5 with a certificate for 10.0.0.5)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED)
        self._context = context

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        connection.socket = self._context.wrap_socket(
            connection.socket,
            server_side=False,
            do_handshake_on_connect=do_handshake,
            server_hostname=connection.server.host,
        )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificates verified against `ca_file` (PEM; else the system's CAs), the name checked,
    TLS 1.2 at least."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except OSError as exc:  # no such file, or ssl.SSLError (an OSError): no certificate in it
        raise DirectoryConfigError(
            f"MMKB_LDAP_CA_FILE {str(ca_file)!r} is not a readable PEM file of CA certificates: {exc}"
        ) from None
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _TlsRequired(LDAPBindError):
    """The directory refused a bind without TLS (confidentialityRequired)."""


class Directory:
    def __init__(self, config: DirectoryConfig) -> None:
        self.config = config
        tls = _VerifyingTls(_tls_context(config.ca_file))
        # ldap3 reads no path: 'ldap://host:389/' (as slapd -h and most docs write it) is 'ldap://host:389'.
        self._server = Server(config.url.rstrip("/"), connect_timeout=config.timeout_s, tls=tls, get_info=NONE)
        if not self._server.ssl and not config.start_tls and not _is_loopback(self._server.host):
            logger.warning(
                "MMKB_LDAP_URL %s without MMKB_LDAP_START_TLS: passwords go to the directory unencrypted; "
                "use ldaps:// or MMKB_LDAP_START_TLS=true",
                config.url,
            )

    def authenticate(self, username: str, password: str) -> DirectoryUser | None:
        """The user and their groups if `password` is theirs in the directory; None if not
        (or no such user). Raises DirectoryUnavailable when the directory cannot answer."""
        # An empty password would be an "unauthenticated bind", which many servers accept
        # as anonymous: never a login.
        if not username or not password:
            return None
        try:
            dn = self._user_dn(username)
            if dn is None:
                return None
            user_connection = self._bind(dn, password)
            if user_connection is None:
                return None
            with user_connection:
                groups = self._groups(username, dn, user_connection)
        except (LDAPException, OSError) as exc:
            # The exception's text names the server and the failure, never a password.
            tls_problem = self._tls_problem(exc)
            if tls_problem:
                logger.warning("directory %s: TLS failed, so nobody signs in through it: %s", self.config.url, tls_problem)
                raise DirectoryUnavailable(TLS_REFUSED) from None
            logger.warning("directory %s could not be asked: %s: %s", self.config.url, type(exc).__name__, exc)
            raise DirectoryUnavailable(UNREACHABLE) from None
        return DirectoryUser(username=username, dn=dn, groups=groups)

    def _tls_problem(self, exc: BaseException) -> str | None:
        """What an operator should read when TLS stopped the sign-in: the failure and what to
        change; None if `exc` is no TLS failure."""
        if isinstance(exc, _TlsRequired):
            return f"{exc}: the directory takes passwords only over TLS: use ldaps:// or MMKB_LDAP_START_TLS=true"
        # ldap3 re-raises the ssl error merged into its own exception type, or, after trying
        # several addresses of one name, lists each address's error in args[1].
        history = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], list) else []
        causes = [exc, *(entry[0] for entry in history if isinstance(entry, tuple) and entry)]
        failure = next((e for e in causes if isinstance(e, ssl.SSLError | LDAPStartTLSError)), None)
        if failure is None:
            return None
        # "...: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: <why> (_ssl.c:1006)',)"
        detail = str(failure)
        detail = re.sub(r"\s*\(_ssl\.c:\d+\).*$", "", detail[detail.find("[SSL") :] if "[SSL" in detail else detail)
        detail = detail.replace("\\'", "'")
        host = self._server.host
        if not isinstance(failure, ssl.SSLError):
            return f"{detail}; the directory may have no TLS configured: configure it, or use ldaps://"
        if "Hostname mismatch" in detail or "IP address mismatch" in detail:
            return (
                f"{detail}; the directory's certificate does not name {host!r}: set MMKB_LDAP_URL to a name "
                "the certificate lists, or have the certificate reissued for this one"
            )
        if "CERTIFICATE_VERIFY_FAILED" in detail:
            trusted = f"MMKB_LDAP_CA_FILE={self.config.ca_file}" if self.config.ca_file else "the system's CAs"
            return (
                f"{detail}; the directory's certificate is not signed by a CA trusted here ({trusted}): "
                "set MMKB_LDAP_CA_FILE to the PEM certificate of the CA that signed it"
            )
        return f"TLS handshake failed: {detail}; is {self.config.url} a TLS port (ldaps:// is usually 636)?"

    def _connection(self, dn: str | None, password: str | None) -> Connection:
        # ldap3 packs the receive timeout as whole seconds (SO_RCVTIMEO): an int, at least 1.
        timeout = max(1, math.ceil(self.config.timeout_s))
        connection = Connection(
            self._server,
            user=dn,
            password=password,
            receive_timeout=timeout,
            raise_exceptions=False,
            read_only=True,
            auto_referrals=False,
        )
        connection.open()
        # No bind before TLS is up: with raise_exceptions off, start_tls may answer False.
        if self.config.start_tls and not self._server.ssl and not connection.start_tls(read_server_info=False):
            connection.unbind()
            raise LDAPStartTLSError(f"StartTLS did not start: {connection.last_error or connection.result}")
        return connection

    def _bind(self, dn: str | None, password: str | None) -> Connection | None:
        """A bound connection, or None if the directory refused these credentials."""
        connection = self._connection(dn, password)
        if not connection.bind():
            result = connection.result or {}
            connection.unbind()
            if result.get("description") == "invalidCredentials":
                return None
            if result.get("description") == "confidentialityRequired":
                raise _TlsRequired(f"bind as {dn or 'anonymous'} refused: confidentialityRequired")
            raise LDAPBindError(f"bind as {dn or 'anonymous'} refused: {result.get('description')}")
        return connection

    def _service_connection(self) -> Connection:
        password = self.config.bind_password.get_secret_value() if self.config.bind_password else None
        connection = self._bind(self.config.bind_dn, password)
        if connection is None:
            # The service account's own password is wrong: an operator's error, not the user's.
            raise LDAPBindError(f"the directory refused the search account {self.config.bind_dn or 'anonymous'}")
        return connection

    def _user_dn(self, username: str) -> str | None:
        if self.config.user_dn_template:
            return self.config.user_dn_template.format(username=escape_rdn(username))
        with self._service_connection() as connection:
            query = self.config.user_filter.format(username=escape_filter_chars(username))
            connection.search(self.config.user_search_base, query, SUBTREE, attributes=[], size_limit=2)
            entries = [e for e in connection.response or [] if e.get("type") == "searchResEntry"]
        # Two entries for one name: ambiguous, so nobody signs in as either.
        return entries[0]["dn"] if len(entries) == 1 else None

    def _groups(self, username: str, dn: str, user_connection: Connection) -> frozenset[str]:
        if not self.config.group_search_base:
            return frozenset()
        query = self.config.group_filter.format(user_dn=escape_filter_chars(dn), username=escape_filter_chars(username))
        attribute = self.config.group_name_attribute
        # The search account reads groups if there is one (users often may not); else the user.
        if self.config.bind_dn:
            with self._service_connection() as connection:
                connection.search(self.config.group_search_base, query, SUBTREE, attributes=[attribute])
                response = list(connection.response or [])
        else:
            user_connection.search(self.config.group_search_base, query, SUBTREE, attributes=[attribute])
            response = list(user_connection.response or [])
        names: set[str] = set()
        for entry in response:
            if entry.get("type") != "searchResEntry":
                continue
            names.add(entry["dn"].lower())
            values = entry.get("attributes", {}).get(attribute) or []
            names.update(str(v).lower() for v in (values if isinstance(values, list) else [values]))
        return frozenset(names)
