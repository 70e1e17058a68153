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

import html
import io
import re
from collections.abc import Iterator

import gradio as gr
from PIL import Image

from app.conversations import ConversationNotFound, ConversationView
from app.page_view import SourceView
from app.registry import ModelNotAvailable
from app.safe_markdown import neutralise
from app.schemas import Answer, Quote, Source
from app.service import AccessDenied, EmptyCollection, KnowledgeBase, NotFound
from ui.chat_token import token_panel
from ui.i18n import I18N, SWITCH_SCRIPT, language, localized, switch, t

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
_CITATION = re.compile(r"\[(\d+)\]")
_GALLERY_CAPTION = re.compile(r"\[(\d+)\] ")
# Where render_answer's line of cited sources starts, in any language.
_SOURCES_LINE = re.compile(
    "\n\n\\*(?:" + "|".join(re.escape(t("chat_sources_line", lang, refs="")) for lang in ("en", "zh-CN")) + ")"
)

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


# --- rendering --------------------------------------------------------------------------


def _cited(text: str, sources: list[Source]) -> list[int]:
    numbers = {s.number for s in sources}
    return sorted({int(n) for n in _CITATION.findall(text) if int(n) in numbers})


def render_answer(text: str, sources: list[Source], index: int, lang: str = "en") -> str:
    """The answer with each [n] a link that opens source n of chat message `index`; nothing
    else in it links or loads anything (an answer stored before the citation check stripped
    images, or an extractive one, which is document text)."""
    linked = _CITATION.sub(lambda m: f"[[{m.group(1)}]](#cite-{index}-{m.group(1)})", text)
    by_number = {s.number: s for s in sources}
    cited = [by_number[n] for n in _cited(text, sources)]
    if cited:
        refs = "; ".join(f"[[{s.number}]](#cite-{index}-{s.number}) {_escape(s.label)}" for s in cited)
        linked += f"\n\n*{t('chat_sources_line', lang, refs=refs)}*"
    return neutralise(linked)


_INERT = re.compile(r"[\\`*_\[\]<>#|~!()$={}+\-.:@&]")
_REFERENCES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", ":": "&#58;", ".": "&#46;", "@": "&#64;"}


def _escape(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", text)


def inert(text: str) -> str:
    """Document text as plain text for the chat's Markdown, on one line: every Markdown
    and HTML character is escaped, and the characters bare URLs and e-mail addresses need
    (":", ".", "@") become character references, so no link, image, emphasis or tag
    renders from it; it reads the same."""
    return _INERT.sub(lambda m: _REFERENCES.get(m.group(0)) or "\\" + m.group(0), " ".join(text.split()))


def render_passage(shown: SourceView) -> str:
    """A passage in its surrounding text, the cited part marked: the document's own Markdown
    still formats it, but none of its images, links or tags is live."""
    lead, marked, trail = shown.marked()

    def safe(part: str) -> str:
        return neutralise(html.escape(part), keep_local=False)

    return f"{safe(shown.before + lead)}<mark>{safe(marked)}</mark>{safe(trail + shown.after)}"


def quote_key(index: int | str, number: int) -> str:
    """The key of a quote's [n]: opens source n of chat message `index` with only the quote highlighted."""
    return f"{index}-{number}q"


def render_quote(quote: Quote, index: int) -> str:
    """The quote as a blockquote with its citation: > “…” — [n] file, p. N."""
    link = f"[[{quote.source_number}]](#cite-{quote_key(index, quote.source_number)})"
    return f"> “{inert(quote.text)}” — {link} {inert(quote.label)}"


def render_message(answer: Answer, sources: list[Source], index: int, lang: str = "en") -> str:
    """A finished answer: the quote above the checked answer; an extractive answer (the
    quote is the answer) shown once, as a quotation."""
    quote = answer.quote
    if answer.extractive:
        if quote is not None:
            return f"*{t('chat_extractive', lang)}*\n\n{render_quote(quote, index)}"
        return f"*{t('chat_extractive', lang)}*\n\n> “{inert(answer.text)}”"
    head = f"{render_quote(quote, index)}\n\n" if quote is not None else ""
    return head + render_answer(answer.text, sources, index, lang)


def waiting_notice(ahead: int, lang: str = "en") -> str:
    return t("chat_waiting_one" if ahead == 1 else "chat_waiting_many", lang, ahead=ahead)


def render_partial(text: str, index: int, quote: Quote | None, ahead: int | None = None, lang: str = "en") -> str:
    """An answer being written: the quote (already shown) above the text so far, or, while
    it waits for the generator, how many answers are ahead of it."""
    head = f"{render_quote(quote, index)}\n\n" if quote is not None else ""
    if ahead is not None:
        return head + f"_{waiting_notice(ahead, lang)}_"
    # Unchecked model output, rendered again at every token: an image in it would be fetched at once.
    return head + (f"{neutralise(text, keep_local=False)} ▌" if text else f"_{t('chat_writing', lang)}_")


def source_choices(sources: list[Source], text: str, index: int, lang: str = "en") -> list[tuple[str, str]]:
    """Rows of the sources panel, cited first: (label, "<chat index>-<n>")."""
    cited = set(_cited(text, sources))
    ordered = sorted(sources, key=lambda s: (s.number not in cited, s.number))
    rows = []
    for s in ordered:
        marker = t("chat_cited" if s.number in cited else "chat_retrieved", lang)
        kind = t("chat_figure_kind", lang) if s.kind == "image" else ""
        snippet = " ".join(s.text.split())[:140]
        section = f" · {s.heading_path}" if s.heading_path else ""
        rows.append(
            (
                f"[{s.number}] {s.label}{section} ({kind}{marker}, {t('chat_score', lang)} {s.score:.2f}) — {snippet}…",
                f"{index}-{s.number}",
            )
        )
    return rows


def explain(exc: Exception, lang: str = "en") -> str:
    """What the user reads when a question cannot be answered. The service's own messages
    (the part after the colon) are English in every language."""
    if isinstance(exc, ModelNotAvailable):
        return t("chat_model_missing", lang, error=exc)
    if isinstance(exc, EmptyCollection):
        return t("chat_nothing_to_search", lang, error=exc)
    if isinstance(exc, ConversationNotFound):
        return t("chat_conversation_gone", lang)
    if isinstance(exc, (AccessDenied, ValueError, NotFound)):
        return t("warning", lang, message=localized(exc, lang))
    return t("chat_failed", lang, error=exc)


def _text(content) -> str:
    """Message text; Gradio may hand content back as a list of typed parts."""
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _figure_sources(sources: list[Source]) -> list[Source]:
    return [s for s in sources if s.kind == "image" and s.image_path]


def _gallery_number(caption: str | None) -> str | None:
    """The source number a gallery caption starts with ("[3] plan.pdf, p. 2" -> "3")."""
    found = _GALLERY_CAPTION.match(caption or "")
    return found.group(1) if found else None


FEEDBACK_LABELS: dict[int | None, str] = {1: "Like", -1: "Dislike"}  # None: no feedback yet


def feedback_values(view: ConversationView) -> list[str | None]:
    """The user's earlier 👍/👎 per answer, in order, as the chatbot shows them selected."""
    return [FEEDBACK_LABELS.get(m.rating) for m in view.messages if m.role == "assistant"]


def restore(view: ConversationView, lang: str = "en") -> tuple[list[dict], dict[str, list[dict]], dict[str, int]]:
    """Chat messages, sources per answer and message ids per answer of a stored conversation."""
    chat: list[dict] = []
    sources: dict[str, list[dict]] = {}
    ids: dict[str, int] = {}
    for message in view.messages:
        index = len(chat)
        if message.role == "assistant":
            chat.append({"role": "assistant", "content": render_answer(message.content, message.sources, index, lang)})
            sources[str(index)] = [s.model_dump() for s in message.sources]
            ids[str(index)] = message.id
        else:
            chat.append({"role": "user", "content": message.content})
    return chat, sources, ids


def _cited_text(answer: Answer, quote: Quote | None) -> str:
    """What marks sources as cited in the panel: the answer's [n], and the quote's source."""
    return answer.text + (f" [{quote.source_number}]" if quote is not None else "")


def _all_sources(answer: Answer) -> list[Source]:
    return answer.sources + [i for i in answer.images if i not in answer.sources]


# --- the app ---------------------------------------------------------------------------


def build_app(kb: KnowledgeBase) -> gr.Blocks:
    def current_user(request: gr.Request | None):
        """The logged-in user; the local operator when no account has a password yet."""
        if not kb.login_required():
            return kb.system_user()
        username = getattr(request, "username", None)
        if not username:
            refused = AccessDenied(LOGGED_OUT)
            refused.i18n_key, refused.i18n_params = "chat_logged_out", {}  # shown in the page's language
            raise refused
        return kb.user(username)

    def conversation_choices(user) -> list[tuple[str, int]]:
        return [(c.title, c.id) for c in kb.conversations.list(user)]

    def gallery_items(user, figures: list[Source]) -> list[tuple[str, str]]:
        """Thumbnails for the Figures gallery (the full figure opens beside the chat on a
        click), captioned with their source number; figures the user may no longer read, or
        whose file is gone, are left out."""
        items = []
        for figure in _figure_sources(figures):
            try:
                items.append((str(kb.thumbnail(user, figure.chunk_id)), f"[{figure.number}] {figure.label}"))
            except (AccessDenied, NotFound):
                continue
        return items

    def on_load(request: gr.Request, lang: str | None = None):
        """Collections, notice, past conversations and the language switch, in the page's
        language (`lang` when the switch just changed it: its cookie may not be set yet)."""
        lang = lang or language(request)
        everything = (t("chat_all_collections", lang), ALL_COLLECTIONS)  # the value stays the English sentinel
        try:
            user = current_user(request)
        except (AccessDenied, NotFound):
            return gr.update(choices=[everything]), t("chat_logged_out", lang), gr.update(choices=[]), lang
        names = [c.name for c in kb.readable_collections(user)]
        notice = t("signed_in", lang, user=_escape(user.username)) + ("" if names else f" **{t('chat_no_collection', lang)}**")
        return (gr.update(choices=[everything] + names), notice, gr.update(choices=conversation_choices(user), value=None), lang)

    def change_language(lang: str, request: gr.Request):
        # The collection and conversation stay chosen: only their labels change.
        collections, notice, _, lang = on_load(request, lang)
        return collections, notice, lang

    def show_question(question: str, chat: list[dict], request: gr.Request):
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
        question: str,
        chat: list[dict],
        collection: str,
        conversation_id,
        message_sources,
        message_ids,
        message_quotes,
        request: gr.Request,
    ) -> Iterator[tuple]:
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
            user = current_user(request)
            if conversation_id is None:
                conversation_id, started_here = kb.conversations.start(user, question), True
            for event in kb.ask_stream(user, question, names, conversation_id=conversation_id):
                answer = event.answer
                if quote is None and answer.quote is not None:
                    # Right after retrieval, before the model writes: the quote shows at once,
                    # and its [n] opens the source already.
                    quote = answer.quote
                    message_quotes[str(index)] = quote.model_dump()
                    message_sources[str(index)] = [s.model_dump() for s in _all_sources(answer)]
                if not event.done:
                    chat[index] = {"role": "assistant", "content": render_partial(answer.text, index, quote, event.ahead, lang)}
                    status = waiting_notice(event.ahead, lang) if event.ahead is not None else t("chat_writing", lang)
                    yield chat, conversation_id, message_sources, message_ids, nothing, nothing, nothing, status, message_quotes
                    continue
                sources = _all_sources(answer)
                final_quote = answer.quote  # the checked answer's word on the quote is final
                if final_quote is not None:
                    message_quotes[str(index)] = final_quote.model_dump()
                else:
                    message_quotes.pop(str(index), None)
                chat[index] = {"role": "assistant", "content": render_message(answer, sources, index, lang)}
                message_sources[str(index)] = [s.model_dump() for s in sources]
                if answer.message_id is not None:
                    message_ids[str(index)] = answer.message_id
                rows = source_choices(sources, _cited_text(answer, final_quote), index, lang)
                sources_update = gr.update(
                    choices=rows, value=None, label=I18N("chat_sources" if rows else "chat_no_sources_found")
                )
                listing = gr.update(choices=conversation_choices(user), value=conversation_id)
                yield (
                    chat,
                    conversation_id,
                    message_sources,
                    message_ids,
                    sources_update,
                    gallery_items(user, answer.images),
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

    def show_source(key: str | None, message_sources, message_quotes, request: gr.Request):
        """Show source `key`: "<chat index>-<n>" the highlighted page, the figure or the
        passage; "<chat index>-<n>q" (the quote's [n]) the same with only the quote highlighted."""
        if not key or "-" not in key:
            return gr.update(), gr.update(visible=False), gr.update(value="")
        lang = language(request)
        index, number = key.rsplit("-", 1)
        quote = None
        if number.endswith("q"):
            number = number[:-1]
            quoted = (message_quotes or {}).get(index)
            quote = Quote(**quoted) if quoted and str(quoted.get("source_number")) == number else None
        rows = [Source(**s) for s in (message_sources or {}).get(index, [])]
        source = next((s for s in rows if str(s.number) == number), None)
        if source is not None:
            chunk_id, label = source.chunk_id, source.label
        elif quote is not None:
            chunk_id, label = quote.chunk_id, quote.label
        else:
            return gr.update(), gr.update(visible=False), t("chat_source_gone", lang)
        try:
            # The quote is checked again there: only text of the chunk is ever highlighted.
            shown = kb.source_view(current_user(request), chunk_id, highlight=quote.text if quote else None)
        except (AccessDenied, NotFound) as exc:
            return gr.update(), gr.update(value=None, visible=False), t("chat_source_refused", lang, label=label, error=exc)
        chat_rows = gr.update(value=f"{index}-{number}")
        title = neutralise(f"**[{number}] {_escape(label)}**", keep_local=False)
        what = "quote" if shown.highlight else "passage"
        if shown.kind == "passage":
            text = t(f"chat_in_text_{what}", lang, title=title) + "\n\n" + render_passage(shown)
            return chat_rows, gr.update(value=None, visible=False), text
        assert shown.png is not None  # a page or figure view carries its image
        image = Image.open(io.BytesIO(shown.png))
        caption = t(f"chat_page_{what}" if shown.kind == "page" else "chat_figure", lang, title=title)
        return chat_rows, gr.update(value=image, visible=True), caption

    def open_source(key: str | None, message_sources, request: gr.Request):
        """A row of the sources panel: the whole passage highlighted."""
        return show_source(key, message_sources, None, request)

    def open_figure(message_sources, event: gr.SelectData, request: gr.Request):
        """A click on a gallery thumbnail opens that figure, full size, beside the chat.
        The gallery always shows the figures of the latest answer."""
        number = _gallery_number((event.value or {}).get("caption") if isinstance(event.value, dict) else None)
        answers = [int(i) for i in (message_sources or {}) if i.isdigit()]
        if number is None or not answers:
            return gr.update(), gr.update(), gr.update()
        return open_source(f"{max(answers)}-{number}", message_sources, request)

    def open_citation(key: str, message_sources, message_quotes, chat: list[dict], request: gr.Request):
        """A click on [n] in an answer (or in its quote): list that answer's sources, then open source n."""
        index = (key or "").rsplit("-", 1)[0]
        rows = [Source(**s) for s in (message_sources or {}).get(index, [])]
        text = next((_text(m.get("content")) for i, m in enumerate(chat or []) if str(i) == index), "")
        _, image, caption = show_source(key, message_sources, message_quotes, request)
        listing = gr.update(
            choices=source_choices(rows, _SOURCES_LINE.split(text)[0], int(index), language(request)) if index.isdigit() else [],
            value=(key or "").removesuffix("q"),
        )
        return listing, image, caption

    def open_conversation(conversation_id, request: gr.Request):
        lang = language(request)
        try:
            user = current_user(request)
            view = kb.conversations.get(user, int(conversation_id))
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
            rows, images = source_choices(stored, text, last, lang), gallery_items(user, stored)
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

    def new_chat():
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

    def on_like(message_ids, data: gr.LikeData, request: gr.Request):
        lang = language(request)
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        message_id = (message_ids or {}).get(str(index))
        if message_id is None or data.liked not in (True, False):
            return None, t("chat_only_stored", lang)
        rating = 1 if data.liked is True else -1
        try:
            kb.conversations.feedback(current_user(request), message_id, rating)
        except (ConversationNotFound, AccessDenied, NotFound, ValueError) as exc:
            return None, explain(exc, lang)
        return {"message_id": message_id, "rating": rating}, t(
            "chat_rated_helpful" if rating == 1 else "chat_rated_unhelpful", lang
        )

    def send_comment(comment: str, rated, request: gr.Request):
        lang = language(request)
        if not rated:
            return comment, t("chat_rate_first", lang)
        try:
            kb.conversations.feedback(current_user(request), rated["message_id"], rated["rating"], (comment or "").strip())
        except (ConversationNotFound, AccessDenied, NotFound, ValueError) as exc:
            return comment, explain(exc, lang)
        return "", t("chat_comment_stored", lang)

    with gr.Blocks(title="mmkb — knowledge base chat") as demo:
        conversation_id = gr.State(None)
        message_sources = gr.State({})
        message_ids = gr.State({})
        message_quotes = gr.State({})  # chat index -> the quote shown above that answer
        rated = gr.State(None)
        pending_question = gr.State("")
        with gr.Row(equal_height=True):
            gr.Markdown(I18N("chat_intro"))
            lang_switch = switch()
        notice = gr.Markdown("", elem_id="notice")
        with gr.Row():
            with gr.Column(scale=1, min_width=200):
                new = gr.Button(I18N("chat_new_chat"), elem_id="new-chat")
                conversations = gr.Radio(choices=[], label=I18N("chat_past"), elem_id="conversations")
                token_panel(kb, current_user)
            with gr.Column(scale=3):
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
                with gr.Row():
                    comment = gr.Textbox(
                        placeholder=I18N("chat_comment_placeholder"),
                        label=I18N("chat_comment"),
                        show_label=False,
                        scale=5,
                        elem_id="feedback-comment",
                    )
                    send_feedback = gr.Button(I18N("chat_send_comment"), scale=1, elem_id="send-feedback")
                feedback_status = gr.Markdown("", elem_id="feedback-status")
            with gr.Column(scale=2):
                sources = gr.Radio(
                    choices=[], label=I18N("chat_no_sources_yet"), info=I18N("chat_pick_source"), elem_id="sources"
                )
                source_text = gr.Markdown("", elem_id="source-text")
                source_image = gr.Image(
                    label=I18N("chat_cited_source"),
                    type="pil",
                    format="png",
                    visible=False,
                    interactive=False,
                    elem_id="source-image",
                )
                # Thumbnails only; a click opens the full figure in the source view, not an in-gallery preview.
                gallery = gr.Gallery(label=I18N("chat_figures"), columns=2, height=300, allow_preview=False, elem_id="figures")
        cite_key = gr.Textbox(visible="hidden", elem_id="cite-key")
        cite_open = gr.Button("open citation", visible="hidden", elem_id="cite-open")

        answer_outputs = [
            chatbot,
            conversation_id,
            message_sources,
            message_ids,
            sources,
            gallery,
            conversations,
            status,
            message_quotes,
        ]
        for trigger in (send.click, question.submit):
            trigger(show_question, [question, chatbot], [chatbot, pending_question, question], concurrency_limit=None).then(
                respond,
                [pending_question, chatbot, collection, conversation_id, message_sources, message_ids, message_quotes],
                answer_outputs,
                concurrency_limit=kb.settings.chat_concurrency,
                concurrency_id="answer",
            )
        sources.input(open_source, [sources, message_sources], [sources, source_image, source_text])
        gallery.select(open_figure, [message_sources], [sources, source_image, source_text])
        cite_open.click(open_citation, [cite_key, message_sources, message_quotes, chatbot], [sources, source_image, source_text])
        conversations.input(
            open_conversation,
            [conversations],
            [chatbot, conversation_id, message_sources, message_ids, sources, gallery, source_image, source_text, message_quotes],
        )
        new.click(
            new_chat,
            None,
            [
                chatbot,
                conversation_id,
                message_sources,
                message_ids,
                sources,
                gallery,
                source_image,
                source_text,
                conversations,
                message_quotes,
            ],
        )
        # The chat's own trash button clears the screen: treat it as a new chat, so the next
        # question does not land in the conversation the user just cleared away.
        chatbot.clear(
            new_chat,
            None,
            [
                chatbot,
                conversation_id,
                message_sources,
                message_ids,
                sources,
                gallery,
                source_image,
                source_text,
                conversations,
                message_quotes,
            ],
        )
        chatbot.like(on_like, [message_ids], [rated, feedback_status])
        send_feedback.click(send_comment, [comment, rated], [comment, feedback_status])
        comment.submit(send_comment, [comment, rated], [comment, feedback_status])
        demo.load(on_load, None, [collection, notice, conversations, lang_switch])
        lang_switch.input(change_language, [lang_switch], [collection, notice, lang_switch])
    demo.i18n_instance = I18N  # also when mounted without page_options(): mount_gradio_app keeps it
    return demo
