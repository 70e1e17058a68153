"""OpenID Connect sign-in, the relying party's side: the authorization-code flow with PKCE
(S256), state and nonce, and the ID token checked against the provider's published keys
(signature, issuer, audience, nonce, expiry). Authlib speaks the protocol; this module keeps
what one sign-in needs between the redirect and the callback (on the server, single use,
short lived) and turns the provider's answer into an identity. app.accounts makes that a
local user; ui.oidc is the web side.

Nothing here logs or shows a code, a token or the client secret: messages name the step
that failed and the provider's error code at most."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from pydantic import SecretStr

from app.settings import Settings

logger = logging.getLogger(__name__)

# A sign-in started must come back within this; then its state is forgotten.
PENDING_TTL_S = 600.0
# Discovery documents change rarely; keys rotate, and an unknown key id refetches at once.
METADATA_TTL_S = 3600.0
# Clock skew allowed between this server and the provider when checking exp / iat.
LEEWAY_S = 60


class OidcError(Exception):
    """A sign-in that cannot go on. The message is safe to show; `status` is the HTTP status
    of the page that says so."""

    status = 400


class SignInRefused(OidcError):
    """The provider, or this server's accounts, said no (denied consent, a local account's name)."""

    status = 403


class ProviderUnavailable(OidcError):
    """The provider could not be asked: down, unreachable, or answering nonsense."""

    status = 503


class OidcConfigError(ValueError):
    pass


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: SecretStr | None
    redirect_base: str | None
    scopes: str
    username_claim: str
    groups_claim: str
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        """None while OIDC is off (issuer or client id unset); bad settings raise at start."""
        if not settings.oidc_issuer and not settings.oidc_client_id:
            return None
        if not settings.oidc_issuer or not settings.oidc_client_id:
            raise OidcConfigError("OIDC needs both MMKB_OIDC_ISSUER and MMKB_OIDC_CLIENT_ID (one of them is unset)")
        for name, url in (("MMKB_OIDC_ISSUER", settings.oidc_issuer), ("MMKB_OIDC_REDIRECT_BASE", settings.oidc_redirect_base)):
            if url and not url.startswith(("https://", "http://")):
                raise OidcConfigError(f"{name} must be an http(s):// URL, not {url!r}")
        if "openid" not in settings.oidc_scopes.split():
            raise OidcConfigError("MMKB_OIDC_SCOPES must include `openid`: without it there is no ID token")
        return cls(
            issuer=settings.oidc_issuer.rstrip("/"),
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            redirect_base=settings.oidc_redirect_base.rstrip("/") if settings.oidc_redirect_base else None,
            scopes=settings.oidc_scopes,
            username_claim=settings.oidc_username_claim,
            groups_claim=settings.oidc_groups_claim,
            timeout_s=settings.oidc_timeout_s,
        )


@dataclass(frozen=True)
class PendingSignIn:
    """What the callback needs of the sign-in it finishes; never leaves this server."""

    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    next_path: str
    expires: float


class PendingSignIns:
    """state -> PendingSignIn: each taken at most once (a replayed callback finds nothing),
    forgotten after PENDING_TTL_S, at most `max_entries` (the oldest go first), so that
    abandoned sign-ins cannot grow the table."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries, self.clock = max_entries, clock
        self._entries: OrderedDict[str, PendingSignIn] = OrderedDict()
        self._lock = threading.Lock()

    def new(self, redirect_uri: str, next_path: str) -> PendingSignIn:
        pending = PendingSignIn(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=generate_token(64),  # RFC 7636: 43-128 characters of the unreserved set
            redirect_uri=redirect_uri,
            next_path=next_path,
            expires=self.clock() + PENDING_TTL_S,
        )
        with self._lock:
            self._entries[pending.state] = pending
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return pending

    def take(self, state: str) -> PendingSignIn | None:
        with self._lock:
            pending = self._entries.pop(state, None)
        return pending if pending is not None and pending.expires > self.clock() else None

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class ProviderIdentity:
    issuer: str
    subject: str
    username: str
    # Lower-cased, as directory group names are compared (app.directory_accounts).
    groups: frozenset[str]


class OidcClient:
    """One provider, one client registration. Async: the web routes await the provider."""

    def __init__(self, config: OidcConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.pending = PendingSignIns(clock=clock)
        self.clock = clock
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks: dict[str, Any] | None = None

    def _client(self, redirect_uri: str | None = None) -> AsyncOAuth2Client:
        secret = self.config.client_secret.get_secret_value() if self.config.client_secret else None
        return AsyncOAuth2Client(
            client_id=self.config.client_id,
            client_secret=secret,
            # No secret: a public client, which PKCE alone protects.
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
            scope=self.config.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self.config.timeout_s,
        )

    async def _get_json(self, url: str, what: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self._client() as http:
                # Discovery and keys need no token; userinfo's is given as a header.
                response = await http.request("GET", url, withhold_token=True, **kwargs)
            response.raise_for_status()
            body = response.json()
        except Exception as exc:  # network errors, HTTP errors, bad JSON: all "cannot be asked"
            logger.warning("oidc: the provider's %s (%s) could not be read: %s", what, url, type(exc).__name__)
            raise ProviderUnavailable("the sign-in provider cannot be reached; try again later") from None
        if not isinstance(body, dict):
            raise ProviderUnavailable("the sign-in provider answered with something that is not its configuration")
        return body

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None or self.clock() - self._metadata_at > METADATA_TTL_S:
            found = await self._get_json(f"{self.config.issuer}/.well-known/openid-configuration", "discovery document")
            # OIDC Discovery: the document must name the issuer it was fetched for, or
            # another provider's tokens could pass as this one's.
            if str(found.get("issuer", "")).rstrip("/") != self.config.issuer:
                logger.warning("oidc: discovery names issuer %r, configured %r", found.get("issuer"), self.config.issuer)
                raise ProviderUnavailable("the sign-in provider's configuration names another issuer; ask the administrator")
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(found.get(key), str):
                    raise ProviderUnavailable(f"the sign-in provider's configuration has no {key}; ask the administrator")
            self._metadata, self._metadata_at, self._jwks = found, self.clock(), None
        return self._metadata

    async def _key_set(self, refresh: bool = False) -> KeySet:
        metadata = await self.metadata()
        if self._jwks is None or refresh:
            self._jwks = await self._get_json(metadata["jwks_uri"], "signing keys")
        try:
            return KeySet.import_key_set(self._jwks)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError):
            raise ProviderUnavailable("the sign-in provider's signing keys cannot be read") from None

    async def begin(self, redirect_uri: str, next_path: str) -> tuple[str, str]:
        """The provider's authorization URL for a new sign-in (state, nonce, PKCE S256), and its state."""
        metadata = await self.metadata()
        pending = self.pending.new(redirect_uri, next_path)
        url, _ = self._client(redirect_uri).create_authorization_url(
            metadata["authorization_endpoint"], state=pending.state, code_verifier=pending.code_verifier, nonce=pending.nonce
        )
        return url, pending.state

    async def finish(self, pending: PendingSignIn, code: str, issuer: str | None) -> ProviderIdentity:
        """Exchange the code (with the PKCE verifier), check the ID token, read the user."""
        metadata = await self.metadata()
        # RFC 9207: a provider that names itself in the response must be the one asked.
        if issuer is not None and issuer.rstrip("/") != self.config.issuer:
            raise OidcError("the sign-in answer came from another provider; start again")
        try:
            async with self._client(pending.redirect_uri) as http:
                token = await http.fetch_token(
                    metadata["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=pending.code_verifier,
                )
        except OAuthError as exc:
            logger.warning("oidc: the provider refused the code: %s", exc.error)
            raise OidcError(
                "the sign-in provider refused this sign-in (the link was used already or is too old); start again"
            ) from None
        except Exception as exc:
            logger.warning("oidc: the token request failed: %s", type(exc).__name__)
            raise ProviderUnavailable("the sign-in provider cannot be reached; try again later") from None
        if not isinstance(token.get("id_token"), str):
            raise OidcError("the sign-in provider sent no ID token; ask the administrator (is `openid` among the scopes?)")
        claims = await self._checked_id_token(metadata, token, pending.nonce)
        merged = dict(claims)
        if (self.config.username_claim not in merged or self.config.groups_claim not in merged) and token.get("access_token"):
            merged = {**await self._userinfo(metadata, token["access_token"], claims["sub"]), **merged}
        return ProviderIdentity(
            issuer=self.config.issuer,
            subject=str(claims["sub"]),
            username=self._username(merged),
            groups=self._groups(merged),
        )

    async def _checked_id_token(self, metadata: dict[str, Any], token: dict[str, Any], nonce: str) -> dict[str, Any]:
        # Never "none", and only what the provider says it signs with.
        algorithms = [a for a in metadata.get("id_token_signing_alg_values_supported") or ["RS256"] if a != "none"]
        registry = JWSRegistry(algorithms=algorithms, strict_check_header=False)
        try:
            try:
                decoded = jwt.decode(token["id_token"], await self._key_set(), registry=registry)
            except InvalidKeyIdError:  # the provider rotated its keys since they were read
                decoded = jwt.decode(token["id_token"], await self._key_set(refresh=True), registry=registry)
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {
                    "iss": {"essential": True, "value": metadata["issuer"]},
                    "aud": {"essential": True, "value": self.config.client_id},
                },
                {"nonce": nonce, "client_id": self.config.client_id, "access_token": token.get("access_token")},
            )
            claims.validate(now=int(time.time()), leeway=LEEWAY_S)
        except (JoseError, ValueError) as exc:
            logger.warning("oidc: an ID token failed its check: %s %s", type(exc).__name__, getattr(exc, "description", ""))
            raise OidcError("the sign-in provider's ID token did not check out; start again") from None
        return dict(claims)

    async def _userinfo(self, metadata: dict[str, Any], access_token: str, subject: str) -> dict[str, Any]:
        """Providers may release profile claims (the user name, groups) only here."""
        endpoint = metadata.get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            return {}
        info = await self._get_json(endpoint, "userinfo", headers={"Authorization": f"Bearer {access_token}"})
        # OIDC Core 5.3.2: userinfo of another subject must not be used.
        if info.get("sub") != subject:
            raise OidcError("the sign-in provider's user information is for another user; start again")
        return info

    def _username(self, claims: dict[str, Any]) -> str:
        name = claims.get(self.config.username_claim)
        if not isinstance(name, str) or not name.strip():
            raise SignInRefused(
                f"the sign-in provider did not say who you are (no {self.config.username_claim!r} claim); ask the administrator"
            )
        return name.strip()

    def _groups(self, claims: dict[str, Any]) -> frozenset[str]:
        groups = claims.get(self.config.groups_claim)
        if isinstance(groups, str):
            groups = [groups]
        if not isinstance(groups, list):
            return frozenset()
        return frozenset(g.strip().lower() for g in groups if isinstance(g, str) and g.strip())
