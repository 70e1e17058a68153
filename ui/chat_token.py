"""The chat's "API access" panel: a signed-in user makes an API token for the REST API, the
OpenAI-compatible /v1 endpoint and MCP over HTTP. The only way to one for a user who signs
in through single sign-on (OIDC), who has no password to give POST /api/tokens."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from app.models import User
from app.service import AccessDenied, KnowledgeBase, NotFound
from ui.i18n import I18N, language, t


def token_panel(kb: KnowledgeBase, current_user: Callable[[gr.Request | None], User]) -> None:
    """Adds the panel to the Blocks being built; current_user: the chat's own resolver."""
    with gr.Accordion(I18N("token_title"), open=False, elem_id="api-access"):
        gr.Markdown(I18N("token_intro"))
        create = gr.Button(I18N("token_create"), elem_id="create-token")
        shown = gr.Textbox(label=I18N("token_label"), interactive=False, buttons=["copy"], visible=False, elem_id="api-token")

    def create_token(request: gr.Request):
        if not kb.login_required():
            # The open local app acts as its operator, who has no account to hold a token.
            return gr.update(value=t("token_needs_account", language(request)), visible=True)
        try:
            user = current_user(request)
        except (AccessDenied, NotFound):
            return gr.update(value="", visible=False)
        return gr.update(value=kb.accounts.issue_token(user, "chat"), visible=True)

    create.click(create_token, None, shown, api_name="create_token")
