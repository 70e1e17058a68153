"""The Gradio chat in a real browser (Debian's Chromium driven by Playwright)."""

from __future__ import annotations

import pytest

from app.schemas import Answer, Quote, Source
from ingest.thumbnails import MAX_SIDE_PX
from tests.conftest import free_port
from tests.servers import SCREENSHOTS, needs_chromium
from ui.chat import build_app, page_options
from ui.chat_format import render_message

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def chat_url(sample_kb):
    demo = build_app(sample_kb)
    port = free_port()
    demo.queue().launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        allowed_paths=[str(sample_kb.settings.figures_dir.resolve())],
        **page_options(),
    )
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_a_question_in_the_chat_shows_a_cited_answer_and_its_sources(chat_url, browser, sample_questions):
    question = next(q for q in sample_questions if q["file"] == "employee-travel-policy.pdf" and q["page"] == 3)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(chat_url)
    page.locator("#notice").get_by_text("Signed in as").wait_for(timeout=60_000)  # the page's load event has run
    page.locator("#question textarea").fill(question["question"])
    page.locator("#ask").click()
    sources = page.locator("#sources")
    sources.get_by_text("Sources", exact=True).wait_for(timeout=240_000)  # the panel is titled so once the answer is done
    page.screenshot(path=str(SCREENSHOTS / "chat-answer.png"), full_page=True)
    answer = page.locator("#chat .message").last.inner_text()
    assert "employee-travel-policy.pdf, p. 3" in answer
    listed = sources.inner_text()
    assert "employee-travel-policy.pdf, p. 3" in listed and "cited" in listed
    page.close()


def test_a_figure_question_shows_the_figure_in_the_gallery(chat_url, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(chat_url)
    page.locator("#notice").get_by_text("Signed in as").wait_for(timeout=60_000)  # the page's load event has run
    page.locator("#question textarea").fill("What does the red danger sign say?")
    page.locator("#ask").click()
    page.locator("#sources").get_by_text("Sources", exact=True).wait_for(timeout=240_000)
    gallery_images = page.locator("#figures img")
    gallery_images.first.wait_for(timeout=30_000)
    page.screenshot(path=str(SCREENSHOTS / "chat-figure.png"), full_page=True)
    assert gallery_images.count() >= 1
    # The gallery loads thumbnails (the sign is 640x480) ...
    gallery_images.first.wait_for(state="visible")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=gallery_images.first.element_handle())
    shown = gallery_images.first.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert 0 < max(shown) <= MAX_SIDE_PX
    # ... and a click opens the full figure beside the chat.
    gallery_images.first.click()
    page.locator("#source-text").get_by_text("the figure").wait_for(timeout=30_000)
    full = page.locator("#source-image img")
    full.wait_for(timeout=30_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=full.element_handle())
    assert full.evaluate("img => img.naturalWidth") > MAX_SIDE_PX
    page.close()


# Installed before asking: remembers the chat's last message as it was when a quote first
# showed in it, and whether the answer was finished then (the Sources panel is titled
# "Sources" only once it is).
WATCH_FOR_QUOTE = """() => {
  window.quoteSeen = null;
  const chat = document.querySelector('#chat');
  const look = () => {
    if (window.quoteSeen) return;
    const messages = chat.querySelectorAll('.message');
    const last = messages[messages.length - 1];
    const quote = last && last.querySelector('blockquote');
    if (!quote) return;
    const panel = document.querySelector('#sources').innerText;
    window.quoteSeen = {message: last.innerText, quote: quote.innerText, answered: /(^|\\n)Sources(\\n|$)/.test(panel)};
  };
  new MutationObserver(look).observe(chat, {childList: true, subtree: true, characterData: true});
}"""


def test_the_quote_shows_in_the_chat_before_the_answer_is_written(chat_url, browser, sample_questions):
    """Needs the quote producer (app/answering.py, app/generation/evidence.py)."""
    question = next(q for q in sample_questions if q["file"] == "employee-travel-policy.pdf" and q["page"] == 3)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(chat_url)
    page.locator("#notice").get_by_text("Signed in as").wait_for(timeout=60_000)
    page.evaluate(WATCH_FOR_QUOTE)
    page.locator("#question textarea").fill(question["question"])
    page.locator("#ask").click()
    page.wait_for_function("() => window.quoteSeen !== null", timeout=240_000)
    seen = page.evaluate("() => window.quoteSeen")
    page.screenshot(path=str(SCREENSHOTS / "chat-quote-streaming.png"), full_page=True)
    # The quote came while the answer was still to be written (or being written) ...
    assert not seen["answered"] and ("Writing the answer" in seen["message"] or "▌" in seen["message"]), seen
    assert "employee-travel-policy.pdf, p. 3" in seen["quote"] and question["answer"].split()[0] in seen["quote"]
    # ... and stays above the finished answer.
    page.locator("#sources").get_by_text("Sources", exact=True).wait_for(timeout=240_000)
    final = page.locator("#chat .message").last
    assert final.locator("blockquote").count() == 1
    assert final.locator("blockquote").inner_text().strip() == seen["quote"].strip()
    assert "▌" not in final.inner_text() and "Writing the answer" not in final.inner_text()
    page.close()


def test_quoted_document_text_renders_as_plain_text(browser):
    """A quote is document text: nothing in it may render as a link, image, tag or emphasis;
    only its [n] is a link (to the source view). An extractive answer is shown once."""
    hostile = (
        "Read [the guide](http://evil.example/x) ![pixel](http://evil.example/p.png) at www.evil.example "
        "or mail help@evil.example <b>now</b> <img src=x onerror=alert(1)> *very* _much_ `code` # 2.5 Nm | ok"
    )
    quote = Quote(source_number=2, chunk_id=9, filename="guide_[v2].pdf", page=4, text=hostile, score=0.8)
    sources = [
        Source(number=2, chunk_id=9, collection="c", filename="guide_[v2].pdf", page=4, kind="text", text=hostile, score=0.8)
    ]
    answered = Answer(question="q", text="Use 2.5 Nm [2].", sources=sources, cited=[2], quote=quote)
    extractive = Answer(question="q", text=hostile, sources=sources, cited=[2], quote=quote, extractive=True)
    import gradio as gr

    with gr.Blocks() as demo:
        gr.Chatbot(
            value=[
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": render_message(answered, sources, 1)},
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": render_message(extractive, sources, 3)},
            ],
            elem_id="chat",
        )
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **page_options())
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/")
        quotes = page.locator("#chat blockquote")
        quotes.first.wait_for(timeout=60_000)
        assert quotes.count() == 2
        for i in range(2):
            block = quotes.nth(i)
            text = " ".join(block.inner_text().split())
            assert " ".join(hostile.split()) in text and "guide_[v2].pdf, p. 4" in text
            links = block.locator("a")
            assert links.count() == 1 and links.first.get_attribute("href").endswith("-2q") and links.first.inner_text() == "[2]"
            assert block.locator("img, b, em, strong, code, h1, table").count() == 0
        quoted = page.locator("#chat .message").filter(has=page.locator("blockquote"))
        first = quoted.filter(has_text="Use 2.5 Nm").last.inner_text()
        second = quoted.filter(has_text="Quoted from the source").last.inner_text()
        assert first.index("Read [the guide]") < first.rindex("Use 2.5 Nm")  # the quote above the answer
        assert second.count("Read [the guide]") == 1  # extractive: shown once, as a quotation
        page.close()
    finally:
        demo.close()
