"""The composition root: the API (app.api) with the Gradio chat at / and the admin console at
/admin mounted on it, and OIDC sign-in at /auth/oidc when configured. The one module that
knows both app and ui; `kb serve` runs it."""

from __future__ import annotations

import logging

import anyio
import gradio as gr
from fastapi import FastAPI, HTTPException

from app.accounts import AuthError, TooManyAttempts
from app.api import create_api
from app.directory import DirectoryUnavailable
from app.oidc import OidcClient, OidcConfig
from app.service import KnowledgeBase
from ui.admin import build_admin
from ui.admin import page_options as admin_page_options
from ui.chat import build_app, page_options
from ui.oidc import RedactCallbackQuery, oidc_routes, sso_link
from ui.sessions import GradioSignIn, client_address, secure_gradio


def create_app(kb: KnowledgeBase, mount_ui: bool = True, open_without_accounts: bool = False) -> FastAPI:
    """The whole server. open_without_accounts: the UI lets callers without a login act as the
    local administrator until the first account exists (app.exposure: loopback or
    --insecure-no-auth); the API never does. mount_ui=False: the API alone (tests, scripts)."""
    api = create_api(kb)
    if not mount_ui:
        return api
    # Always set, so that Gradio checks every request: secure_gradio admits callers
    # without a login only while open_without_accounts and no account exists.
    auth = _gradio_auth(kb)
    # Single sign-on (OIDC): its routes come before the mounts, as the chat's mount at /
    # would otherwise answer them; the login pages link to it.
    signer = GradioSignIn()
    oidc = OidcConfig.from_settings(kb.settings)
    if oidc is not None:
        api.include_router(oidc_routes(OidcClient(oidc), kb.accounts, signer))
    # /admin first: the chat's mount at / would otherwise answer every path.
    # One upload is at most a file at the cap or a zip that inflates to at most its limit.
    biggest_upload = max(kb.settings.max_upload_bytes, kb.settings.zip_max_total_bytes)
    api = gr.mount_gradio_app(
        api,
        build_admin(kb),
        path="/admin",
        auth=auth,
        auth_message=sso_link("/admin/") if oidc else None,
        max_file_size=biggest_upload,
        **admin_page_options(),
    )
    api = gr.mount_gradio_app(
        api,
        build_app(kb),
        path="/",
        allowed_paths=[str(kb.settings.figures_dir.resolve())],
        auth=auth,
        auth_message=sso_link("/") if oidc else None,
        **page_options(),
    )
    for path in ("/admin", "/"):
        signer.add(secure_gradio(api, path, kb, kb.settings.session_hours * 3600, open_without_accounts))
    return api


def _gradio_auth(kb: KnowledgeBase):
    async def check(username: str, password: str) -> bool:
        # Gradio passes no request; ui.sessions notes the caller's address for the throttle.
        client = client_address()
        try:
            await anyio.to_thread.run_sync(kb.accounts.login, username, password, client)  # argon2 off the event loop
        except TooManyAttempts as exc:
            raise HTTPException(status_code=429, detail=str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
        except DirectoryUnavailable as exc:
            raise HTTPException(status_code=503, detail=str(exc), headers={"Retry-After": "30"}) from None
        except AuthError:
            return False
        return True

    return check


def launch(kb: KnowledgeBase, host: str, port: int, open_without_accounts: bool = False) -> None:
    """Serve the API with the chat mounted at / (OpenAPI docs at /docs).
    open_without_accounts: callers act as the local administrator until the first account
    exists (app.exposure decides from the bound address)."""
    import uvicorn

    # The models load (and the generator evaluates its fixed prompt prefix) while the server
    # starts, not on the first question.
    kb.preload_models()
    # The access log would otherwise record each OIDC callback's sign-in code.
    logging.getLogger("uvicorn.access").addFilter(RedactCallbackQuery())
    uvicorn.run(create_app(kb, open_without_accounts=open_without_accounts), host=host, port=port)
