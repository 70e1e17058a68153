"""Conversation history: the user's past conversations, each reopened with its answers, their
sources and the user's earlier ratings, and "New chat", which starts the next question in a
new conversation (so does the chat's own trash button)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app.conversations import ConversationNotFound
from app.schemas import Source
from app.service import AccessDenied, KnowledgeBase, NotFound
from ui.chat_common import ChatState, gallery_items, signed_in
from ui.chat_format import explain, feedback_values, restore, source_choices
from ui.chat_sources import SourcesPanel
from ui.i18n import I18N, language


@dataclass(frozen=True, eq=False)
class HistoryPanel:
    kb: KnowledgeBase
    new: gr.Button
    conversations: gr.Radio

    def wire(self, state: ChatState, chatbot: gr.Chatbot, sources: SourcesPanel) -> None:
        shown = [chatbot, state.conversation_id, state.message_sources, state.message_ids, sources.sources, sources.gallery]
        self.conversations.input(
            self.open_conversation, [self.conversations], [*shown, sources.image, sources.text, state.message_quotes]
        )
        cleared = [*shown, sources.image, sources.text, self.conversations, state.message_quotes]
        new_chat = self.new_chat  # one handler object for both: Gradio's queue groups events by it
        self.new.click(new_chat, None, cleared)
        # The chat's own trash button clears the screen: treat it as a new chat, so the next
        # question does not land in the conversation the user just cleared away.
        chatbot.clear(new_chat, None, cleared)

    def open_conversation(self, conversation_id, request: gr.Request):
        lang = language(request)
        try:
            user = signed_in(self.kb, request)
            view = self.kb.conversations.get(user, int(conversation_id))
        except (ConversationNotFound, AccessDenied, NotFound, TypeError, ValueError) as exc:
            return (
                [],
                None,
                {},
                {},
                gr.update(choices=[], value=None, label=I18N("chat_no_sources_yet")),
                [],
                gr.update(value=None, visible=False),
                explain(exc, lang),
                {},
            )
        chat, sources, ids = restore(view, lang)
        last = max((int(i) for i in sources), default=None)
        if last is None:
            rows, images = [], []
        else:
            stored = [Source(**s) for s in sources[str(last)]]
            text = next(m.content for m in view.messages if m.id == ids[str(last)])
            rows, images = source_choices(stored, text, last, lang), gallery_items(self.kb, user, stored)
        shown = gr.update(value=chat, feedback_value=feedback_values(view))
        return (
            shown,
            view.id,
            sources,
            ids,
            gr.update(choices=rows, value=None, label=I18N("chat_sources" if rows else "chat_no_sources_yet")),
            images,
            gr.update(value=None, visible=False),
            "",
            {},
        )

    def new_chat(self):
        cleared = gr.update(value=[], feedback_value=None)
        return (
            cleared,
            None,
            {},
            {},
            gr.update(choices=[], value=None, label=I18N("chat_no_sources_yet")),
            [],
            gr.update(value=None, visible=False),
            "",
            gr.update(value=None),
            {},
        )


def history_panel(kb: KnowledgeBase) -> HistoryPanel:
    """The "New chat" button and the list of past conversations, in the column being built."""
    new = gr.Button(I18N("chat_new_chat"), elem_id="new-chat")
    conversations = gr.Radio(choices=[], label=I18N("chat_past"), elem_id="conversations")
    return HistoryPanel(kb, new, conversations)
