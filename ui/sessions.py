"""Expiring logins for the Gradio chat.

Gradio keeps its logins in a plain dict on the mounted app (`App.tokens`, cookie token ->
user name) and never expires them. Swapping that dict for this mapping makes a login
lapse `lifetime` after it was made: Gradio's own `login_check` then refuses the page, the
queue and file routes, and the browser shows the login form again on reload.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, MutableMapping

from starlette.routing import Mount


class ExpiringLogins(MutableMapping[str, str]):
    def __init__(self, lifetime_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.lifetime_s = lifetime_s
        self.clock = clock
        self._entries: dict[str, tuple[str, float]] = {}

    def _purge(self) -> None:
        now = self.clock()
        for token in [t for t, (_, expires) in self._entries.items() if expires <= now]:
            del self._entries[token]

    def __setitem__(self, token: str, username: str) -> None:
        self._entries[token] = (username, self.clock() + self.lifetime_s)

    def __getitem__(self, token: str) -> str:
        self._purge()
        return self._entries[token][0]

    def __delitem__(self, token: str) -> None:
        del self._entries[token]

    def __iter__(self) -> Iterator[str]:
        self._purge()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._purge()
        return len(self._entries)


def expire_logins(app, path: str, lifetime_s: float) -> None:
    """Make the logins of the Gradio app mounted at `path` on FastAPI `app` expire."""
    mounted = [route.app for route in app.routes if isinstance(route, Mount) and route.path == path.rstrip("/")]
    if not mounted or not hasattr(mounted[0], "tokens"):
        raise RuntimeError(f"no Gradio app is mounted at {path!r}; cannot make its logins expire")
    mounted[0].tokens = ExpiringLogins(lifetime_s)
