"""`kb reindex`: rebuild from stored originals, resumable after SIGKILL, atomic swap, permissions, Ray Data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from sqlalchemy import func, select

from app.indexes import TEXT_SPACE
from app.models import Chunk, Document, DocumentStatus, IngestJob, JobStatus, Role
from app.service import AccessDenied, KnowledgeBase
from tests.conftest import ROOT, SAMPLES, make_settings
from tests.servers import kill_once_a_document_is_staged, staged_documents

QUESTIONS = {q["question"]: q for q in json.loads((ROOT / "samples" / "questions.json").read_text()) if q.get("file")}


def _chunk_rows(kb) -> list[tuple]:
    """Every chunk as a reader would see it (no ids), in a stable order, with its vector."""
    with kb.database.session() as session:
        rows = session.execute(
            select(
                Document.filename,
                Chunk.vector_space,
                Chunk.kind,
                Chunk.page,
                Chunk.ordinal,
                Chunk.text,
                Chunk.char_start,
                Chunk.char_end,
                Chunk.image_path,
                Chunk.embedding,
            )
            .join(Document, Document.id == Chunk.document_id)
            .order_by(Document.filename, Chunk.vector_space, Chunk.kind, Chunk.ordinal)
        ).all()
    return [tuple(row) for row in rows]


def _chunk_ids(kb) -> set[int]:
    with kb.database.session() as session:
        return set(session.scalars(select(Chunk.id)))


def _assert_index_matches_sql(kb, collection_name: str) -> None:
    (collection,) = kb.readable_collections(kb.system_user(), [collection_name])
    with kb.database.session() as session:
        wanted = set(
            session.scalars(
                select(Chunk.id)
                .join(Document)
                .where(
                    Chunk.collection_id == collection.id,
                    Chunk.vector_space == TEXT_SPACE,
                    Document.status == DocumentStatus.ready,
                )
            )
        )
    # A fresh manager reads the file on disk exactly as another process would.
    from app.indexes import IndexManager

    on_disk = IndexManager(kb.database, kb.settings.index_dir, kb.models.dims()).store(collection.id, TEXT_SPACE)
    assert on_disk.ids() == wanted
    assert kb.indexes.store(collection.id, TEXT_SPACE).ids() == wanted


def _answers_from(kb, question: str, collection: str) -> tuple[str, int | None, int]:
    top = kb.search(kb.system_user(), question, [collection], limit=3)[0]
    return top.filename, top.page, top.chunk_id


def _pdf(path: Path, text: str) -> Path:
    document = pymupdf.open()
    document.new_page().insert_textbox(pymupdf.Rect(72, 72, 520, 700), text, fontsize=11)
    document.save(path)
    return path


def test_reindex_after_a_chunk_size_change_gives_the_new_chunking(tmp_path, models):
    data = tmp_path / "data"
    files = [SAMPLES / "employee-travel-policy.pdf", SAMPLES / "solar-inverter-manual.pdf"]
    first = KnowledgeBase(make_settings(data), models=models)
    assert not first.ingest(first.system_user(), "docs", paths=files).failed
    old_ids = _chunk_ids(first)
    old_text_chunks = [r for r in _chunk_rows(first) if r[2].value == "text" and r[6] is not None]
    first.close()

    kb = KnowledgeBase(make_settings(data, chunk_tokens=40, chunk_overlap_tokens=8), models=models)
    calls: list[tuple[int, int, str]] = []
    report = kb.reindex(kb.system_user(), "docs", progress=lambda done, total, name: calls.append((done, total, name)))

    assert sorted(d.filename for d in report.rebuilt) == sorted(f.name for f in files)
    assert not report.failed and not report.resumed
    new_text_chunks = [r for r in _chunk_rows(kb) if r[2].value == "text" and r[6] is not None]
    assert len(new_text_chunks) > len(old_text_chunks)
    assert max(kb.models.text_embedder.count_tokens([r[5] for r in new_text_chunks])) <= 40
    assert not (_chunk_ids(kb) & old_ids)  # every old chunk went, in the same swap
    _assert_index_matches_sql(kb, "docs")
    for question in (
        "What is the most the company will pay per night for a hotel in Munich?",
        "How long is the standard warranty on the Helios SX-400 inverter?",
    ):
        expected = QUESTIONS[question]
        assert _answers_from(kb, question, "docs")[:2] == (expected["file"], expected["page"])
    assert calls[0][:2] == (0, 2) and calls[-1] == (2, 2, "")
    with kb.database.session() as session:
        job = session.get(IngestJob, report.job_ids[0])
        assert (job.kind, job.status, job.total_files, job.done_files, job.failed_files) == ("reindex", JobStatus.done, 2, 2, 0)
    assert not (data / "reindex" / str(report.job_ids[0])).exists()

    # the collection's own chunking (set by its admin) wins over the settings, and the
    # rebuilt chunks keep their section headings
    kb.configure_chunking(kb.system_user(), "docs", chunk_tokens=24, chunk_overlap_tokens=4)
    assert kb.reindex(kb.system_user(), "docs").rebuilt
    own_text_chunks = [r for r in _chunk_rows(kb) if r[2].value == "text" and r[6] is not None]
    assert max(kb.models.text_embedder.count_tokens([r[5] for r in own_text_chunks])) <= 24
    with kb.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Chunk).where(Chunk.heading_path != ""))
    kb.close()


def test_a_document_that_fails_keeps_its_old_chunks_and_the_error_is_recorded(kb, tmp_path):
    admin = kb.system_user()
    good = _pdf(tmp_path / "cafeteria.pdf", "Cafeteria rules. The staff cafeteria opens at 07:30 every weekday morning.")
    other = _pdf(tmp_path / "parking.pdf", "Parking rules. The visitor car park closes at 22:00 every night.")
    kb.ingest(admin, "docs", paths=[good, other])
    (broken,) = [d for d in kb.documents(admin, "docs") if d.filename == "parking.pdf"]
    with kb.database.session() as session:
        kept = set(session.scalars(select(Chunk.id).where(Chunk.document_id == broken.id)))
    Path(broken.stored_path).write_bytes(b"%PDF-1.7\n garbage, the disk lost it")

    report = kb.reindex(admin, "docs")

    assert [d.filename for d in report.rebuilt] == ["cafeteria.pdf"]
    assert [d.filename for d in report.failed] == ["parking.pdf"] and report.failed[0].error
    with kb.database.session() as session:
        assert set(session.scalars(select(Chunk.id).where(Chunk.document_id == broken.id))) == kept
        document = session.get(Document, broken.id)
        assert document.status == DocumentStatus.ready and "previous chunks are kept" in document.error
        job = session.get(IngestJob, report.job_ids[0])
        assert job.failed_files == 1 and "parking.pdf" in job.message
    assert "22:00" in kb.search(admin, "When does the visitor car park close?", ["docs"], limit=1)[0].text
    _assert_index_matches_sql(kb, "docs")


def test_a_reindex_killed_mid_run_leaves_the_old_index_serving_and_the_rerun_resumes(tmp_path, models):
    data = tmp_path / "data"
    kb = KnowledgeBase(make_settings(data), models=models)
    admin = kb.system_user()
    files = [
        SAMPLES / "solar-inverter-manual.pdf",
        SAMPLES / "employee-travel-policy.pdf",
        SAMPLES / "pump-control-wiring-diagram.png",
    ]
    assert not kb.ingest(admin, "docs", paths=files).failed
    documents = kb.documents(admin, "docs")
    old_ids = _chunk_ids(kb)
    question = "How long is the standard warranty on the Helios SX-400 inverter?"
    before = _answers_from(kb, question, "docs")

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MMKB_DATA_DIR": str(data),
        "MMKB_CHUNK_TOKENS": "48",
        "MMKB_CHUNK_OVERLAP_TOKENS": "8",
    }
    env.pop("DATABASE_URL", None)
    log = (tmp_path / "reindex.log").open("w")
    child = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "reindex", "-c", "docs"], env=env, cwd=ROOT, stdout=log, stderr=log
    )
    try:
        kill_once_a_document_is_staged(child, data, tmp_path / "reindex.log")
    finally:
        child.kill()
        child.wait()
    staged = staged_documents(data)
    assert 1 <= len(staged) < len(documents), "the kill came too late to test resuming"
    staged_ids = {int(p.name.split("-")[1]) for p in staged}

    # Killed mid-build: SQL and the index are untouched, and queries answer from the old chunks.
    assert _chunk_ids(kb) == old_ids
    assert _answers_from(kb, question, "docs") == before
    _assert_index_matches_sql(kb, "docs")
    with kb.database.session() as session:
        (job,) = session.scalars(select(IngestJob).where(IngestJob.kind == "reindex"))
        # The count is written just after each staged file, so a kill in between leaves it one behind.
        assert job.status == JobStatus.running and len(staged) - 1 <= job.done_files <= len(staged)
    kb.close()

    rerun = KnowledgeBase(make_settings(data, chunk_tokens=48, chunk_overlap_tokens=8), models=models)
    report = rerun.reindex(rerun.system_user(), "docs")

    assert report.job_ids == [job.id]  # the same job, continued
    assert {d.document_id for d in report.resumed} == staged_ids  # staged documents are not built again
    assert {d.document_id for d in report.rebuilt} == {d.id for d in documents} - staged_ids
    assert not report.failed
    assert not (_chunk_ids(rerun) & old_ids)
    _assert_index_matches_sql(rerun, "docs")
    filename, page, chunk_id = _answers_from(rerun, question, "docs")
    assert (filename, page) == (before[0], before[1]) and chunk_id not in old_ids
    with rerun.database.session() as session:
        job = session.get(IngestJob, job.id)
        assert job.status == JobStatus.done and job.done_files == len(documents)
    rerun.close()


def test_only_administrators_reindex(kb, tmp_path):
    admin = kb.system_user()
    kb.ingest(admin, "docs", paths=[_pdf(tmp_path / "note.pdf", "The archive room key hangs in the porter's lodge.")])
    kb.get_or_create_collection("other")
    for name, role in (("rita", Role.reader), ("ed", Role.editor), ("ada", Role.admin)):
        kb.grant(name, "docs", role)

    for name in ("rita", "ed"):
        with pytest.raises(AccessDenied):
            kb.reindex(kb.user(name), "docs")
    with pytest.raises(AccessDenied):
        kb.reindex(kb.user("ada"), None)  # a collection admin may not re-index everything
    with pytest.raises(AccessDenied):
        kb.reindex(kb.user("ada"), "other")
    with kb.database.session() as session:
        assert not list(session.scalars(select(IngestJob).where(IngestJob.kind == "reindex")))

    report = kb.reindex(kb.user("ada"), "docs")
    assert [d.filename for d in report.rebuilt] == ["note.pdf"]


def test_the_ray_data_path_yields_the_same_chunks_as_the_local_path(tmp_path, models, local_ray):
    data = tmp_path / "data"
    kb = KnowledgeBase(make_settings(data, chunk_tokens=64, chunk_overlap_tokens=16), models=models)
    admin = kb.system_user()
    files = [SAMPLES / "employee-travel-policy.pdf", SAMPLES / "monthly-pv-yield-bar-chart.png"]
    assert not kb.ingest(admin, "docs", paths=files).failed
    local = kb.reindex(admin, "docs")
    assert len(local.rebuilt) == 2 and not local.used_ray
    by_local = _chunk_rows(kb)

    on_ray = kb.reindex(admin, "docs", use_ray=True)
    assert on_ray.used_ray and len(on_ray.rebuilt) == 2 and not on_ray.failed
    by_ray = _chunk_rows(kb)
    assert [row[:-1] for row in by_ray] == [row[:-1] for row in by_local]
    for ray_row, local_row in zip(by_ray, by_local):
        ray_vector, local_vector = (np.frombuffer(row[-1], dtype=np.float32) for row in (ray_row, local_row))
        assert float(ray_vector @ local_vector) > 0.999
    _assert_index_matches_sql(kb, "docs")
