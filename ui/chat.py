"""Gradio chat for staff. It talks only to `app.service.KnowledgeBase`.

Every question is stored in the user's current conversation (the first question names
it); past conversations are listed and reopen with their sources. A citation [n] in an
answer, a row of the sources panel or a thumbnail in the Figures gallery opens the source:
the page with the passage highlighted, the figure, or the passage in its text. Thumbs
up/down (with an optional comment) are stored as feedback on the answer.

Right after retrieval, before the model writes, the best supporting sentence(s) of a
source show as a quote (verbatim document text, made inert for Markdown) with its
citation; its [n] opens the source with only the quoted sentence(s) highlighted. The
generated answer streams below it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import gradio as gr

from app.service import AccessDenied, KnowledgeBase, NotFound
from ui.chat_answer import answer_panel
from ui.chat_common import ALL_COLLECTIONS, chat_state, conversation_choices, signed_in
from ui.chat_feedback import feedback_panel
from ui.chat_format import escape_markdown
from ui.chat_history import history_panel
from ui.chat_sources import citation_link, sources_panel
from ui.chat_token import token_panel
from ui.i18n import I18N, SWITCH_SCRIPT, language, switch, t

# Citation links are ordinary Markdown links to "#cite-<chat index>-<n>"; this catches
# their click before the browser follows them and hands the key to a hidden button.
CHAT_HEAD = """
<script>
document.addEventListener("click", (event) => {
  const link = event.target.closest ? event.target.closest('a[href*="#cite-"]') : null;
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  const key = link.getAttribute("href").split("#cite-")[1];
  const box = document.querySelector("#cite-key textarea, #cite-key input");
  const open = document.querySelector("#cite-open");
  if (!box || !open) return;
  box.value = key;
  box.dispatchEvent(new Event("input", { bubbles: true }));
  setTimeout(() => open.click(), 50);
}, true);
</script>
"""
CHAT_CSS = """
#chat a[href*="#cite-"] { font-weight: 600; text-decoration: none; }
#source-text mark { background: #ffe066; }
"""


def page_options() -> dict:
    """Page-level options (head scripts, CSS, translations) for `launch()` / `mount_gradio_app()`."""
    return {"head": CHAT_HEAD + SWITCH_SCRIPT, "css": CHAT_CSS, "i18n": I18N}


@dataclass(frozen=True, eq=False)
class ChatPage:
    """What the page's load and its language switch write: the collections the user may ask,
    the signed-in notice, the past conversations and the switch itself."""

    kb: KnowledgeBase
    lang_switch: gr.Radio
    notice: gr.Markdown
    collection: gr.Dropdown
    conversations: gr.Radio

    def wire(self, demo: gr.Blocks) -> None:
        demo.load(self.on_load, None, [self.collection, self.notice, self.conversations, self.lang_switch])
        self.lang_switch.input(self.change_language, [self.lang_switch], [self.collection, self.notice, self.lang_switch])

    def on_load(self, request: gr.Request, lang: str | None = None):
        """Collections, notice, past conversations and the language switch, in the page's
        language (`lang` when the switch just changed it: its cookie may not be set yet)."""
        lang = lang or language(request)
        everything = (t("chat_all_collections", lang), ALL_COLLECTIONS)  # the value stays the English sentinel
        try:
            user = signed_in(self.kb, request)
        except (AccessDenied, NotFound):
            return gr.update(choices=[everything]), t("chat_logged_out", lang), gr.update(choices=[]), lang
        names = [c.name for c in self.kb.readable_collections(user)]
        notice = t("signed_in", lang, user=escape_markdown(user.username)) + (
            "" if names else f" **{t('chat_no_collection', lang)}**"
        )
        return (
            gr.update(choices=[everything] + names),
            notice,
            gr.update(choices=conversation_choices(self.kb, user), value=None),
            lang,
        )

    def change_language(self, lang: str, request: gr.Request):
        # The collection and conversation stay chosen: only their labels change.
        collections, notice, _, lang = self.on_load(request, lang)
        return collections, notice, lang


def build_app(kb: KnowledgeBase) -> gr.Blocks:
    """The chat page: past conversations (and API access) | the chat | its sources, wired
    in the order Gradio numbers their events' API names by (show_question_1, new_chat_1)."""
    with gr.Blocks(title="mmkb — knowledge base chat") as demo:
        state = chat_state()
        with gr.Row(equal_height=True):
            gr.Markdown(I18N("chat_intro"))
            lang_switch = switch()
        notice = gr.Markdown("", elem_id="notice")
        with gr.Row():
            with gr.Column(scale=1, min_width=200):
                history = history_panel(kb)
                token_panel(kb, partial(signed_in, kb))
            with gr.Column(scale=3):
                answers = answer_panel(kb)
                feedback = feedback_panel(kb)
            with gr.Column(scale=2):
                sources = sources_panel(kb)
        citation = citation_link()
        # Wired once every panel exists: an answer fills the sources panel, built after it.
        answers.wire(state, sources.sources, sources.gallery, history.conversations)
        sources.wire(state, citation, answers.chatbot)
        history.wire(state, answers.chatbot, sources)
        feedback.wire(state, answers.chatbot)
        ChatPage(kb, lang_switch, notice, answers.collection, history.conversations).wire(demo)
    demo.i18n_instance = I18N  # also when mounted without page_options(): mount_gradio_app keeps it
    return demo
