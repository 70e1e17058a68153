"""Clearing what a killed process leaves behind, at the next start.

A process killed with SIGKILL (or by the OOM killer, or a power cut) runs no cleanup: its
ingest jobs stay "running" (and /metrics with them), and the staging folders it was
filling (``upload-*`` by the API, ``unzip-*`` for zip archives) stay in the data directory.
Both record their owner (app.owners), so a start clears only what a dead process owned:
a CLI ingest beside a live server keeps its job and its folders. Its parse workers end by
themselves (ingest.reading's watchdog).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import exists, select, update

from app.db import Database
from app.models import Document, DocumentStatus, IngestJob, JobStatus
from app.owners import Liveness, liveness, process_token, start_ticks

log = logging.getLogger(__name__)

STAGING_KINDS = ("upload", "unzip")
_OWNED = re.compile(r"^(?:upload|unzip)-(\d+)\.(\d+)-")
# Folders named before owners were recorded carry no pid: only their age tells.
_LEGACY = re.compile(r"^(?:upload|unzip)-[^.]+$")
LEGACY_STALE_S = 6 * 3600

INTERRUPTED_INGEST = (
    "interrupted: the process running it stopped ({owner}) after {done} of {total} files. "
    "The files finished before are kept; upload or ingest the same files again to finish "
    "(finished files are skipped)"
)
INTERRUPTED_REINDEX = (
    "interrupted: the process running it stopped ({owner}) after {done} of {total} documents; "
    "run the re-index again: it resumes where this job stopped"
)
INTERRUPTED_DOCUMENT = "interrupted: the ingest reading this file stopped before it finished; upload the file again"


def _describe(owner: str | None) -> str:
    parts = (owner or "").rsplit("|", 3)
    return f"pid {parts[2]} on {parts[0]}" if len(parts) == 4 else "a process of an older version"


def recover_jobs(database: Database) -> list[int]:
    """Mark interrupted every queued or running job whose process is gone; the ids marked.
    A re-index job stays resumable (app.reindex picks up interrupted jobs of its kind)."""
    marked: list[int] = []
    now = datetime.now(UTC)
    with database.session() as session:
        jobs = session.scalars(select(IngestJob).where(IngestJob.status.in_([JobStatus.queued, JobStatus.running])))
        for job in jobs:
            if liveness(job.owner) != Liveness.dead:
                continue
            template = INTERRUPTED_REINDEX if job.kind == "reindex" else INTERRUPTED_INGEST
            job.message = template.format(owner=_describe(job.owner), done=job.done_files, total=job.total_files)
            job.status, job.finished_at = JobStatus.interrupted, now
            marked.append(job.id)
        session.flush()
        if session.scalar(select(Document.id).where(Document.status == DocumentStatus.processing).limit(1)) is None:
            return _logged(marked)
        # A file in flight when its ingest died stays "processing" for ever otherwise; with no
        # ingest running anywhere, none is in flight. One statement, so a file of an ingest that
        # starts meanwhile (its job row is committed before any of its documents) is never
        # taken for a leftover.
        session.execute(
            update(Document)
            .where(
                Document.status == DocumentStatus.processing,
                ~exists().where(IngestJob.kind == "ingest", IngestJob.status.in_([JobStatus.queued, JobStatus.running])),
            )
            .values(status=DocumentStatus.failed, error=INTERRUPTED_DOCUMENT)
            .execution_options(synchronize_session=False)
        )
    return _logged(marked)


def _logged(marked: list[int]) -> list[int]:
    if marked:
        log.warning("marked %d job(s) interrupted, left running by processes that are gone: %s", len(marked), marked)
    return marked


def _owner_gone(pid: int, started: int) -> bool:
    return start_ticks(pid) != started


def sweep_staging(data_dir: Path) -> list[Path]:
    """Remove the staging folders of processes that are gone; the folders removed."""
    removed: list[Path] = []
    try:
        entries = list(data_dir.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.is_dir() or entry.is_symlink():
            continue
        owned = _OWNED.match(entry.name)
        if owned:
            stale = _owner_gone(int(owned.group(1)), int(owned.group(2)))
        elif _LEGACY.match(entry.name):
            try:
                stale = time.time() - entry.stat().st_mtime > LEGACY_STALE_S
            except OSError:
                continue
        else:
            continue
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    if removed:
        log.info("removed %d staging folder(s) of processes that are gone", len(removed))
    return removed


@contextmanager
def staging(data_dir: Path, kind: str) -> Iterator[Path]:
    """A fresh folder `<kind>-<pid>.<start>-<random>` in the data directory, removed on exit;
    named after this process so that sweep_staging can tell when it is left over."""
    if kind not in STAGING_KINDS:
        raise ValueError(f"unknown staging kind {kind!r}")
    _host, _boot, pid, started = process_token().rsplit("|", 3)
    folder = Path(tempfile.mkdtemp(prefix=f"{kind}-{pid}.{started}-", dir=data_dir))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
