"""The Gradio chat in a real browser (Debian's Chromium driven by Playwright)."""

from __future__ import annotations


import pytest

from ingest.thumbnails import MAX_SIDE_PX
from tests.conftest import free_port
from tests.servers import SCREENSHOTS, needs_chromium
from ui.chat import build_app, page_options

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def chat_url(sample_kb):
    demo = build_app(sample_kb)
    port = free_port()
    demo.queue().launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
        allowed_paths=[str(sample_kb.settings.figures_dir.resolve())], **page_options(),
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
