"""Admin console -> chat, in a real browser against the real app (API + both Gradio UIs + models).

One server for the whole flow: an admin logs in at /admin, creates a collection, uploads a
PDF (plus a broken file and a zip), waits for it to be ready and adds a reader; the reader
logs in at /, asks about a fact only that PDF holds and sees the streamed, cited answer; a
user without membership does not see the collection and is refused by the API.
"""

from __future__ import annotations

import csv
import io
import threading
import zipfile
from pathlib import Path

import httpx
import pymupdf
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from app.service import KnowledgeBase
from tests.conftest import make_settings
from tests.servers import SCREENSHOTS, needs_chromium, serving
from ui.server import create_app

pytestmark = needs_chromium

COLLECTION = "plant-maintenance"
FACT_QUESTION = "How often must the Zephyr-9 coolant loop be flushed?"


def make_fact_pdf(path: Path) -> Path:
    """Two pages; the fact is on page 2 only, so a right citation names page 2."""
    document = pymupdf.open()
    page = document.new_page()
    page.insert_text((72, 90), "Plant maintenance handbook", fontsize=18)
    page.insert_textbox(
        pymupdf.Rect(72, 120, 520, 400),
        "This handbook covers the pumps, filters and valves of the north plant. "
        "Inspect every pump housing for cracks before the start of each shift.",
        fontsize=11,
    )
    page = document.new_page()
    page.insert_text((72, 90), "Coolant loop", fontsize=16)
    page.insert_textbox(
        pymupdf.Rect(72, 120, 520, 400),
        "The Zephyr-9 coolant loop must be flushed every 41 days with "
        "distilled water. Flushing it less often lets scale block the heat exchanger.",
        fontsize=11,
    )
    document.save(path)
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory, models):
    kb = KnowledgeBase(make_settings(tmp_path_factory.mktemp("admin-ui-data")), models=models)
    # The models load (the generator's first use in a session joins and checks its parts)
    # while the admin part of the test runs in the browser, not after it.
    warm_up = threading.Thread(target=lambda: (models.text_embedder, models.generator), daemon=True)
    warm_up.start()
    for name, admin in (("alice", True), ("bob", False), ("eve", False)):
        kb.accounts.create_user(name, f"{name}-password", is_admin=admin)
    with serving(create_app(kb)) as url:
        yield {"url": url, "kb": kb}
    kb.close()


def login(browser, url: str, username: str):
    """A fresh browser context (own cookies) logged in through Gradio's login form at `url`."""
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    page = context.new_page()
    page.goto(url)
    page.get_by_label("username").fill(username)
    page.get_by_label("password").fill(f"{username}-password")
    page.get_by_role("button", name="Login").click()
    # not "networkidle": the chat keeps a heartbeat connection open (gr.State)
    page.get_by_text("Signed in as").first.wait_for(timeout=60_000)
    return context, page


def choose(page, dropdown_id: str, option: str) -> None:
    page.locator(f"#{dropdown_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def dropdown_options(page, dropdown_id: str) -> list[str]:
    page.locator(f"#{dropdown_id} input").click()
    options = page.get_by_role("option")
    try:
        options.first.wait_for(timeout=5_000)
    except PlaywrightTimeout:
        return []  # an empty dropdown shows no list at all
    names = [text.strip().splitlines()[-1] for text in options.all_inner_texts()]  # without the "✓" of the chosen one
    page.keyboard.press("Escape")
    return names


def table_rows(page, element_id: str) -> list[list[str]]:
    """The body cells of a Gradio Dataframe, row by row."""
    cells: dict[tuple[int, int], str] = {}
    for test_id, text in page.eval_on_selector_all(
        f"#{element_id} [data-testid^='cell-']", "cells => cells.map(c => [c.dataset.testid, c.innerText.trim()])"
    ):
        _, row, column = test_id.split("-")[:3]
        if row.isdigit() and column.isdigit():
            cells[(int(row), int(column))] = cells.get((int(row), int(column))) or text
    rows = sorted({r for r, _ in cells})
    columns = sorted({c for _, c in cells})
    return [[cells.get((r, c), "") for c in columns] for r in rows]


def fill(page, element_id: str, text: str) -> None:
    page.locator(f"#{element_id} textarea, #{element_id} input").first.fill(text)


def test_admin_uploads_and_grants_then_only_the_reader_gets_cited_answers(site, browser, tmp_path):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    url = site["url"]
    pdf = make_fact_pdf(tmp_path / "zephyr-maintenance.pdf")
    broken = tmp_path / "broken-scan.pdf"
    broken.write_bytes(b"\x00\x01 definitely not a PDF \xff\xfe" * 10)
    bundle = tmp_path / "extras.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("shift-notes.md", "# Shift notes\nThe night shift logs valve checks in the blue binder.")

    # --- the admin: log in, create the collection, upload, add a reader ----------------
    admin_context, admin = login(browser, f"{url}/admin/", "alice")
    admin.get_by_text("Signed in as alice").wait_for(timeout=30_000)
    fill(admin, "new-collection", COLLECTION)
    admin.locator("#create-collection").click()
    admin.locator("#admin-message").get_by_text(f"Created collection {COLLECTION}").wait_for(timeout=30_000)
    assert admin.locator("#admin-collection input").input_value() == COLLECTION

    admin.get_by_role("tab", name="Upload").click()
    admin.locator("#upload-files input[type=file]").set_input_files([str(pdf), str(broken), str(bundle)])
    admin.locator("#ingest").click()
    admin.locator("#admin-message").get_by_text("Job ").wait_for(timeout=180_000)
    admin.screenshot(path=str(SCREENSHOTS / "admin-upload.png"), full_page=True)
    rows = {row[0]: row for row in table_rows(admin, "ingest-status")}
    assert rows["zephyr-maintenance.pdf"][1:3] == ["ready", "2"] and rows["shift-notes.md"][1] == "ready"
    assert rows["broken-scan.pdf"][1] == "failed" and "unsupported" in rows["broken-scan.pdf"][-1]
    assert "1 failed" in admin.locator("#admin-message").inner_text()
    # the failed file's error can be downloaded
    with admin.expect_download() as download:
        admin.locator("#ingest-report a").first.click()
    report = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    failed = [r for r in report if r["status"] == "failed"]
    assert [r["file"] for r in failed] == ["broken-scan.pdf"] and "unsupported" in failed[0]["error"]
    assert next(r for r in report if r["file"] == "zephyr-maintenance.pdf")["pages"] == "2"

    admin.get_by_role("tab", name="Members").click()
    fill(admin, "member-name", "bob")
    choose(admin, "member-role", "reader")
    admin.locator("#set-member").click()
    admin.locator("#admin-message").get_by_text("bob is now reader").wait_for(timeout=30_000)
    assert "bob" in admin.locator("#members-table").inner_text()

    admin.get_by_role("tab", name="Dashboard").click()
    admin.locator("#dashboard-totals").get_by_text("documents").wait_for(timeout=30_000)
    totals = admin.locator("#dashboard-totals").inner_text()
    assert "3 documents" in totals and "1 collections" in totals
    assert "2 ingested, 0 unchanged, 1 failed" in admin.locator("#jobs-table").inner_text()
    admin.screenshot(path=str(SCREENSHOTS / "admin-dashboard.png"), full_page=True)
    admin_context.close()

    # --- the reader: sees the collection, gets a streamed answer citing file and page -----
    reader_context, reader = login(browser, f"{url}/", "bob")
    choose(reader, "collection", COLLECTION)
    reader.locator("#question textarea").fill(FACT_QUESTION)
    reader.locator("#ask").click()
    # the answer streams: partial text with the typing cursor before the final, cited answer
    # (functions, not bare expressions: Playwright polls those with eval(), which the app's CSP forbids)
    reader.wait_for_function(
        "() => document.querySelector('#chat') && document.querySelector('#chat').innerText.includes('▌')", timeout=240_000
    )
    reader.locator("#sources").get_by_text("Sources", exact=True).wait_for(timeout=240_000)
    reader.screenshot(path=str(SCREENSHOTS / "reader-answer.png"), full_page=True)
    answer = reader.locator("#chat .message").last.inner_text()
    assert "41" in answer
    assert "zephyr-maintenance.pdf, p. 2" in answer
    # the citation opens the cited page, rendered with the passage highlighted
    reader.locator("#chat .message").last.locator('a[href*="#cite-"]').first.click()
    reader.wait_for_function(
        "() => { const i = document.querySelector('#source-image img'); return i && i.complete && i.naturalWidth > 100; }",
        timeout=60_000,
    )
    assert "zephyr-maintenance.pdf, p. 2" in reader.locator("#source-text").inner_text()
    reader.screenshot(path=str(SCREENSHOTS / "reader-cited-page.png"), full_page=True)
    reader_context.close()

    # --- a user without membership: no collection in the chat, refused by the API ----------
    outsider_context, outsider = login(browser, f"{url}/", "eve")
    options = dropdown_options(outsider, "collection")
    outsider.screenshot(path=str(SCREENSHOTS / "outsider-chat.png"), full_page=True)
    assert COLLECTION not in options and options == ["All collections"]
    outsider_context.close()
    token = httpx.post(f"{url}/api/tokens", json={"username": "eve", "password": "eve-password"}).json()["token"]
    refused = httpx.post(
        f"{url}/api/ask",
        json={"question": FACT_QUESTION, "collections": [COLLECTION]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert refused.status_code == 404 and "41" not in refused.text  # to a non-member the collection does not exist


def test_admin_deletes_a_document_renames_and_deletes_a_collection(site, browser, tmp_path):
    note = tmp_path / "valve-log.txt"
    note.write_text("Valve V-12 was replaced on the third of March.")
    context, page = login(browser, f"{site['url']}/admin/", "alice")
    page.get_by_text("Signed in as alice").wait_for(timeout=30_000)
    message = page.locator("#admin-message")
    fill(page, "new-collection", "scratch")
    page.locator("#create-collection").click()
    message.get_by_text("Created collection scratch").wait_for(timeout=30_000)
    page.get_by_role("tab", name="Upload").click()
    page.locator("#upload-files input[type=file]").set_input_files([str(note)])
    page.locator("#ingest").click()
    message.get_by_text("1 ready").wait_for(timeout=120_000)

    # re-index from the dashboard: the job runs, reports what it rebuilt and shows in the job list
    page.get_by_role("tab", name="Dashboard").click()
    page.locator("#reindex").click()
    page.locator("#reindex-status").get_by_text("Re-indexed scratch: 1 rebuilt").wait_for(timeout=120_000)
    page.wait_for_function(
        "() => document.querySelector('#jobs-table').innerText.includes('1 re-indexed, 0 failed')", timeout=30_000
    )
    page.screenshot(path=str(SCREENSHOTS / "admin-reindex.png"), full_page=True)

    page.get_by_role("tab", name="Documents").click()
    (document,) = table_rows(page, "documents-table")
    assert document[1:3] == ["valve-log.txt", "ready"]
    choose(page, "document-choice", f"{document[0]} · valve-log.txt")
    page.locator("#delete-document").click()
    message.get_by_text("Deleted document").wait_for(timeout=30_000)
    assert table_rows(page, "documents-table") in ([], [["", "", "", "", "", "", ""]])

    page.get_by_role("tab", name="Collections").click()
    fill(page, "rename-to", "scratch-renamed")
    page.locator("#rename-collection").click()
    message.get_by_text("Renamed scratch to scratch-renamed").wait_for(timeout=30_000)
    assert page.locator("#admin-collection input").input_value() == "scratch-renamed"
    page.locator("#delete-collection").click()  # not confirmed yet: nothing happens but a warning
    message.get_by_text("tick the box").wait_for(timeout=30_000)
    page.locator("#confirm-delete input").check()
    page.locator("#delete-collection").click()
    message.get_by_text("Deleted collection scratch-renamed").wait_for(timeout=30_000)
    page.screenshot(path=str(SCREENSHOTS / "admin-collection-deleted.png"), full_page=True)
    assert "scratch-renamed" not in dropdown_options(page, "admin-collection")
    assert "scratch-renamed" not in [c.name for c in site["kb"].readable_collections(site["kb"].user("alice"))]
    context.close()


def test_a_user_who_administers_nothing_is_told_so_at_admin(site, browser):
    context, page = login(browser, f"{site['url']}/admin/", "eve")
    page.locator("#admin-notice").get_by_text("Not allowed").wait_for(timeout=30_000)
    page.screenshot(path=str(SCREENSHOTS / "admin-not-allowed.png"), full_page=True)
    assert not page.locator("#create-collection").is_visible()
    assert not page.locator("#upload-files").is_visible()
    context.close()


# --- a collection admin's directory groups and the dashboard's embedder: an own server, as
# nothing here needs the models the flow above warms up.

DIRECTORY_DN = "cn=Wiki Editors,ou=groups,dc=example,dc=org"
E5 = "multilingual-e5-small-q4"


@pytest.fixture(scope="module")
def directory_site(tmp_path_factory, models):
    from app.models import Role

    kb = KnowledgeBase(make_settings(tmp_path_factory.mktemp("admin-directory-data")), models=models)
    kb.accounts.create_user("dora", "dora-password")
    kb.create_collection(kb.system_user(), "wiki", text_embedder=E5)
    kb.manage_member(kb.system_user(), "wiki", "dora", Role.admin)
    with serving(create_app(kb)) as url:
        yield {"url": url, "kb": kb}
    kb.close()


def test_a_collection_admin_maps_a_directory_group_and_sees_the_embedder(directory_site, browser):
    kb = directory_site["kb"]
    context, page = login(browser, f"{directory_site['url']}/admin/", "dora")
    page.get_by_text("Signed in as dora").wait_for(timeout=30_000)
    page.get_by_role("tab", name="Members").click()
    message = page.locator("#directory-message")
    page.locator("#directory-map").click()  # no group yet: told what is missing
    message.get_by_text("enter a directory group's name or DN").wait_for(timeout=30_000)
    fill(page, "directory-group", DIRECTORY_DN)
    choose(page, "directory-role", "editor")
    page.locator("#directory-map").click()
    message.get_by_text("get editor of wiki").wait_for(timeout=30_000)
    assert table_rows(page, "directory-groups") == [[DIRECTORY_DN, "editor"]]
    assert "No directory" in page.locator("#directory-note").inner_text()  # this server has no LDAP settings
    assert [(group, role.value) for group, role in kb.directory_groups(kb.user("dora"), "wiki")] == [(DIRECTORY_DN, "editor")]
    page.screenshot(path=str(SCREENSHOTS / "admin-directory-groups.png"), full_page=True)
    page.locator("#directory-remove").click()
    message.get_by_text("is no longer mapped in wiki").wait_for(timeout=30_000)
    assert kb.directory_groups(kb.user("dora"), "wiki") == []

    page.get_by_role("tab", name="Dashboard").click()
    page.wait_for_function(f"() => document.querySelector('#dashboard-collections').innerText.includes('{E5}')", timeout=30_000)
    context.close()
