"""Gradio chat for staff. It talks only to `app.service.KnowledgeBase`."""

from __future__ import annotations

import html
from collections.abc import Iterator

import gradio as gr

from app.schemas import Answer
from app.service import AccessDenied, KnowledgeBase

ALL_COLLECTIONS = "All collections"


def render_sources(answer: Answer) -> str:
    """Markdown list of the sources: cited ones first and marked, with file and page."""
    if not answer.sources:
        return "_No sources were found for this question._"
    cited = set(answer.cited)
    ordered = sorted(answer.sources, key=lambda s: (s.number not in cited, s.number))
    lines = ["**Sources**"]
    for source in ordered:
        marker = "cited" if source.number in cited else "retrieved"
        snippet = html.escape(source.text[:220].replace("\n", " "))
        kind = "figure · " if source.kind == "image" else ""
        lines.append(f"- **[{source.number}] {html.escape(source.label)}** ({kind}{marker}, score {source.score:.2f})  \n  {snippet}…")
    return "\n".join(lines)


def render_answer(answer: Answer) -> str:
    text = answer.text
    if answer.cited_sources:
        refs = "; ".join(f"[{s.number}] {s.label}" for s in answer.cited_sources)
        text += f"\n\n*Sources: {html.escape(refs)}*"
    return text


def build_app(kb: KnowledgeBase) -> gr.Blocks:
    def collection_choices() -> list[str]:
        return [ALL_COLLECTIONS] + [c.name for c in kb.readable_collections(kb.system_user())]

    def respond(question: str, history: list[dict], collection: str) -> Iterator[tuple]:
        history = list(history or [])
        question = (question or "").strip()
        if not question:
            yield history, "", gr.update(), ""
            return
        history.append({"role": "user", "content": question})
        history.append({"role": "assistant", "content": "…"})
        yield history, "_Searching the documents…_", [], ""
        names = None if collection in (None, "", ALL_COLLECTIONS) else [collection]
        try:
            events = kb.ask_stream(kb.system_user(), question, names)
            for event in events:
                answer = event.answer
                history[-1] = {"role": "assistant", "content": render_answer(answer) if event.done else answer.text + " ▌"}
                gallery = [(s.image_path, s.label) for s in answer.images if s.image_path]
                yield history, render_sources(answer) if event.done else "_Writing the answer…_", gallery, ""
        except (AccessDenied, ValueError) as exc:
            history[-1] = {"role": "assistant", "content": f"⚠️ {exc}"}
            yield history, "", [], ""
        except Exception as exc:  # model missing, index unreadable: tell the user, keep the UI alive
            history[-1] = {"role": "assistant", "content": f"⚠️ The answer failed: {exc}"}
            yield history, "", [], ""

    with gr.Blocks(title="mmkb — knowledge base chat") as demo:
        gr.Markdown("## mmkb\nAsk a question; answers cite the file and page they come from.")
        with gr.Row():
            with gr.Column(scale=3):
                collection = gr.Dropdown(choices=collection_choices(), value=ALL_COLLECTIONS, label="Collection", elem_id="collection")
                chatbot = gr.Chatbot(label="Chat", height=460, elem_id="chat")
                with gr.Row():
                    question = gr.Textbox(placeholder="Ask about your documents…", show_label=False, scale=5, elem_id="question")
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
            with gr.Column(scale=2):
                sources = gr.Markdown("_Sources appear here._", elem_id="sources")
                gallery = gr.Gallery(label="Figures", columns=2, height=300, elem_id="figures")
        outputs = [chatbot, sources, gallery, question]
        send.click(respond, [question, chatbot, collection], outputs)
        question.submit(respond, [question, chatbot, collection], outputs)
        demo.load(lambda: gr.update(choices=collection_choices()), None, collection)
    return demo


def launch(kb: KnowledgeBase, host: str, port: int) -> None:
    demo = build_app(kb)
    demo.queue(default_concurrency_limit=2).launch(
        server_name=host, server_port=port, allowed_paths=[str(kb.settings.figures_dir.resolve())], show_error=True
    )
