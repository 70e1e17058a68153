"""Ingestion with real models and a real SQLite database: dedup, bad files failing alone, index consistency."""

from __future__ import annotations

import shutil

from sqlalchemy import func, select

from app.indexes import TEXT_SPACE
from app.models import Chunk, Document, DocumentStatus
from tests.conftest import SAMPLES


def _chunk_count(kb) -> int:
    with kb.database.session() as session:
        return session.scalar(select(func.count()).select_from(Chunk))


def test_reingesting_the_same_files_adds_nothing(kb, tmp_path):
    files = [SAMPLES / "solar-inverter-manual.pdf", SAMPLES / "danger-high-voltage-sign.jpg"]
    first = kb.ingest(kb.system_user(), "docs", paths=files)
    assert [f.outcome.value for f in first.files] == ["ingested", "ingested"]
    chunks = _chunk_count(kb)
    assert chunks > 5
    # Same bytes under another name are still the same document.
    renamed = tmp_path / "copy-of-manual.pdf"
    shutil.copy(files[0], renamed)
    second = kb.ingest(kb.system_user(), "docs", paths=files + [renamed])
    assert [f.outcome.value for f in second.files] == ["skipped_duplicate"] * 3
    assert _chunk_count(kb) == chunks
    assert len(kb.indexes.store(kb.readable_collections(kb.system_user(), ["docs"])[0].id, TEXT_SPACE)) == chunks


def test_corrupt_and_empty_files_fail_alone_with_a_reason(kb, tmp_path):
    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(SAMPLES / "employee-travel-policy.pdf", batch / "policy.pdf")
    (batch / "empty.pdf").write_bytes(b"")
    whole = (SAMPLES / "greenhouse-report-2025.pdf").read_bytes()
    (batch / "truncated.pdf").write_bytes(whole[: len(whole) // 2])
    (batch / "program.pdf").write_bytes(b"MZ\x90\x00\x03" + b"\x00" * 200)
    shutil.copy(SAMPLES / "monthly-pv-yield-bar-chart.png", batch / "chart.png")

    report = kb.ingest(kb.system_user(), "mixed", paths=[batch])
    outcome = {f.filename: f for f in report.files}
    assert outcome["policy.pdf"].outcome.value == "ingested"
    assert outcome["chart.png"].outcome.value == "ingested"
    assert "empty" in outcome["empty.pdf"].error
    assert "damaged" in outcome["truncated.pdf"].error
    assert "file type" in outcome["program.pdf"].error

    documents = {d.filename: d for d in kb.documents(kb.system_user(), "mixed")}
    assert documents["policy.pdf"].status == DocumentStatus.ready
    for name in ("empty.pdf", "truncated.pdf", "program.pdf"):
        assert documents[name].status == DocumentStatus.failed
        assert documents[name].error == outcome[name].error
    with kb.database.session() as session:
        failed_ids = [documents[n].id for n in ("empty.pdf", "truncated.pdf", "program.pdf")]
        assert session.scalar(select(func.count()).select_from(Chunk).where(Chunk.document_id.in_(failed_ids))) == 0


def test_a_file_over_the_size_cap_is_refused(tmp_path, models):
    from app.service import KnowledgeBase
    from tests.conftest import make_settings

    kb = KnowledgeBase(make_settings(tmp_path / "data", max_upload_mb=0.05), models=models)
    report = kb.ingest(
        kb.system_user(), "capped", paths=[SAMPLES / "solar-inverter-manual.pdf", SAMPLES / "danger-high-voltage-sign.jpg"]
    )
    by_name = {f.filename: f for f in report.files}
    assert by_name["solar-inverter-manual.pdf"].outcome.value == "failed"
    assert "limit" in by_name["solar-inverter-manual.pdf"].error
    assert by_name["danger-high-voltage-sign.jpg"].outcome.value == "ingested"
    kb.close()


def test_an_index_that_missed_a_commit_is_repaired_from_sql(kb):
    kb.ingest(kb.system_user(), "docs", paths=[SAMPLES / "employee-travel-policy.pdf"])
    collection = kb.readable_collections(kb.system_user(), ["docs"])[0]
    store = kb.indexes.store(collection.id, TEXT_SPACE)
    wanted = len(store)
    # Simulate a crash after the SQL commit but before the index was saved.
    store.path.unlink()
    from app.service import KnowledgeBase

    reopened = KnowledgeBase(kb.settings, models=kb.models)
    assert len(reopened.indexes.store(collection.id, TEXT_SPACE)) == wanted
    reopened.close()


def test_an_interrupted_document_is_retried_on_the_next_run(kb):
    kb.ingest(kb.system_user(), "docs", paths=[SAMPLES / "employee-travel-policy.pdf"])
    with kb.database.session() as session:
        document = session.scalar(select(Document))
        document.status = DocumentStatus.processing  # as if the process died mid-file
        expected_chunks = session.scalar(select(func.count()).select_from(Chunk))
    report = kb.ingest(kb.system_user(), "docs", paths=[SAMPLES / "employee-travel-policy.pdf"])
    assert report.files[0].outcome.value == "ingested"
    assert _chunk_count(kb) == expected_chunks
