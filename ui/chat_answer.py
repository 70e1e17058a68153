"""The chat column: the collection to ask, the conversation, the question box and the answer's
status line. A question shows at once; its answer streams in below it (the quote first, right
after retrieval), and when it is done the sources panel lists its sources and figures and the
past conversations show the one it was stored in."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import gradio as gr

from app.schemas import Quote
from app.service import KnowledgeBase
from ui.chat_common import ALL_COLLECTIONS, ChatState, conversation_choices, gallery_items, signed_in
from ui.chat_format import all_sources, cited_text, explain, render_message, render_partial, source_choices, waiting_notice
from ui.i18n import I18N, language, t


@dataclass(frozen=True, eq=False)
class AnswerPanel:
    kb: KnowledgeBase
    collection: gr.Dropdown
    chatbot: gr.Chatbot
    question: gr.Textbox
    send: gr.Button
    status: gr.Markdown

    def wire(self, state: ChatState, sources: gr.Radio, gallery: gr.Gallery, conversations: gr.Radio) -> None:
        """Ask on the button or on Enter; the answer also fills the sources panel (`sources`,
        `gallery`) and the list of past conversations."""
        answer_outputs = [
            self.chatbot,
            state.conversation_id,
            state.message_sources,
            state.message_ids,
            sources,
            gallery,
            conversations,
            self.status,
            state.message_quotes,
        ]
        answer_inputs = [
            state.pending_question,
            self.chatbot,
            self.collection,
            state.conversation_id,
            state.message_sources,
            state.message_ids,
            state.message_quotes,
        ]
        # One handler object for both triggers: Gradio's queue groups events by it.
        show_question, respond = self.show_question, self.respond
        for trigger in (self.send.click, self.question.submit):
            trigger(
                show_question,
                [self.question, self.chatbot],
                [self.chatbot, state.pending_question, self.question],
                concurrency_limit=None,
            ).then(
                respond,
                answer_inputs,
                answer_outputs,
                concurrency_limit=self.kb.settings.chat_concurrency,
                concurrency_id="answer",
            )

    def show_question(self, question: str, chat: list[dict], request: gr.Request):
        """Runs outside the answer queue: the question shows at once, marked as queued
        until an answering slot is free (then `respond` replaces the mark)."""
        question = (question or "").strip()
        if not question:
            return chat, question, ""
        chat = list(chat or []) + [
            {"role": "user", "content": question},
            {"role": "assistant", "content": t("chat_queued", language(request))},
        ]
        return chat, question, ""

    def respond(
        self,
        question: str,
        chat: list[dict],
        collection: str,
        conversation_id,
        message_sources,
        message_ids,
        message_quotes,
        request: gr.Request,
    ) -> Iterator[tuple]:
        kb = self.kb
        chat = list(chat or [])
        message_sources, message_ids = dict(message_sources or {}), dict(message_ids or {})
        message_quotes = dict(message_quotes or {})
        nothing = gr.update()
        if not question or not chat:
            yield chat, conversation_id, message_sources, message_ids, nothing, nothing, nothing, "", message_quotes
            return
        lang = language(request)
        index = len(chat) - 1
        searching = t("chat_searching", lang)
        chat[index] = {"role": "assistant", "content": f"_{searching}_"}
        cleared = gr.update(choices=[], value=None, label=I18N("chat_no_sources_yet"))  # the last answer's sources leave with it
        yield chat, conversation_id, message_sources, message_ids, cleared, [], nothing, searching, message_quotes
        names = None if collection in (None, "", ALL_COLLECTIONS) else [collection]
        started_here = False
        user = None
        quote: Quote | None = None
        try:
            user = signed_in(kb, request)
            if conversation_id is None:
                conversation_id, started_here = kb.conversations.start(user, question), True
            for event in kb.ask_stream(user, question, names, conversation_id=conversation_id):
                answer = event.answer
                if quote is None and answer.quote is not None:
                    # Right after retrieval, before the model writes: the quote shows at once,
                    # and its [n] opens the source already.
                    quote = answer.quote
                    message_quotes[str(index)] = quote.model_dump()
                    message_sources[str(index)] = [s.model_dump() for s in all_sources(answer)]
                if not event.done:
                    chat[index] = {"role": "assistant", "content": render_partial(answer.text, index, quote, event.ahead, lang)}
                    status = waiting_notice(event.ahead, lang) if event.ahead is not None else t("chat_writing", lang)
                    yield chat, conversation_id, message_sources, message_ids, nothing, nothing, nothing, status, message_quotes
                    continue
                sources = all_sources(answer)
                final_quote = answer.quote  # the checked answer's word on the quote is final
                if final_quote is not None:
                    message_quotes[str(index)] = final_quote.model_dump()
                else:
                    message_quotes.pop(str(index), None)
                chat[index] = {"role": "assistant", "content": render_message(answer, sources, index, lang)}
                message_sources[str(index)] = [s.model_dump() for s in sources]
                if answer.message_id is not None:
                    message_ids[str(index)] = answer.message_id
                rows = source_choices(sources, cited_text(answer, final_quote), index, lang)
                sources_update = gr.update(
                    choices=rows, value=None, label=I18N("chat_sources" if rows else "chat_no_sources_found")
                )
                listing = gr.update(choices=conversation_choices(kb, user), value=conversation_id)
                yield (
                    chat,
                    conversation_id,
                    message_sources,
                    message_ids,
                    sources_update,
                    gallery_items(kb, user, answer.images),
                    listing,
                    "",
                    message_quotes,
                )
        except Exception as exc:  # model missing, empty collection, no access: say so, keep the UI alive
            if started_here and user is not None:
                kb.conversations.delete(user, conversation_id)  # nothing was stored in it
                conversation_id = None
            message_quotes.pop(str(index), None)
            message_sources.pop(str(index), None)
            chat[index] = {"role": "assistant", "content": explain(exc, lang)}
            yield (
                chat,
                conversation_id,
                message_sources,
                message_ids,
                gr.update(choices=[], value=None, label=I18N("chat_no_sources_yet")),
                [],
                nothing,
                "",
                message_quotes,
            )


def answer_panel(kb: KnowledgeBase) -> AnswerPanel:
    """The collection choice, the conversation, the question box and the status line, in the
    column being built."""
    collection = gr.Dropdown(
        choices=[ALL_COLLECTIONS], value=ALL_COLLECTIONS, label=I18N("chat_collection"), elem_id="collection"
    )
    chatbot = gr.Chatbot(label=I18N("chat_chat"), height=460, elem_id="chat", feedback_options=("Like", "Dislike"))
    with gr.Row():
        question = gr.Textbox(
            placeholder=I18N("chat_placeholder"),
            label=I18N("chat_question"),
            show_label=False,
            scale=5,
            elem_id="question",
        )
        send = gr.Button(I18N("chat_ask"), variant="primary", scale=1, elem_id="ask")
    status = gr.Markdown("", elem_id="status")
    return AnswerPanel(kb, collection, chatbot, question, send, status)
