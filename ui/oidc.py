"""The web side of OpenID Connect sign-in (app.oidc): /auth/oidc/login sends the browser to
the provider, /auth/oidc/callback brings it back, checks it and logs it in to the chat and
the admin console at once (ui.sessions.GradioSignIn), with the roles its groups map to.

The sign-in's state is kept on the server (single use) and also in a short-lived cookie of
the browser that started it: a callback URL that an attacker started and sent to someone
else finds no such cookie there, so nobody is signed in as the attacker (login CSRF). Every
failure is a short page that says what to do; nothing shows or logs a code or a token."""

from __future__ import annotations

import hmac
import html
import logging
import re

import anyio
from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.accounts import Accounts, AuthError
from app.directory import DirectoryUser
from app.oidc import PENDING_TTL_S, OidcClient, OidcError, SignInRefused
from ui.sessions import GradioSignIn

logger = logging.getLogger(__name__)

LOGIN_PATH = "/auth/oidc/login"
CALLBACK_PATH = "/auth/oidc/callback"
_STATE_COOKIE = "mmkb-oidc-state"
# Where a sign-in may return to: a fixed list, so that the login URL is no open redirect.
_NEXT_PATHS = ("/", "/admin/")


class RedactCallbackQuery(logging.Filter):
    """For uvicorn's access log: the callback's query holds the sign-in code; log its path only."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) > 2 and isinstance(args[2], str) and args[2].startswith(CALLBACK_PATH + "?"):
            record.args = (*args[:2], CALLBACK_PATH + "?…", *args[3:])
        return True


def sso_link(next_path: str = "/") -> str:
    """The login page's link (Gradio's `auth_message` is HTML shown under the form)."""
    return f'<p style="text-align:center"><a href="{LOGIN_PATH}?next={html.escape(next_path)}">Sign in with SSO</a></p>'


def message_page(message: str, status: int) -> HTMLResponse:
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Sign-in</title>"
        '<body style="font-family:sans-serif;max-width:36em;margin:4em auto">'
        f"<h1>Sign-in did not work</h1><p id=message>{html.escape(message)}</p>"
        f'<p><a href="{LOGIN_PATH}">Sign in with SSO again</a> · <a href="/">Back to the login page</a></p></body></html>'
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def oidc_routes(client: OidcClient, accounts: Accounts, signer: GradioSignIn) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def redirect_uri(request: Request) -> str:
        # Behind a proxy the request's own URL is the proxy's view of it: set MMKB_OIDC_REDIRECT_BASE.
        base = client.config.redirect_base or str(request.base_url).rstrip("/")
        return base + CALLBACK_PATH

    @router.get(LOGIN_PATH)
    async def login(request: Request, next_path: str = Query("/", alias="next")) -> Response:
        try:
            url, state = await client.begin(redirect_uri(request), next_path if next_path in _NEXT_PATHS else "/")
        except OidcError as exc:
            return message_page(str(exc), exc.status)
        response = RedirectResponse(url, status_code=303)
        # Lax: sent on the provider's top-level redirect back here, not on cross-site subrequests.
        response.set_cookie(
            _STATE_COOKIE,
            state,
            max_age=int(PENDING_TTL_S),
            path=CALLBACK_PATH,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    @router.get(CALLBACK_PATH)
    async def callback(
        request: Request,
        state: str = "",
        code: str = "",
        error: str = "",
        iss: str | None = None,
    ) -> Response:
        response = await _finish(request, state, code, error, iss)
        response.delete_cookie(_STATE_COOKIE, path=CALLBACK_PATH)
        return response

    async def _finish(request: Request, state: str, code: str, error: str, iss: str | None) -> Response:
        started_here = request.cookies.get(_STATE_COOKIE, "")
        if not state or not started_here or not hmac.compare_digest(state.encode(), started_here.encode()):
            logger.warning("oidc sign-in refused: the state does not match this browser's")
            return message_page("This sign-in was not started in this browser, or it has expired; start again.", 400)
        pending = client.pending.take(state)
        if pending is None:
            logger.warning("oidc sign-in refused: unknown, used or expired state")
            return message_page("This sign-in link was used already or has expired; start again.", 400)
        if error:
            # The provider's error code, from a short fixed vocabulary (RFC 6749 4.1.2.1); never echoed raw.
            code_name = re.sub(r"[^a-z_]", "", error.lower())[:40]
            logger.warning("oidc sign-in refused by the provider: %s", code_name)
            if code_name in ("access_denied", "consent_required", "login_required", "interaction_required"):
                return message_page("Sign-in was cancelled or refused at the sign-in provider.", 403)
            return message_page(f"The sign-in provider refused the sign-in ({code_name or 'no reason given'}).", 400)
        if not code:
            return message_page("The sign-in provider sent no sign-in code; start again.", 400)
        try:
            identity = await client.finish(pending, code, iss)
            found = DirectoryUser(username=identity.username, dn=f"{identity.issuer}#{identity.subject}", groups=identity.groups)
            try:
                user = await anyio.to_thread.run_sync(accounts.sign_in_verified, found)
            except AuthError as exc:
                raise SignInRefused(str(exc)) from None
        except OidcError as exc:
            return message_page(str(exc), exc.status)
        logger.info("oidc sign-in: %r (%d group(s))", user.username[:100], len(identity.groups))
        response = RedirectResponse(pending.next_path, status_code=303)
        signer.sign_in(response, user.username)
        return response

    return router
