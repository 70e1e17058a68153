"""What the chat's panels share: who is asking, the per-session values kept in gr.State, and
the two lookups more than one panel shows (past conversations, figure thumbnails). The chat
(ui/chat.py) builds its panels (chat_answer, chat_feedback, chat_history, chat_sources,
chat_token) and hands each panel's wiring the state and the other panels' components its
events read or write."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app.models import User
from app.schemas import Source
from app.service import AccessDenied, KnowledgeBase, NotFound
from ui.chat_format import figure_sources
from ui.i18n import t

# The English texts (ui.i18n has every text in each language); ALL_COLLECTIONS is also the
# collection choice's value, whatever its label reads.
ALL_COLLECTIONS = t("chat_all_collections")
QUEUED = t("chat_queued")
NO_COLLECTION = t("chat_no_collection")
LOGGED_OUT = t("chat_logged_out")
# The panel is titled exactly "Sources" only while it lists an answer's sources.
SOURCES = t("chat_sources")
NO_SOURCES_YET = t("chat_no_sources_yet")
WRITING = t("chat_writing")
# Above an answer that is the quote itself: the model refused or gave no supported answer.
EXTRACTIVE = t("chat_extractive")


def signed_in(kb: KnowledgeBase, request: gr.Request | None) -> User:
    """The logged-in user; the local operator when no account has a password yet."""
    if not kb.login_required():
        return kb.system_user()
    username = getattr(request, "username", None)
    if not username:
        refused = AccessDenied(LOGGED_OUT)
        refused.i18n_key, refused.i18n_params = "chat_logged_out", {}  # shown in the page's language
        raise refused
    return kb.user(username)


def conversation_choices(kb: KnowledgeBase, user: User) -> list[tuple[str, int]]:
    return [(c.title, c.id) for c in kb.conversations.list(user)]


def gallery_items(kb: KnowledgeBase, user: User, figures: list[Source]) -> list[tuple[str, str]]:
    """Thumbnails for the Figures gallery (the full figure opens beside the chat on a
    click), captioned with their source number; figures the user may no longer read, or
    whose file is gone, are left out."""
    items = []
    for figure in figure_sources(figures):
        try:
            items.append((str(kb.thumbnail(user, figure.chunk_id)), f"[{figure.number}] {figure.label}"))
        except (AccessDenied, NotFound):
            continue
    return items


@dataclass(frozen=True, eq=False)
class ChatState:
    """One browser session's values, read and written by several panels' events. The keys of
    the three dicts are an answer's index in the chat, as a string (JSON-safe)."""

    conversation_id: gr.State  # the conversation being written; None until the first question
    message_sources: gr.State  # chat index -> that answer's sources (Source dumps)
    message_ids: gr.State  # chat index -> the stored answer's id, for feedback
    message_quotes: gr.State  # chat index -> the quote shown above that answer
    rated: gr.State  # the last thumbs up/down, which a comment is stored with
    pending_question: gr.State  # the question shown and being answered (the box is already cleared)


def chat_state() -> ChatState:
    return ChatState(
        conversation_id=gr.State(None),
        message_sources=gr.State({}),
        message_ids=gr.State({}),
        message_quotes=gr.State({}),
        rated=gr.State(None),
        pending_question=gr.State(""),
    )
