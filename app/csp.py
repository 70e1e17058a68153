"""The Content-Security-Policy every response carries: a page of this app loads, frames and
talks to nothing but this app.

It is the second line behind app.safe_markdown: should document or model text ever reach a
page as a live `<img>` or link target, the browser still refuses to fetch it from elsewhere.
Gradio serves its scripts, styles and fonts from the app itself and runs inline scripts (its
page config, the chat's citation handler), hence 'unsafe-inline'; images may also be data:
and blob: URLs, which Gradio makes for uploads and previews, and which reach no one.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "frame-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)
# FastAPI's /docs and /redoc pages load Swagger UI and ReDoc from this CDN (scripts and styles
# only; still no third-party images, connections or frames).
_DOCS_CDN = "https://cdn.jsdelivr.net"
DOCS_POLICY = (
    POLICY.replace("script-src 'self'", f"script-src 'self' {_DOCS_CDN}")
    .replace("style-src 'self'", f"style-src 'self' {_DOCS_CDN}")
    .replace("worker-src 'self' blob:", f"worker-src 'self' blob: {_DOCS_CDN}")
)
DOCS_PATHS = frozenset({"/docs", "/redoc"})


class ContentSecurityPolicy:
    """Adds the header to every HTTP response, mounted Gradio apps included. Plain ASGI: it
    touches only a response's first message, so answer streams pass through as they are."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = DOCS_POLICY if scope["path"] in DOCS_PATHS else POLICY

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Content-Security-Policy"] = policy
            await send(message)

        await self.app(scope, receive, send_with_policy)
