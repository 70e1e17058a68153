"""How the chat writes what it shows: answers with their citation links, the quote above an
answer, passages and sources, the rows of the sources panel, and why a question went
unanswered. Pure functions of the service's results (no Gradio, no KnowledgeBase), so that
the chat's panels (ui/chat.py and its chat_* modules) and the tests share one way to write each.
"""

from __future__ import annotations

import html
import re

from app.conversations import ConversationNotFound, ConversationView
from app.page_view import SourceView
from app.registry import ModelNotAvailable
from app.safe_markdown import neutralise
from app.schemas import Answer, Quote, Source
from app.service import AccessDenied, EmptyCollection, NotFound
from ui.i18n import localized, t

_CITATION = re.compile(r"\[(\d+)\]")
_GALLERY_CAPTION = re.compile(r"\[(\d+)\] ")
# Where render_answer's line of cited sources starts, in any language.
SOURCES_LINE = re.compile(
    "\n\n\\*(?:" + "|".join(re.escape(t("chat_sources_line", lang, refs="")) for lang in ("en", "zh-CN")) + ")"
)


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
        refs = "; ".join(f"[[{s.number}]](#cite-{index}-{s.number}) {escape_markdown(s.label)}" for s in cited)
        linked += f"\n\n*{t('chat_sources_line', lang, refs=refs)}*"
    return neutralise(linked)


_INERT = re.compile(r"[\\`*_\[\]<>#|~!()$={}+\-.:@&]")
_REFERENCES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", ":": "&#58;", ".": "&#46;", "@": "&#64;"}


def escape_markdown(text: str) -> str:
    """A name (a user's, a source's label) in Markdown as written: its Markdown characters escaped."""
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


def message_text(content) -> str:
    """Message text; Gradio may hand content back as a list of typed parts."""
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def figure_sources(sources: list[Source]) -> list[Source]:
    return [s for s in sources if s.kind == "image" and s.image_path]


def gallery_number(caption: str | None) -> str | None:
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


def cited_text(answer: Answer, quote: Quote | None) -> str:
    """What marks sources as cited in the panel: the answer's [n], and the quote's source."""
    return answer.text + (f" [{quote.source_number}]" if quote is not None else "")


def all_sources(answer: Answer) -> list[Source]:
    return answer.sources + [i for i in answer.images if i not in answer.sources]
