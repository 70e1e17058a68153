"""The ID token checks of app.oidc on tokens made here, for the cases a well-behaved provider
never sends (tests/test_oidc_login.py runs the flow against a real one): another key's
signature, `alg: none`, another audience or issuer, a wrong nonce, an expired token."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from app.oidc import OidcClient, OidcConfig, OidcConfigError, OidcError
from tests.conftest import make_settings
from ui.oidc import RedactCallbackQuery

ISSUER, CLIENT_ID, NONCE = "https://id.example.org", "mmkb", "the-nonce"
PROVIDER_KEY = RSAKey.generate_key(2048, parameters={"kid": "provider-key", "alg": "RS256", "use": "sig"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "provider-key", "alg": "RS256", "use": "sig"})  # same kid, forged


def _client(tmp_path) -> OidcClient:
    config = OidcConfig.from_settings(make_settings(tmp_path, oidc_issuer=ISSUER, oidc_client_id=CLIENT_ID))
    assert config is not None
    client = OidcClient(config)
    # As discovery would have found them: no network in this test.
    client._metadata = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/auth",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks",
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    client._metadata_at = time.monotonic()
    client._jwks = {"keys": [PROVIDER_KEY.as_dict(private=False)]}
    return client


def _claims(**changes) -> dict:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "user-1", "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": NONCE}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _check(client: OidcClient, id_token: str) -> dict:
    return asyncio.run(client._checked_id_token(client._metadata or {}, {"id_token": id_token}, NONCE))


def test_a_token_signed_by_the_providers_key_passes(tmp_path):
    token = jwt.encode({"alg": "RS256", "kid": "provider-key"}, _claims(), PROVIDER_KEY)
    assert _check(_client(tmp_path), token)["sub"] == "user-1"


@pytest.mark.parametrize(
    "claims",
    [
        _claims(aud="another-client"),
        _claims(iss="https://evil.example.org"),
        _claims(nonce="another-nonce"),
        _claims(nonce=None),
        _claims(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
    ],
    ids=["audience", "issuer", "nonce", "no-nonce", "expired"],
)
def test_a_token_with_a_wrong_claim_is_refused(tmp_path, claims):
    token = jwt.encode({"alg": "RS256", "kid": "provider-key"}, claims, PROVIDER_KEY)
    with pytest.raises(OidcError, match="did not check out"):
        _check(_client(tmp_path), token)


def test_a_token_signed_by_another_key_or_unsigned_is_refused(tmp_path):
    client = _client(tmp_path)
    forged = jwt.encode({"alg": "RS256", "kid": "provider-key"}, _claims(), OTHER_KEY)
    with pytest.raises(OidcError, match="did not check out"):
        _check(client, forged)
    payload = forged.split(".")[1]
    unsigned = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=").decode()
    with pytest.raises(OidcError, match="did not check out"):
        _check(client, f"{unsigned}.{payload}.")


def test_half_a_configuration_is_refused_at_start(tmp_path):
    with pytest.raises(OidcConfigError, match="both"):
        OidcConfig.from_settings(make_settings(tmp_path, oidc_issuer=ISSUER))
    with pytest.raises(OidcConfigError, match="openid"):
        OidcConfig.from_settings(make_settings(tmp_path, oidc_issuer=ISSUER, oidc_client_id=CLIENT_ID, oidc_scopes="profile"))
    assert OidcConfig.from_settings(make_settings(tmp_path)) is None


def test_the_access_log_shows_the_callbacks_path_but_not_its_code():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/auth/oidc/callback?code=SECRET-CODE&state=S", "1.1", 303),
        None,
    )
    assert RedactCallbackQuery().filter(record)
    assert "SECRET-CODE" not in record.getMessage() and "/auth/oidc/callback?" in record.getMessage()
    other = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "%s %s %s", ("a", "GET", "/?q=1"), None)
    RedactCallbackQuery().filter(other)
    assert other.getMessage() == "a GET /?q=1"
