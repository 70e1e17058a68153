"""A collection's own evaluation set guards `kb reindex` (issue 12 item 7): real models, real
PDFs (a scanned one, OCRed by Tesseract), the real CLI, API and admin console.

The harmful re-index is a real misconfiguration: OCR switched off (MMKB_OCR_SCANNED_PAGES and
MMKB_OCR_IMAGES false, e.g. to ingest faster). The rebuilt scan then has no text, so the two
questions answered on it are no longer found; the guard keeps the live index, and `--force`
shows that it was right.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pymupdf
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.collection_eval import EvalSetError, read_question_file
from app.models import Chunk, IngestJob, JobStatus, Role
from app.schemas import NewEvalQuestion
from app.service import KnowledgeBase
from tests.conftest import ROOT, SAMPLES, make_settings
from tests.servers import SCREENSHOTS, needs_chromium, serving
from tests.test_admin_ui import choose, fill, login, make_fact_pdf, table_rows
from tests.test_reindex import _assert_index_matches_sql
from tests.test_scans import png, text_image
from ui.server import create_app

SCAN = "scan-0042.pdf"
KEY_QUESTION = "Who keeps the archive room key?"
QUESTIONS = [
    NewEvalQuestion(question=KEY_QUESTION, file=SCAN, page=1),
    NewEvalQuestion(question="How often do forklift drivers have to renew their licence?", file=SCAN, page=2),
    NewEvalQuestion(
        question="What is the most the company will pay per night for a hotel in Munich?",
        file="employee-travel-policy.pdf",
        page=3,
    ),
    NewEvalQuestion(
        question="How long is the standard warranty on the Helios SX-400 inverter?", file="solar-inverter-manual.pdf", page=1
    ),
    NewEvalQuestion(
        question="Which system do Northwind employees have to use to book flights and hotels?", file="employee-travel-policy.pdf"
    ),  # no page: any page of the file counts
]
OCR_OFF = {"ocr_scanned_pages": False, "ocr_images": False}


def make_scan(path: Path) -> Path:
    """Two scanned pages (full-page images, no text layer), one fact each; a neutral file name,
    so that nothing but the OCR text can lead a question there."""
    document = pymupdf.open()
    for lines in (
        ["Keys and access", "", "The archive room key is kept by Doctor Okonkwo in cabinet 7.", "Spare keys are at reception."],
        ["Forklifts", "", "Forklift drivers renew their licence every 18 months at the Delft depot.", "Bring the old card."],
    ):
        page = document.new_page()
        page.insert_image(page.rect, stream=png(text_image(lines)))
    document.save(path)
    return path


def _top_places(kb: KnowledgeBase, question: str, limit: int = 5) -> list[tuple[str, int | None]]:
    return [(s.filename, s.page) for s in kb.search(kb.system_user(), question, ["docs"], limit=limit)]


def _chunk_ids(kb: KnowledgeBase) -> set[int]:
    with kb.database.session() as session:
        return set(session.scalars(select(Chunk.id)))


def test_a_reindex_that_loses_questions_keeps_the_live_index_until_forced_and_one_that_does_not_swaps(tmp_path, models):
    data = tmp_path / "data"
    kb = KnowledgeBase(make_settings(data), models=models)
    admin = kb.system_user()
    files = [SAMPLES / "employee-travel-policy.pdf", SAMPLES / "solar-inverter-manual.pdf", make_scan(tmp_path / SCAN)]
    assert not kb.ingest(admin, "docs", paths=files).failed
    kb.add_eval_questions(admin, "docs", QUESTIONS)
    run, scores = kb.run_eval(admin, "docs")
    assert (run.index, run.recall_at_5, run.questions, run.job_id, scores.missed) == ("live", 1.0, 5, None, [])
    live_ids = _chunk_ids(kb)
    assert _top_places(kb, KEY_QUESTION, 1) == [(SCAN, 1)]
    kb.close()

    # --- OCR off: the rebuilt scan is text-less, two of five questions are lost: held ---------
    harmful = KnowledgeBase(make_settings(data, **OCR_OFF), models=models)
    report = harmful.reindex(harmful.system_user(), "docs")
    (guarded,) = report.guard
    assert guarded.verdict == "kept" and guarded.live.recall_at_5 == 1.0 and guarded.candidate.recall_at_5 == pytest.approx(0.6)
    assert sorted(guarded.candidate.missed) == sorted(q.question for q in QUESTIONS[:2])
    assert "1.000" in guarded.message and "0.600" in guarded.message and "--force" in guarded.message
    assert sorted(d.filename for d in report.held) == sorted(f.name for f in files) and not report.rebuilt
    # Nothing a reader sees changed: the same chunks and index, and the scan still answers.
    assert _chunk_ids(harmful) == live_ids
    _assert_index_matches_sql(harmful, "docs")
    assert _top_places(harmful, KEY_QUESTION, 1) == [(SCAN, 1)]
    job_id = report.job_ids[0]
    with harmful.database.session() as session:
        job = session.get(IngestJob, job_id)
        assert job.status == JobStatus.held and "1.000" in job.message and "0.600" in job.message
    assert len(list((data / "reindex" / str(job_id)).glob("doc-*.json"))) == 3  # staged, for --force
    assert not (data / "reindex" / str(job_id) / "candidate").exists()  # the throwaway copy is gone
    runs = harmful.eval_runs(harmful.system_user(), "docs")
    assert [(r.index, r.recall_at_5, r.job_id, r.verdict) for r in runs[:2]] == [
        ("candidate", pytest.approx(0.6), job_id, "kept"),
        ("live", 1.0, job_id, "kept"),
    ]
    harmful.close()

    # --- `kb reindex --force`: the held job is swapped in without rebuilding; both scores printed
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MMKB_DATA_DIR": str(data),
        "MMKB_OCR_SCANNED_PAGES": "false",
        "MMKB_OCR_IMAGES": "false",
        "MMKB_PARSE_WORKERS": "0",
    }
    env.pop("DATABASE_URL", None)
    forced = subprocess.run(
        [sys.executable, "-m", "app.cli", "reindex", "-c", "docs", "--force"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert forced.returncode == 0, forced.stderr
    assert "recall@5 0.600" in forced.stdout and "recall@5 1.000" in forced.stdout and "anyway (--force)" in forced.stdout
    assert "0 rebuilt, 3 taken from the interrupted run" in forced.stdout
    after = KnowledgeBase(make_settings(data, **OCR_OFF), models=models)
    assert not (_chunk_ids(after) & live_ids)
    assert (SCAN, 1) not in _top_places(after, KEY_QUESTION)  # the guard was right: the scan is lost
    assert after.eval_runs(after.system_user(), "docs")[0].verdict == "forced"
    after.close()

    # --- OCR back on (and another chunk size): the set does better, so the new index goes live
    fixed = KnowledgeBase(make_settings(data, chunk_tokens=96), models=models)
    report = fixed.reindex(fixed.system_user(), "docs")
    (guarded,) = report.guard
    assert (
        guarded.verdict == "swapped" and guarded.live.recall_at_5 == pytest.approx(0.6) and guarded.candidate.recall_at_5 == 1.0
    )
    assert len(report.rebuilt) == 3 and not report.held
    assert _top_places(fixed, KEY_QUESTION, 1) == [(SCAN, 1)]
    with fixed.database.session() as session:
        assert session.get(IngestJob, report.job_ids[0]).status == JobStatus.done
    assert [r.verdict for r in fixed.eval_runs(fixed.system_user(), "docs")[:2]] == ["swapped", "swapped"]
    fixed.close()


def test_questions_must_name_a_ready_file_and_a_page_it_has_and_a_file_of_them_imports_once(kb, tmp_path):
    admin = kb.system_user()
    kb.ingest(admin, "docs", paths=[make_fact_pdf(tmp_path / "zephyr-maintenance.pdf")])
    kb.ingest(admin, "other", paths=[SAMPLES / "employee-travel-policy.pdf"])
    with pytest.raises(EvalSetError, match="no file named 'employee-travel-policy.pdf'.*zephyr-maintenance.pdf"):
        kb.add_eval_questions(admin, "docs", [NewEvalQuestion(question="Hotel cap?", file="employee-travel-policy.pdf", page=3)])
    with pytest.raises(EvalSetError, match="has 2 page"):
        kb.add_eval_questions(admin, "docs", [NewEvalQuestion(question="Flush?", file="zephyr-maintenance.pdf", page=3)])

    qa = tmp_path / "set.jsonl"
    qa.write_text(
        "\n".join(
            json.dumps(row)
            for row in [
                {
                    "question": "How often must the Zephyr-9 coolant loop be flushed?",
                    "answer": "every 41 days",
                    "file": "zephyr-maintenance.pdf",
                    "pages": [2],
                },
                {"question": "What must be inspected before each shift?", "file": "zephyr-maintenance.pdf"},
                {
                    "question": "What is the meal allowance in Tokyo?",
                    "answer": None,
                    "file": None,
                    "page": None,
                },  # nothing to find
            ]
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MMKB_DATA_DIR": str(kb.settings.data_dir)}
    env.pop("DATABASE_URL", None)
    cli = [sys.executable, "-m", "app.cli", "collections", "eval"]
    first = subprocess.run(cli + ["import", "docs", str(qa)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "added 2 question(s) to docs; 0 were in the set already" in first.stdout
    again = subprocess.run(cli + ["import", "docs", str(qa)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "added 0 question(s) to docs; 2 were in the set already" in again.stdout
    listed = subprocess.run(cli + ["list", "docs"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "zephyr-maintenance.pdf, p. 2: How often must the Zephyr-9 coolant loop be flushed?" in listed.stdout
    assert "zephyr-maintenance.pdf, p. any: What must be inspected before each shift?" in listed.stdout
    assert [(q.file, q.page) for q in kb.eval_questions(admin, "docs")] == [
        ("zephyr-maintenance.pdf", 2),
        ("zephyr-maintenance.pdf", None),
    ]

    two_pages = tmp_path / "two-pages.jsonl"
    two_pages.write_text(json.dumps({"question": "Where?", "file": "zephyr-maintenance.pdf", "pages": [1, 2]}) + "\n")
    with pytest.raises(EvalSetError, match="line 1: one expected page per question"):
        read_question_file(two_pages)


@pytest.fixture(scope="module")
def site(tmp_path_factory, models):
    """Alice (global admin), Ed (editor of docs), Rita (reader of docs), Eve (no membership)."""
    folder = tmp_path_factory.mktemp("guard-site")
    kb = KnowledgeBase(make_settings(folder / "data"), models=models)
    for name, is_admin in (("alice", True), ("ed", False), ("rita", False), ("eve", False)):
        kb.accounts.create_user(name, f"{name}-password", is_admin=is_admin)
    kb.ingest(kb.system_user(), "docs", paths=[make_fact_pdf(folder / "zephyr-maintenance.pdf")])
    kb.ingest(kb.system_user(), "other", paths=[SAMPLES / "employee-travel-policy.pdf"])
    kb.grant("ed", "docs", Role.editor)
    kb.grant("rita", "docs", Role.reader)
    kb.grant("eve", "other", Role.admin)
    client = TestClient(create_app(kb, mount_ui=False))

    def token(name: str) -> dict:
        response = client.post("/api/tokens", json={"username": name, "password": f"{name}-password"})
        return {"Authorization": f"Bearer {response.json()['token']}"}

    yield {"kb": kb, "client": client, **{name: token(name) for name in ("alice", "ed", "rita", "eve")}}
    kb.close()


FLUSH = {"question": "How often must the Zephyr-9 coolant loop be flushed?", "file": "zephyr-maintenance.pdf", "page": 2}


def test_the_api_lets_editors_change_the_set_readers_see_it_and_others_not_know_it(site):
    client, ed, rita, eve = site["client"], site["ed"], site["rita"], site["eve"]
    questions, runs = "/api/collections/docs/eval/questions", "/api/collections/docs/eval/runs"
    assert client.get(questions).status_code == 401

    added = client.post(questions, json=FLUSH, headers=ed)
    assert added.status_code == 201, added.text
    assert (added.json()["created_by"], added.json()["page"]) == ("ed", 2)
    refused = client.post(questions, json={**FLUSH, "question": "Which shift inspects the pumps?"}, headers=rita)
    assert (refused.status_code, refused.json()["code"]) == (403, "access_denied")
    assert [q["question"] for q in client.get(questions, headers=rita).json()] == [FLUSH["question"]]
    # Not a member: the collection, its questions and its scores do not exist.
    for response in (
        client.get(questions, headers=eve),
        client.post(questions, json=FLUSH, headers=eve),
        client.get(runs, headers=eve),
    ):
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
    # Eve administers `other`: her questions there cannot point at a file of docs.
    wrong = client.post("/api/collections/other/eval/questions", json=FLUSH, headers=eve)
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_request")
    assert "no file named 'zephyr-maintenance.pdf'" in wrong.json()["detail"]
    assert client.post(questions, json={**FLUSH, "page": 0}, headers=ed).status_code == 422

    assert client.post(runs, headers=rita).status_code == 403
    done = client.post(runs, headers=ed)
    assert done.status_code == 201, done.text
    assert (done.json()["index"], done.json()["recall_at_5"], done.json()["questions"], done.json()["missed"]) == (
        "live",
        1.0,
        1,
        [],
    )
    (seen,) = client.get(runs, headers=rita).json()
    assert (seen["index"], seen["recall_at_5"], seen["mrr_at_10"], seen["job_id"], seen["verdict"]) == (
        "live",
        1.0,
        1.0,
        None,
        None,
    )

    question_id = added.json()["id"]
    assert client.delete(f"{questions}/{question_id}", headers=rita).status_code == 403
    assert client.delete(f"{questions}/{question_id}", headers=ed).status_code == 200
    assert client.delete(f"{questions}/{question_id}", headers=ed).status_code == 404
    assert client.get(questions, headers=rita).json() == []


@needs_chromium
def test_the_console_adds_a_question_runs_the_set_and_shows_the_scores(site, browser):
    with serving(create_app(site["kb"])) as url:
        context, page = login(browser, f"{url}/admin/", "alice")
        page.get_by_text("Signed in as alice").wait_for(timeout=30_000)
        choose(page, "admin-collection", "docs")
        page.get_by_role("tab", name="Evaluation").click()
        fill(page, "eval-question", "Which part of the plant is covered by this handbook?")
        choose(page, "eval-file", "zephyr-maintenance.pdf")
        fill(page, "eval-page", "1")
        page.locator("#eval-add").click()
        page.locator("#eval-message").get_by_text("Added question").wait_for(timeout=30_000)
        assert ["Which part of the plant is covered by this handbook?", "zephyr-maintenance.pdf", "1", "alice"] in [
            row[1:5] for row in table_rows(page, "eval-questions")
        ]

        page.locator("#eval-run").click()
        page.locator("#eval-message").get_by_text("live index: recall@5").wait_for(timeout=60_000)
        page.locator("#eval-last").get_by_text("Last run").wait_for(timeout=30_000)
        newest = table_rows(page, "eval-history")[0]
        assert newest[1:3] == ["live", "1.000"], newest
        page.screenshot(path=str(SCREENSHOTS / "admin-evaluation.png"), full_page=True)
        context.close()


@needs_chromium
def test_the_consoles_force_box_swaps_a_held_reindex_in(tmp_path, models, browser):
    data = tmp_path / "data"
    kb = KnowledgeBase(make_settings(data), models=models)
    files = [SAMPLES / "employee-travel-policy.pdf", SAMPLES / "solar-inverter-manual.pdf", make_scan(tmp_path / SCAN)]
    assert not kb.ingest(kb.system_user(), "docs", paths=files).failed
    kb.add_eval_questions(kb.system_user(), "docs", QUESTIONS)
    kb.close()
    held = KnowledgeBase(make_settings(data, **OCR_OFF), models=models)
    assert held.reindex(held.system_user(), "docs").held  # OCR off loses the scan's questions
    try:
        with serving(create_app(held, open_without_accounts=True)) as url:
            page = browser.new_page()
            page.goto(f"{url}/admin/")
            choose(page, "admin-collection", "docs")
            page.get_by_role("tab", name="Dashboard").click()
            page.locator("#reindex-force input").check()
            page.locator("#reindex").click()
            status = page.locator("#reindex-status")
            status.get_by_text("went live anyway").wait_for(timeout=180_000)
            # Swapped in from the held job's staged documents, without rebuilding them.
            assert "0 rebuilt, 3 resumed" in status.inner_text()
            page.close()
        assert held.eval_runs(held.system_user(), "docs")[0].verdict == "forced"
        assert (SCAN, 1) not in _top_places(held, KEY_QUESTION)
    finally:
        held.close()
