"""The staff chat as served by `kb serve` (FastAPI + Gradio, real logins), in Debian's
Chromium: citations open the page, conversations reopen, feedback is stored, clear
messages for no collection / empty collection / a busy server, logins expire."""

from __future__ import annotations

import re
import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.model_set import ModelSet
from app.models import Conversation, Feedback, Message
from app.service import KnowledgeBase
from tests.conftest import SAMPLES, make_settings
from tests.servers import SCREENSHOTS, needs_chromium, serving
from ui.chat_common import NO_COLLECTION
from ui.server import create_app

pytestmark = needs_chromium

FAN_QUESTION = "What is the part number of the replacement cooling fan for the SX-400?"
ANSWER_TIMEOUT = 300_000  # ms: the real generator on a loaded 2-core machine


class HeldGenerator:
    """The real generator behind a gate the test can close: an answer then stays in
    progress for as long as the test needs to see what a second asker is shown."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.gate = threading.Event()
        self.gate.set()

    def stream(self, messages, max_new_tokens):
        self.gate.wait(timeout=120)
        yield from self.inner.stream(messages, max_new_tokens)


@pytest.fixture(scope="module")
def site(tmp_path_factory, models):
    settings = make_settings(tmp_path_factory.mktemp("chat-data"))
    held = ModelSet(settings)
    held.text_embedder, held.ocr = models.text_embedder, models.ocr
    held.generator = HeldGenerator(models.generator)
    kb = KnowledgeBase(settings, models=held)
    report = kb.ingest(kb.system_user(), "docs", paths=[SAMPLES / "solar-inverter-manual.pdf"])
    assert not report.failed, report.failed
    kb.get_or_create_collection("empty")
    kb.accounts.create_user("alice", "alice-password")
    kb.accounts.create_user("eve", "eve-password")
    kb.grant("alice", "docs")
    kb.grant("alice", "empty")
    with serving(create_app(kb)) as url:
        yield {"kb": kb, "url": f"{url}/", "gate": held.generator.gate}
    kb.close()


def logged_in(browser, url: str, username: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.get_by_label("username").fill(username)
    page.get_by_label("password").fill(f"{username}-password")
    page.get_by_role("button", name="Login").click()
    page.locator("#question textarea").wait_for(timeout=60_000)
    page.locator("#notice").get_by_text("Signed in as").wait_for(timeout=60_000)  # the page's load event has run
    return page


def ask(page, question: str) -> None:
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()


def wait_for_answer(page) -> None:
    page.locator("#sources input[type=radio]").first.wait_for(timeout=ANSWER_TIMEOUT)


def conversations_of(kb: KnowledgeBase, username: str) -> list[Conversation]:
    user = kb.user(username)
    with kb.database.session() as session:
        return list(session.scalars(select(Conversation).where(Conversation.user_id == user.id).order_by(Conversation.id)))


def shows_image(page, selector: str) -> bool:
    return page.locator(selector).evaluate("img => img.complete && img.naturalWidth > 100")


def test_a_citation_opens_the_page_and_a_thumbs_down_with_a_comment_is_stored(site, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = logged_in(browser, site["url"], "alice")
    ask(page, FAN_QUESTION)
    wait_for_answer(page)
    answer = page.locator("#chat .message").last
    assert "HX-FAN-77" in answer.inner_text()
    answer.locator('a[href*="#cite-"]').first.click()
    image = page.locator("#source-image img")
    image.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => { const i = document.querySelector('#source-image img'); return i && i.complete && i.naturalWidth > 100; }",
        timeout=30_000,
    )
    assert "solar-inverter-manual.pdf, p. 5" in page.locator("#source-text").inner_text()
    assert "highlighted" in page.locator("#source-text").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "chat-citation-opened.png"), full_page=True)

    page.locator("#chat").get_by_role("button", name="Dislike").last.click()
    page.locator("#feedback-status").get_by_text("not helpful").wait_for(timeout=30_000)
    page.locator("#feedback-comment textarea").fill("The fan number is right but the answer is too short.")
    page.locator("#send-feedback").click()
    page.locator("#feedback-status").get_by_text("comment was stored").wait_for(timeout=30_000)
    page.screenshot(path=str(SCREENSHOTS / "chat-feedback.png"), full_page=True)
    kb = site["kb"]
    with kb.database.session() as session:
        rows = session.execute(select(Feedback, Message).join(Message, Message.id == Feedback.message_id)).all()
    assert len(rows) == 1
    feedback, message = rows[0]
    assert feedback.rating == -1 and feedback.comment == "The fan number is right but the answer is too short."
    assert feedback.user_id == kb.user("alice").id and "HX-FAN-77" in message.content
    page.close()


def test_a_past_conversation_reopens_after_a_reload_with_its_sources(site, browser):
    (conversation,) = conversations_of(site["kb"], "alice")  # stored by the test above
    assert conversation.title == FAN_QUESTION
    page = logged_in(browser, site["url"], "alice")
    listing = page.locator("#conversations")
    listing.get_by_text(FAN_QUESTION).click()
    page.locator("#chat .message").get_by_text("HX-FAN-77").first.wait_for(timeout=30_000)
    assert FAN_QUESTION in page.locator("#chat").inner_text()
    # The 👎 given in the test above shows as given (Gradio labels a selected one "Disliked").
    page.locator("#chat").get_by_role("button", name="Disliked", exact=True).wait_for(timeout=30_000)
    assert page.locator("#chat").get_by_role("button", name="Liked", exact=True).count() == 0
    wait_for_answer(page)  # the stored sources are listed again
    assert "solar-inverter-manual.pdf, p. 5" in page.locator("#sources").inner_text()
    page.locator("#sources label").filter(has_text="cited").first.click()
    page.wait_for_function(
        "() => { const i = document.querySelector('#source-image img'); return i && i.complete && i.naturalWidth > 100; }",
        timeout=60_000,
    )
    page.screenshot(path=str(SCREENSHOTS / "chat-conversation-reopened.png"), full_page=True)
    page.close()


def test_a_user_without_collections_is_told_so_and_sees_no_one_elses_conversations(site, browser):
    page = logged_in(browser, site["url"], "eve")
    page.locator("#notice").get_by_text(NO_COLLECTION).wait_for(timeout=30_000)
    assert FAN_QUESTION not in page.locator("#conversations").inner_text()
    ask(page, FAN_QUESTION)
    page.locator("#chat .message").last.get_by_text("cannot read any collection").wait_for(timeout=60_000)
    assert "HX-FAN-77" not in page.locator("#chat").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "chat-no-collection.png"), full_page=True)
    assert conversations_of(site["kb"], "eve") == []  # a question that could not be answered leaves no empty chat
    page.close()


def test_an_empty_collection_is_named_as_empty(site, browser):
    before = len(conversations_of(site["kb"], "alice"))
    page = logged_in(browser, site["url"], "alice")
    page.locator("#collection input").click()
    page.get_by_role("option", name="empty").click()
    ask(page, "What is the warranty period?")
    page.locator("#chat .message").last.get_by_text("empty has no ready documents").wait_for(timeout=60_000)
    page.screenshot(path=str(SCREENSHOTS / "chat-empty-collection.png"), full_page=True)
    assert len(conversations_of(site["kb"], "alice")) == before
    page.close()


def test_a_second_question_while_the_model_is_busy_is_searched_at_once_and_told_its_place(site, browser):
    kb = site["kb"]
    before = len(conversations_of(kb, "alice"))
    first, second = logged_in(browser, site["url"], "alice"), logged_in(browser, site["url"], "alice")
    site["gate"].clear()  # the first answer is held in progress
    try:
        ask(first, FAN_QUESTION)
        # The first answer holds the generator: searching, or (quote shown) held while writing.
        first.locator("#chat .message").last.get_by_text(re.compile("Searching the documents|Writing the answer")).first.wait_for(
            timeout=60_000
        )
        ask(second, "What does the SX-400 communicate through?")
        # Searched at once (not held behind the whole first question), then told its place at the generator.
        second.locator("#chat").get_by_text("Waiting for the model: 1 answer ahead of yours").wait_for(timeout=60_000)
        time.sleep(1)
        text = second.locator("#chat").inner_text()
        assert "Searching" not in text and "1 answer ahead" in text  # still waiting, not writing
        assert "Writing the answer" not in text
    finally:
        second.screenshot(path=str(SCREENSHOTS / "chat-waiting-for-model.png"), full_page=True)
        site["gate"].set()
    wait_for_answer(first)
    wait_for_answer(second)
    assert "Waiting for the model" not in second.locator("#chat").inner_text()
    # Each page was its own new chat: two conversations, each with its question and answer.
    added = conversations_of(kb, "alice")[before:]
    assert len(added) == 2
    with kb.database.session() as session:
        counts = [session.scalar(select(func.count()).select_from(Message).where(Message.conversation_id == c.id)) for c in added]
    assert counts == [2, 2]
    first.close()
    second.close()


def test_a_chat_login_expires(tmp_path, models):
    kb = KnowledgeBase(make_settings(tmp_path / "data", session_hours=2 / 3600), models=models)
    kb.accounts.create_user("alice", "alice-password")
    try:
        client = TestClient(create_app(kb))
        assert client.get("/config").status_code == 401
        assert client.post("/login", data={"username": "alice", "password": "alice-password"}).status_code == 200
        assert client.get("/config").status_code == 200
        time.sleep(2.5)
        assert client.get("/config").status_code == 401  # the same cookie no longer opens the chat
        assert client.post("/login", data={"username": "alice", "password": "alice-password"}).status_code == 200
        assert client.get("/config").status_code == 200
    finally:
        kb.close()


EXPENSES_QUESTION = "How long after a trip do employees have to hand in their expense claim?"  # samples/questions.json

# The chat's last message: its quote's text, what stands below the quote, and where both are.
QUOTE_AND_BELOW = """m => {
  const q = m.querySelector('blockquote');
  if (!q) return null;
  const below = [...m.querySelectorAll('p, li')].filter(p => !q.contains(p) && (q.compareDocumentPosition(p) & Node.DOCUMENT_POSITION_FOLLOWING));
  return {quote: q.innerText, below: below.map(p => p.innerText).join('\\n'),
          quoteBottom: q.getBoundingClientRect().bottom, belowTop: below.length ? below[0].getBoundingClientRect().top : null,
          quotes: m.querySelectorAll('blockquote').length};
}"""


def test_the_quote_shows_before_the_model_writes_and_the_answer_streams_below_it(site, browser):
    """Needs the quote producer (app/answering.py, app/generation/evidence.py). The generator is held
    at its gate: whatever the chat shows meanwhile came before the model's first token."""
    kb = site["kb"]
    report = kb.ingest(kb.system_user(), "travel", paths=[SAMPLES / "employee-travel-policy.pdf"])
    assert not report.failed, report.failed
    kb.grant("alice", "travel")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = logged_in(browser, site["url"], "alice")
    page.locator("#collection input").click()
    page.get_by_role("option", name="travel").click()
    message = page.locator("#chat .message").last
    site["gate"].clear()
    try:
        ask(page, EXPENSES_QUESTION)
        page.locator("#chat .message").last.locator("blockquote").wait_for(timeout=ANSWER_TIMEOUT)
        held = message.evaluate(QUOTE_AND_BELOW)
        page.screenshot(path=str(SCREENSHOTS / "chat-quote-first.png"), full_page=True)
        assert "Writing the answer" in held["below"], held  # the model has not written a word
        assert held["quote"].lstrip().startswith("“") and "30 calendar days" in held["quote"], held
        assert "employee-travel-policy.pdf, p. 4" in held["quote"]
        # The quote's [n] opens the page with only the quoted sentence highlighted, already now.
        message.locator('blockquote a[href*="#cite-"]').click()
        page.locator("#source-text").get_by_text("the quoted sentence is highlighted").wait_for(timeout=60_000)
        page.wait_for_function(
            "() => { const i = document.querySelector('#source-image img'); return i && i.complete && i.naturalWidth > 100; }",
            timeout=60_000,
        )
        assert "employee-travel-policy.pdf, p. 4" in page.locator("#source-text").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "chat-quote-opened.png"), full_page=True)
    finally:
        site["gate"].set()
    # Finished once the panel lists the answer's sources under "Sources" (opening the quote's
    # source may have listed them already, under the waiting title).
    page.locator("#sources").get_by_text("Sources", exact=True).wait_for(timeout=ANSWER_TIMEOUT)
    page.screenshot(path=str(SCREENSHOTS / "chat-quote-answer.png"), full_page=True)
    final = message.evaluate(QUOTE_AND_BELOW)
    assert final["quotes"] == 1 and final["quote"] == held["quote"], final  # still there, once, above the checked answer
    if "Quoted from the source" not in message.inner_text():  # else extractive: the quote is the answer, shown once
        assert final["below"].strip() and "Writing the answer" not in final["below"] and "▌" not in final["below"], final
        assert final["quoteBottom"] <= final["belowTop"] + 1, final
