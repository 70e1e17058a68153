"""Files are read (parsed, OCRed) in worker processes while the ingesting process embeds.

A worker that dies (the kernel's OOM killer, a MuPDF crash) loses nothing: the files it held
are read again, each alone, and only a file that kills its reader again fails, with a reason.
Killing the worker stands in for a MuPDF crash: no real file is known that crashes this
MuPDF version.
"""

from __future__ import annotations

import shutil
import threading

import psutil
import pytest
from sqlalchemy import func, select

from app.indexes import TEXT_SPACE
from app.models import Chunk
from ingest.loaders import PDF_MIME
from ingest.reading import ReadOptions, WorkerPoolReader
from ingest.types import IngestError
from tests.conftest import SAMPLES

PDFS = ["employee-travel-policy.pdf", "greenhouse-report-2025.pdf", "solar-inverter-manual.pdf"]


def _reader_processes(besides: set[int] = frozenset()) -> list[psutil.Process]:
    """This test process's parse workers (multiprocessing's spawned children), except the pids
    in `besides` (other knowledge bases' workers, e.g. of session fixtures, stay untouched)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.pid not in besides and any("spawn_main" in part for part in child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


def _pids() -> set[int]:
    return {process.pid for process in _reader_processes()}


def test_the_default_reads_in_a_worker_process_while_the_batch_is_ingested(kb, tmp_path):
    others = _pids()
    report = kb.ingest(kb.system_user(), "docs", paths=[SAMPLES / name for name in PDFS])
    assert [f.outcome.value for f in report.files] == ["ingested"] * 3
    assert isinstance(kb.file_reader, WorkerPoolReader)
    own = _pids() - others
    assert own, "the parse workers stay up for the next ingest"
    kb.close()
    assert not own & _pids(), "close() stops them"


def test_a_worker_killed_mid_batch_loses_no_file(kb, tmp_path):
    batch = tmp_path / "batch"
    batch.mkdir()
    for copy in range(2):
        for name in PDFS:
            shutil.copy(SAMPLES / name, batch / f"{copy}-{name}")
    # Distinct bytes per copy, or the second copies would be skipped as duplicates.
    for path in batch.glob("1-*.pdf"):
        path.write_bytes(path.read_bytes() + b"\n% copy 1\n")
    killed: list[int] = []
    others = _pids()

    def kill_workers_once(done: int, total: int, filename: str) -> None:
        if done == 1 and not killed:  # files 2 and 3 are being read ahead now
            for process in _reader_processes(besides=others):
                process.kill()
                killed.append(process.pid)

    report = kb.ingest(kb.system_user(), "docs", paths=[batch], progress=kill_workers_once)
    assert killed
    assert [f.outcome.value for f in report.files] == ["ingested"] * 6, [f.error for f in report.files]
    # Both copies of a file give the same chunks: the re-read ones are complete.
    chunks = {f.filename: f.text_chunks for f in report.files}
    assert all(chunks[f"0-{name}"] == chunks[f"1-{name}"] > 5 for name in PDFS)
    with kb.database.session() as session:
        rows = session.scalar(select(func.count()).select_from(Chunk).where(Chunk.vector_space == TEXT_SPACE))
    assert len(kb.indexes.store(kb.readable_collections(kb.system_user(), ["docs"])[0].id, TEXT_SPACE)) == rows


def test_a_file_that_kills_its_reader_every_time_fails_alone_and_the_reader_recovers(tmp_path):
    reader = WorkerPoolReader(ReadOptions(ocr_images=False), workers=1)
    stop = threading.Event()
    others = _pids()

    def kill_every_reader() -> None:
        while not stop.is_set():
            for process in _reader_processes(besides=others):
                process.kill()
            stop.wait(0.02)

    killer = threading.Thread(target=kill_every_reader, daemon=True)
    killer.start()
    try:
        path = SAMPLES / "solar-inverter-manual.pdf"
        with pytest.raises(IngestError, match="crashed the document parser"):
            reader.result(reader.submit(path, PDF_MIME), path, PDF_MIME)
    finally:
        stop.set()
        killer.join()
    try:
        path = SAMPLES / "greenhouse-report-2025.pdf"
        parsed = reader.result(reader.submit(path, PDF_MIME), path, PDF_MIME)
        assert parsed.page_count == 5 and "yield" in " ".join(p.text for p in parsed.pages).lower()
    finally:
        reader.close()


def test_the_same_bytes_twice_in_one_batch_end_alike(kb, tmp_path):
    good, broken = tmp_path / "good", tmp_path / "broken"
    good.mkdir()
    broken.mkdir()
    for name in ("a-manual.pdf", "b-manual-copy.pdf"):
        shutil.copy(SAMPLES / "solar-inverter-manual.pdf", good / name)
    whole = (SAMPLES / "greenhouse-report-2025.pdf").read_bytes()
    for name in ("a-truncated.pdf", "b-truncated-again.pdf"):
        (broken / name).write_bytes(whole[: len(whole) // 2])
    report = kb.ingest(kb.system_user(), "docs", paths=[good, broken])
    outcomes = {f.filename: f for f in report.files}
    assert outcomes["a-manual.pdf"].outcome.value == "ingested"
    assert outcomes["b-manual-copy.pdf"].outcome.value == "skipped_duplicate"
    assert outcomes["b-manual-copy.pdf"].document_id == outcomes["a-manual.pdf"].document_id
    first, second = outcomes["a-truncated.pdf"], outcomes["b-truncated-again.pdf"]
    assert first.outcome.value == second.outcome.value == "failed"
    assert "damaged" in first.error and second.error == first.error
