"""`kb ingest --ray`: parse, OCR and embedding on Ray Data actors (a real local Ray, real
models), with the same outcome as the local path: rows, errors, chunks, vectors, index."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.models import IngestJob, JobStatus
from app.schemas import FileOutcome, IngestReport
from app.service import KnowledgeBase
from tests.conftest import SAMPLES, make_settings
from tests.test_reindex import _assert_index_matches_sql, _chunk_rows, _pdf


def _mixed_batch(folder: Path) -> Path:
    """Two PDFs, an image, a damaged PDF, an empty file, and one PDF twice under two names."""
    folder.mkdir()
    shutil.copy(SAMPLES / "employee-travel-policy.pdf", folder / "policy.pdf")
    shutil.copy(SAMPLES / "employee-travel-policy.pdf", folder / "policy-copy.pdf")
    shutil.copy(SAMPLES / "solar-inverter-manual.pdf", folder / "manual.pdf")
    shutil.copy(SAMPLES / "pump-control-wiring-diagram.png", folder / "wiring.png")
    whole = (SAMPLES / "greenhouse-report-2025.pdf").read_bytes()
    (folder / "truncated.pdf").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.pdf").write_bytes(b"")
    return folder


def _outcomes(report: IngestReport) -> list[tuple]:
    """What a person sees of each file (document ids differ between two databases)."""
    return [
        (f.filename, f.outcome, f.error, f.pages, f.text_chunks, f.image_chunks, len(f.replaced_document_ids))
        for f in report.files
    ]


def _documents(kb: KnowledgeBase) -> list[tuple]:
    return sorted((d.filename, d.status, d.error, d.page_count) for d in kb.documents(kb.system_user(), "docs"))


def _same_chunks(a: KnowledgeBase, b: KnowledgeBase) -> None:
    rows_a, rows_b = _chunk_rows(a), _chunk_rows(b)
    # Figures are written under each knowledge base's own data directory: compared by name.
    strip = lambda row: (*row[:8], Path(row[8]).name if row[8] else None)  # noqa: E731
    assert [strip(r) for r in rows_a] == [strip(r) for r in rows_b]
    for row_a, row_b in zip(rows_a, rows_b):
        vector_a, vector_b = (np.frombuffer(row[-1], dtype=np.float32) for row in (row_a, row_b))
        assert np.allclose(vector_a, vector_b, atol=2e-3) and float(vector_a @ vector_b) > 0.999


def _job(kb: KnowledgeBase, job_id: int | None) -> tuple:
    with kb.database.session() as session:
        job = session.get(IngestJob, job_id)
        return job.status, job.total_files, job.done_files, job.failed_files, job.message


@pytest.mark.slow
def test_ingest_on_ray_has_the_same_outcome_as_the_local_path(tmp_path, models, local_ray):
    batch = _mixed_batch(tmp_path / "batch")
    local = KnowledgeBase(make_settings(tmp_path / "local"), models=models)
    on_ray = KnowledgeBase(make_settings(tmp_path / "ray", ray_actors=1), models=models)
    admin = local.system_user()
    local_report = local.ingest(admin, "docs", paths=[batch])

    calls: list[tuple[int, int, str]] = []
    ray_report = on_ray.ingest(admin, "docs", paths=[batch], use_ray=True, progress=lambda *call: calls.append(call))

    assert on_ray._file_reader is None  # the actors read the files: no parse workers here
    # Same files, same outcome, in the order given; damaged and empty files fail alone.
    assert _outcomes(ray_report) == _outcomes(local_report)
    outcome = {f.filename: f for f in ray_report.files}
    assert {name for name, f in outcome.items() if f.outcome == FileOutcome.ingested} == {
        "manual.pdf",
        "policy-copy.pdf",
        "wiring.png",
    }
    assert outcome["policy.pdf"].outcome == FileOutcome.skipped_duplicate
    assert "damaged" in outcome["truncated.pdf"].error and "empty" in outcome["empty.pdf"].error
    assert _documents(on_ray) == _documents(local)
    assert _job(on_ray, ray_report.job_id) == _job(local, local_report.job_id)
    assert _job(on_ray, ray_report.job_id)[0] == JobStatus.done
    assert len(calls) == 7 and calls[-1] == (6, 6, "")
    _same_chunks(on_ray, local)
    _assert_index_matches_sql(on_ray, "docs")
    for question in (
        "What is the most the company will pay per night for a hotel in Munich?",
        "How long is the standard warranty on the Helios SX-400 inverter?",
    ):
        found = [
            (hit.filename, hit.page, hit.text) for kb in (local, on_ray) for hit in kb.search(admin, question, ["docs"], limit=1)
        ]
        assert found[0] == found[1]

    # Again: the same bytes are skipped (no Ray job needed), and a changed file of the same
    # name replaces its old version, on both paths alike.
    changed = _pdf(tmp_path / "manual.pdf", "Helios SX-400 manual, revised. The warranty is now twelve years.")
    again = [batch / "policy.pdf", batch / "wiring.png", changed]
    local_again = local.ingest(admin, "docs", paths=again)
    ray_again = on_ray.ingest(admin, "docs", paths=again, use_ray=True)
    assert _outcomes(ray_again) == _outcomes(local_again)
    assert [f.outcome for f in ray_again.files] == [FileOutcome.skipped_duplicate] * 2 + [FileOutcome.ingested]
    (old_manual,) = [f for f in ray_report.files if f.filename == "manual.pdf"]
    assert ray_again.files[2].replaced_document_ids == [old_manual.document_id]
    assert _documents(on_ray) == _documents(local)
    _same_chunks(on_ray, local)
    _assert_index_matches_sql(on_ray, "docs")
    top = on_ray.search(admin, "How long is the Helios SX-400 warranty?", ["docs"], limit=1)[0]
    assert top.filename == "manual.pdf" and "twelve years" in top.text
    with on_ray.database.session() as session:
        assert [j.status for j in session.scalars(select(IngestJob).order_by(IngestJob.id))] == [JobStatus.done] * 2
    local.close()
    on_ray.close()


def test_kb_ingest_ray_asks_for_ray(monkeypatch, tmp_path):
    """The flag reaches KnowledgeBase.ingest (the rest is the test above)."""
    from app import cli

    asked: dict = {}

    class FakeKnowledgeBase:
        def system_user(self):
            return None

        def ingest(self, user, collection, **kwargs):
            asked.update(kwargs, collection=collection)
            return IngestReport(collection=collection)

    monkeypatch.setattr(cli, "_knowledge_base", FakeKnowledgeBase)
    note = tmp_path / "note.txt"
    note.write_text("hello")
    for args, use_ray in ((["--ray"], True), ([], False)):
        result = CliRunner().invoke(cli.cli, ["ingest", str(note), "-c", "docs", *args])
        assert result.exit_code == 0, result.output
        assert asked["use_ray"] is use_ray and asked["collection"] == "docs"


def test_when_ray_itself_stops_the_files_not_built_fail_with_the_reason(kb, tmp_path, monkeypatch):
    """No cluster, or an actor that died: the batch still ends, each unbuilt file failed (so
    the next run tries it again), and what the driver decided alone stands."""
    from app import reindex_ray

    def ray_gone(tasks, settings):
        raise ConnectionError("no Ray cluster at ray://nowhere:10001")
        yield  # a generator, as build_on_ray is

    monkeypatch.setattr(reindex_ray, "build_on_ray", ray_gone)
    (tmp_path / "note.txt").write_text("The archive room key hangs in the porter's lodge.")
    (tmp_path / "empty.txt").write_text("")
    report = kb.ingest(kb.system_user(), "docs", paths=[tmp_path / "empty.txt", tmp_path / "note.txt"], use_ray=True)

    empty, note = report.files
    assert "empty" in empty.error
    assert note.outcome == FileOutcome.failed and "Ray Data stopped" in note.error and "nowhere" in note.error
    (document,) = [d for d in kb.documents(kb.system_user(), "docs") if d.filename == "note.txt"]
    assert document.error == note.error
    assert _job(kb, report.job_id)[:4] == (JobStatus.done, 2, 2, 2)
