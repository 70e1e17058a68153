"""Feedback on answers: the chat's thumbs up/down on an answer is stored at once, and a
comment written below the chat is stored with the last rating."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app.conversations import ConversationNotFound
from app.service import AccessDenied, KnowledgeBase, NotFound
from ui.chat_common import ChatState, signed_in
from ui.chat_format import explain
from ui.i18n import I18N, language, t


@dataclass(frozen=True, eq=False)
class FeedbackPanel:
    kb: KnowledgeBase
    comment: gr.Textbox
    send: gr.Button
    status: gr.Markdown

    def wire(self, state: ChatState, chatbot: gr.Chatbot) -> None:
        chatbot.like(self.on_like, [state.message_ids], [state.rated, self.status])
        send_comment = self.send_comment  # one handler object for both: Gradio's queue groups events by it
        self.send.click(send_comment, [self.comment, state.rated], [self.comment, self.status])
        self.comment.submit(send_comment, [self.comment, state.rated], [self.comment, self.status])

    def on_like(self, message_ids, data: gr.LikeData, request: gr.Request):
        lang = language(request)
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        message_id = (message_ids or {}).get(str(index))
        if message_id is None or data.liked not in (True, False):
            return None, t("chat_only_stored", lang)
        rating = 1 if data.liked is True else -1
        try:
            self.kb.conversations.feedback(signed_in(self.kb, request), message_id, rating)
        except (ConversationNotFound, AccessDenied, NotFound, ValueError) as exc:
            return None, explain(exc, lang)
        return {"message_id": message_id, "rating": rating}, t(
            "chat_rated_helpful" if rating == 1 else "chat_rated_unhelpful", lang
        )

    def send_comment(self, comment: str, rated, request: gr.Request):
        lang = language(request)
        if not rated:
            return comment, t("chat_rate_first", lang)
        try:
            self.kb.conversations.feedback(
                signed_in(self.kb, request), rated["message_id"], rated["rating"], (comment or "").strip()
            )
        except (ConversationNotFound, AccessDenied, NotFound, ValueError) as exc:
            return comment, explain(exc, lang)
        return "", t("chat_comment_stored", lang)


def feedback_panel(kb: KnowledgeBase) -> FeedbackPanel:
    """The comment box and the feedback status line, in the column being built."""
    with gr.Row():
        comment = gr.Textbox(
            placeholder=I18N("chat_comment_placeholder"),
            label=I18N("chat_comment"),
            show_label=False,
            scale=5,
            elem_id="feedback-comment",
        )
        send = gr.Button(I18N("chat_send_comment"), scale=1, elem_id="send-feedback")
    status = gr.Markdown("", elem_id="feedback-status")
    return FeedbackPanel(kb, comment, send, status)
