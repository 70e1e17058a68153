"""The sources panel beside the chat and its source viewer: the last answer's sources (cited
first) and figure thumbnails; a row, a thumbnail or a citation [n] in an answer opens that
source there: the page with the passage highlighted, the figure, or the passage in its text
(the quote's [n]: only the quoted sentence(s) highlighted)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import gradio as gr
from PIL import Image

from app.safe_markdown import neutralise
from app.schemas import Quote, Source
from app.service import AccessDenied, KnowledgeBase, NotFound
from ui.chat_common import ChatState, signed_in
from ui.chat_format import SOURCES_LINE, escape_markdown, gallery_number, message_text, render_passage, source_choices
from ui.i18n import I18N, language, t


@dataclass(frozen=True, eq=False)
class CitationLink:
    """Hidden: the page's script (ui.chat.CHAT_HEAD) writes a clicked [n]'s key into `key`
    and clicks `button`, since a link in the chat's Markdown cannot call the server itself."""

    key: gr.Textbox
    button: gr.Button


def citation_link() -> CitationLink:
    return CitationLink(
        key=gr.Textbox(visible="hidden", elem_id="cite-key"),
        button=gr.Button("open citation", visible="hidden", elem_id="cite-open"),
    )


@dataclass(frozen=True, eq=False)
class SourcesPanel:
    kb: KnowledgeBase
    sources: gr.Radio
    text: gr.Markdown
    image: gr.Image
    gallery: gr.Gallery

    @property
    def viewer(self) -> list:
        """What opening a source shows, in the handlers' order: the chosen row, the image, the text."""
        return [self.sources, self.image, self.text]

    def wire(self, state: ChatState, citation: CitationLink, chatbot: gr.Chatbot) -> None:
        self.sources.input(self.open_source, [self.sources, state.message_sources], self.viewer)
        self.gallery.select(self.open_figure, [state.message_sources], self.viewer)
        citation.button.click(
            self.open_citation, [citation.key, state.message_sources, state.message_quotes, chatbot], self.viewer
        )

    def show_source(self, key: str | None, message_sources, message_quotes, request: gr.Request):
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
            shown = self.kb.source_view(signed_in(self.kb, request), chunk_id, highlight=quote.text if quote else None)
        except (AccessDenied, NotFound) as exc:
            return gr.update(), gr.update(value=None, visible=False), t("chat_source_refused", lang, label=label, error=exc)
        chat_rows = gr.update(value=f"{index}-{number}")
        title = neutralise(f"**[{number}] {escape_markdown(label)}**", keep_local=False)
        what = "quote" if shown.highlight else "passage"
        if shown.kind == "passage":
            text = t(f"chat_in_text_{what}", lang, title=title) + "\n\n" + render_passage(shown)
            return chat_rows, gr.update(value=None, visible=False), text
        assert shown.png is not None  # a page or figure view carries its image
        image = Image.open(io.BytesIO(shown.png))
        caption = t(f"chat_page_{what}" if shown.kind == "page" else "chat_figure", lang, title=title)
        return chat_rows, gr.update(value=image, visible=True), caption

    def open_source(self, key: str | None, message_sources, request: gr.Request):
        """A row of the sources panel: the whole passage highlighted."""
        return self.show_source(key, message_sources, None, request)

    def open_figure(self, message_sources, event: gr.SelectData, request: gr.Request):
        """A click on a gallery thumbnail opens that figure, full size, beside the chat.
        The gallery always shows the figures of the latest answer."""
        number = gallery_number((event.value or {}).get("caption") if isinstance(event.value, dict) else None)
        answers = [int(i) for i in (message_sources or {}) if i.isdigit()]
        if number is None or not answers:
            return gr.update(), gr.update(), gr.update()
        return self.open_source(f"{max(answers)}-{number}", message_sources, request)

    def open_citation(self, key: str, message_sources, message_quotes, chat: list[dict], request: gr.Request):
        """A click on [n] in an answer (or in its quote): list that answer's sources, then open source n."""
        index = (key or "").rsplit("-", 1)[0]
        rows = [Source(**s) for s in (message_sources or {}).get(index, [])]
        text = next((message_text(m.get("content")) for i, m in enumerate(chat or []) if str(i) == index), "")
        _, image, caption = self.show_source(key, message_sources, message_quotes, request)
        listing = gr.update(
            choices=source_choices(rows, SOURCES_LINE.split(text)[0], int(index), language(request)) if index.isdigit() else [],
            value=(key or "").removesuffix("q"),
        )
        return listing, image, caption


def sources_panel(kb: KnowledgeBase) -> SourcesPanel:
    """The sources list, the source viewer (text or image) and the figure thumbnails, in the
    column being built."""
    sources = gr.Radio(choices=[], label=I18N("chat_no_sources_yet"), info=I18N("chat_pick_source"), elem_id="sources")
    text = gr.Markdown("", elem_id="source-text")
    image = gr.Image(
        label=I18N("chat_cited_source"),
        type="pil",
        format="png",
        visible=False,
        interactive=False,
        elem_id="source-image",
    )
    # Thumbnails only; a click opens the full figure in the source view, not an in-gallery preview.
    gallery = gr.Gallery(label=I18N("chat_figures"), columns=2, height=300, allow_preview=False, elem_id="figures")
    return SourcesPanel(kb, sources, text, image, gallery)
