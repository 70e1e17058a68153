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
        section = f" · {html.escape(source.heading_path)}" if source.heading_path else ""
        lines.append(f"- **[{source.number}] {html.escape(source.label)}**{section} ({kind}{marker}, score {source.score:.2f})  \n  {snippet}…")
    return "\n".join(lines)


def render_answer(answer: Answer) -> str:
    text = answer.text
    if answer.cited_sources:
        refs = "; ".join(f"[{s.number}] {s.label}" for s in answer.cited_sources)
        text += f"\n\n*Sources: {html.escape(refs)}*"
    return text


def _turns(messages: list[dict]) -> list[tuple[str, str]]:
    """(question, answer) pairs from the chat so far, so a follow-up can be made standalone."""
    turns, question = [], None
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):  # Gradio may hand back content as typed parts
            content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        text = content if isinstance(content, str) else ""
        if message.get("role") == "user":
            question = text
        elif question is not None and text and not text.startswith("⚠️"):
            turns.append((question, text.split("\n\n*Sources:")[0]))
            question = None
    return turns


def build_app(kb: KnowledgeBase) -> gr.Blocks:
    def current_user(request: gr.Request | None):
        """The logged-in user; the local operator when no account has a password yet."""
        if not kb.login_required():
            return kb.system_user()
        username = getattr(request, "username", None)
        if not username:
            raise AccessDenied("please log in")
        return kb.user(username)

    def collection_choices(request: gr.Request | None = None) -> list[str]:
        return [ALL_COLLECTIONS] + [c.name for c in kb.readable_collections(current_user(request))]

    def respond(question: str, history: list[dict], collection: str, request: gr.Request) -> Iterator[tuple]:
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
            events = kb.ask_stream(current_user(request), question, names, history=_turns(history[:-2]))
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
                collection = gr.Dropdown(choices=[ALL_COLLECTIONS], value=ALL_COLLECTIONS, label="Collection", elem_id="collection")
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
        def refresh_collections(request: gr.Request):
            try:
                return gr.update(choices=collection_choices(request))
            except AccessDenied:
                return gr.update(choices=[ALL_COLLECTIONS])

        demo.load(refresh_collections, None, collection)
    return demo


def launch(kb: KnowledgeBase, host: str, port: int) -> None:
    """Serve the API with the chat mounted at / (OpenAPI docs at /docs)."""
    import uvicorn

    from app.api import create_app

    uvicorn.run(create_app(kb), host=host, port=port)
