"""Who a request to a mounted Gradio app is: logins that expire, the local operator before
any account exists, the caller's address for the login throttle, and file routes that
check read access.

Gradio asks one mapping, `App.tokens` (cookie token -> user name), who a request is, for
the page, the queue, the API and the file routes alike, and refuses anyone it does not
know once `auth` is set. So `auth` is always set, and the mapping is replaced by
`GradioLogins`: logins lapse after a lifetime, and a request without a login is the local
operator only while the server may run open (loopback or --insecure-no-auth) and no account
exists, a check made per request, so that the first account switches login on without a
restart.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol, cast

import anyio
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount

from app.file_access import in_data_dir, may_read_file
from app.service import SYSTEM_USER, KnowledgeBase, NotFound


class GradioLogins(MutableMapping[str, str]):
    """Gradio's cookie token -> user name, with expiry and an anonymous fallback.

    anonymous: the user name a request without a (live) login acts as, or None to refuse it."""

    def __init__(
        self, lifetime_s: float, clock: Callable[[], float] = time.monotonic, anonymous: Callable[[], str | None] = lambda: None
    ) -> None:
        self.lifetime_s = lifetime_s
        self.clock = clock
        self.anonymous = anonymous
        self._entries: dict[str, tuple[str, float]] = {}

    def _purge(self) -> None:
        now = self.clock()
        for token in [t for t, (_, expires) in self._entries.items() if expires <= now]:
            del self._entries[token]

    def __setitem__(self, token: str, username: str) -> None:
        self._entries[token] = (username, self.clock() + self.lifetime_s)

    def __getitem__(self, token: str) -> str:
        self._purge()
        if token in self._entries:
            return self._entries[token][0]
        # Gradio looks up a missing cookie as token None; the answer decides page, queue and files.
        anonymous = self.anonymous()
        if anonymous is None:
            raise KeyError(token)
        return anonymous

    def __contains__(self, token: object) -> bool:
        # Only real logins: Gradio's logout deletes a token it finds "in" the mapping.
        self._purge()
        return token in self._entries

    def __delitem__(self, token: str) -> None:
        del self._entries[token]

    def __iter__(self) -> Iterator[str]:
        self._purge()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._purge()
        return len(self._entries)


class OpenUntilFirstAccount:
    """The anonymous fallback: the local operator while `allowed` and no account exists.
    Once an account is seen the answer stays "nobody", whatever happens to the accounts."""

    def __init__(self, kb: KnowledgeBase, allowed: bool) -> None:
        self.kb, self.allowed = kb, allowed
        self._closed = not allowed

    def __call__(self) -> str | None:
        if self._closed:
            return None
        if self.kb.login_required():
            self._closed = True
            return None
        return SYSTEM_USER


# --- the caller's address, for the login throttle ------------------------------------

_client_address: ContextVar[str | None] = ContextVar("mmkb_client_address", default=None)


def client_address() -> str | None:
    """The network address of the request being handled (set by RememberClientAddress).
    Gradio calls its `auth` function with the user name and password only."""
    return _client_address.get()


class RememberClientAddress:
    """ASGI middleware: the peer's address, as the server saw the connection (not a
    forwarded-for header, which any client can write)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        client = scope.get("client")
        token = _client_address.set(client[0] if client else None)
        try:
            await self.app(scope, receive, send)
        finally:
            _client_address.reset(token)


# --- file routes ----------------------------------------------------------------------

_FILE_ROUTE = re.compile(r"^/gradio_api/file[=/](?P<target>.+)$")


class GuardStoredFiles:
    """ASGI middleware on a Gradio app: its file routes serve any file under `allowed_paths`
    to anyone logged in; a file of the data directory is served only to a user the API would
    give it to (app.file_access). Copies in Gradio's own cache (what the UI shows) are named
    by a keyed hash of their content and still need a login."""

    def __init__(self, app, kb: KnowledgeBase, gradio_app) -> None:
        self.app, self.kb, self.gradio_app = app, kb, gradio_app

    async def __call__(self, scope, receive, send) -> None:
        target = self._stored_file(scope) if scope["type"] == "http" else None
        if target is not None:
            allowed = await anyio.to_thread.run_sync(self._allowed, HTTPConnection(scope), target)
            if allowed is not True:
                # 404 for "forbidden" too: a path must not reveal that the file exists.
                await (PlainTextResponse("Not authenticated", 401) if allowed is None else PlainTextResponse("Not found", 404))(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)

    def _stored_file(self, scope) -> Path | None:
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root + "/"):
            path = path[len(root) :]
        match = _FILE_ROUTE.match(path)
        if match is None or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", match["target"]):
            return None
        target = Path(os.path.abspath(match["target"]))
        return target if in_data_dir(self.kb, target) else None

    def _allowed(self, connection: HTTPConnection, target: Path) -> bool | None:
        """True: may read; False: may not; None: nobody is logged in."""
        cookie_id = self.gradio_app.cookie_id
        token = connection.cookies.get(f"access-token-{cookie_id}") or connection.cookies.get(
            f"access-token-unsecure-{cookie_id}"
        )
        username = self.gradio_app.tokens.get(token)
        if username is None:
            return None
        try:
            user = self.kb.system_user() if username == SYSTEM_USER else self.kb.user(username)
        except NotFound:
            return None
        return may_read_file(self.kb, user, target)


class _GradioApp(Protocol):
    """What secure_gradio and GradioSignIn use of the gradio.routes.App mounted on the FastAPI app."""

    auth: object
    tokens: MutableMapping[str, str]
    cookie_id: str

    def add_middleware(self, middleware_class: Any, **options: Any) -> None: ...


def secure_gradio(app, path: str, kb: KnowledgeBase, lifetime_s: float, open_without_accounts: bool) -> _GradioApp:
    """Set up the Gradio app mounted at `path` on FastAPI `app` (mounted with an `auth`
    function): expiring logins, the local operator only until the first account exists (and
    only if `open_without_accounts`), the client's address for `auth`, guarded file routes."""
    mounted = [route.app for route in app.routes if isinstance(route, Mount) and route.path == path.rstrip("/")]
    if not mounted or not hasattr(mounted[0], "tokens"):
        raise RuntimeError(f"no Gradio app is mounted at {path!r}; cannot secure its logins")
    gradio_app = cast(_GradioApp, mounted[0])  # a Mount's app is any ASGI app; one with `tokens` is Gradio's
    if gradio_app.auth is None:
        raise RuntimeError(f"the Gradio app at {path!r} was mounted without auth: it would let anyone in")
    gradio_app.tokens = GradioLogins(lifetime_s, anonymous=OpenUntilFirstAccount(kb, open_without_accounts))
    gradio_app.add_middleware(GuardStoredFiles, kb=kb, gradio_app=gradio_app)
    gradio_app.add_middleware(RememberClientAddress)
    return gradio_app


# --- signing in from elsewhere (single sign-on) ------------------------------------------


class GradioSignIn:
    """Logs a user in to the mounted Gradio apps the way Gradio's own /login does, for a
    sign-in that happened elsewhere (ui.oidc): a new token in each app's `tokens` (a
    GradioLogins, so it lapses like a password login) and that app's two cookies."""

    def __init__(self) -> None:
        self.apps: list[_GradioApp] = []

    def add(self, gradio_app: _GradioApp) -> None:
        self.apps.append(gradio_app)

    def sign_in(self, response: Response, username: str) -> None:
        for gradio_app in self.apps:
            token = secrets.token_urlsafe(16)
            gradio_app.tokens[token] = username
            # Gradio reads either cookie (gradio/routes.py, login()): the secure one where the
            # page is served over HTTPS, the other over plain HTTP. Set as Gradio sets them.
            response.set_cookie(f"access-token-{gradio_app.cookie_id}", token, httponly=True, samesite="none", secure=True)
            response.set_cookie(f"access-token-unsecure-{gradio_app.cookie_id}", token, httponly=True)
