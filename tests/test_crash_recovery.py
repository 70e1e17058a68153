"""What a kill -9 leaves behind is cleared by the next start, and only what a dead process owned.

The victims are real processes: `kb ingest` and an API server, killed with SIGKILL while
their parse workers read a batch. Afterwards their workers must go by themselves, and a new
KnowledgeBase on the same data directory must show no running job (the job says it was
interrupted and what to do), no document stuck in processing and no staging folder.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

from app.models import DocumentStatus, IngestJob, JobStatus
from app.service import KnowledgeBase
from tests.conftest import ROOT, SAMPLES, free_port, make_settings
from tests.postgres import needs_postgres
from tests.test_postgres import postgres_url  # noqa: F401 - the fixture

PDFS = ["employee-travel-policy.pdf", "greenhouse-report-2025.pdf", "solar-inverter-manual.pdf"]
STAGING = ("upload-*", "unzip-*")


def _batch(folder: Path, copies: int = 4) -> list[Path]:
    """Enough distinct PDFs that the kill lands mid-batch (same bytes would be skipped as duplicates)."""
    folder.mkdir()
    paths = []
    for copy in range(copies):
        for name in PDFS:
            path = folder / f"{copy}-{name}"
            path.write_bytes((SAMPLES / name).read_bytes() + f"\n% copy {copy}\n".encode())
            paths.append(path)
    return paths


def _env(data: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MMKB_DATA_DIR": str(data), "MMKB_PARSE_WORKERS": "2"}
    env.pop("DATABASE_URL", None)
    return env


def _job(data: Path) -> tuple[str, int] | None:
    """(status, done files) of the newest job, read with plain sqlite3 beside the writer."""
    database = data / "mmkb.sqlite3"
    if not database.exists():
        return None
    with sqlite3.connect(database, timeout=30) as connection:
        try:
            return connection.execute("SELECT status, done_files FROM ingest_jobs ORDER BY id DESC LIMIT 1").fetchone()
        except sqlite3.OperationalError:  # the schema is still being created
            return None


def _workers(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    found = []
    for child in children:
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


def _running(processes: list[psutil.Process]) -> list[psutil.Process]:
    # is_running() also checks the start time, so a reused pid does not count; a zombie runs nothing.
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.Error:
            pass
    return alive


def _kill_mid_batch(child: subprocess.Popen, data: Path, log: Path) -> list[psutil.Process]:
    """SIGKILL `child` once its job is running with a file done and workers reading the next;
    its whole process tree as it was just before."""
    deadline = time.monotonic() + 600
    while True:
        assert child.poll() is None, f"it ended before the kill:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "no file was ingested in 10 minutes"
        job = _job(data)
        workers = _workers(child.pid)
        if job and job[0] == "running" and job[1] >= 1 and len(workers) == 2:
            break
        time.sleep(0.05)
    tree = psutil.Process(child.pid).children(recursive=True)
    child.send_signal(signal.SIGKILL)
    child.wait()
    job = _job(data)
    assert job[0] == "running" and job[1] < len(PDFS) * 4, "the kill came too late to leave a job running"
    return tree


def _assert_cleared(data: Path, tree: list[psutil.Process], models) -> None:
    # The workers notice by themselves (the parent-pid watchdog polls every 0.5 s).
    deadline = time.monotonic() + 15
    while _running(tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphans = _running(tree)
    assert not orphans, f"processes outlived the kill: {[(p.pid, p.cmdline()[-2:]) for p in orphans]}"
    assert any(data.glob("unzip-*")), "the killed process left no staging folder: nothing to test"

    restarted = KnowledgeBase(make_settings(data), models=models)
    try:
        admin = restarted.system_user()
        assert not [p.name for pattern in STAGING for p in data.glob(pattern)]
        (job,) = restarted.jobs(admin)
        assert job.status == "interrupted" and job.finished_at is not None
        assert "upload or ingest the same files again" in job.message
        assert restarted.queue_lengths().ingest_running == 0
        assert restarted.dashboard(admin).jobs[0].status == "interrupted"
        documents = restarted.documents(admin, "docs")
        assert documents and not [d.filename for d in documents if d.status == DocumentStatus.processing]
    finally:
        restarted.close()


def test_a_killed_kb_ingest_leaves_no_running_job_no_worker_and_no_staging(tmp_path, models):
    data = tmp_path / "data"
    batch = _batch(tmp_path / "batch")
    log = tmp_path / "ingest.log"
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "ingest", *map(str, batch), "-c", "docs"],
            env=_env(data),
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )
    try:
        tree = _kill_mid_batch(child, data, log)
    finally:
        child.kill()
        child.wait()
    _assert_cleared(data, tree, models)


SERVER = """
import sys
import uvicorn
from ui.server import create_app
from app.service import KnowledgeBase
from app.settings import get_settings

kb = KnowledgeBase(get_settings())
admin = kb.accounts.create_user("admin", "a long enough password 1", is_admin=True)
print(kb.accounts.issue_token(admin, "test"), flush=True)
uvicorn.run(create_app(kb, mount_ui=False), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def test_a_server_killed_mid_upload_leaves_no_running_job_no_worker_and_no_staging(tmp_path, models):
    data = tmp_path / "data"
    batch = _batch(tmp_path / "batch")
    log = tmp_path / "server.log"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        env=_env(data),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    try:
        token = server.stdout.readline().strip()
        assert token, log.read_text()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.post(f"{base}/api/collections", json={"name": "docs"}, headers=headers).status_code == 201

        def upload() -> None:
            files = [("files", (path.name, path.read_bytes(), "application/pdf")) for path in batch]
            try:
                httpx.post(f"{base}/api/collections/docs/documents", files=files, headers=headers, timeout=600)
            except httpx.TransportError:
                pass  # the server is killed under it

        uploading = threading.Thread(target=upload, daemon=True)
        uploading.start()
        tree = _kill_mid_batch(server, data, log)
        assert any(data.glob("upload-*")), "the kill left no upload folder: nothing to test"
        uploading.join(timeout=30)
    finally:
        server.kill()
        server.wait()
    _assert_cleared(data, tree, models)


def test_a_live_process_keeps_its_job_and_staging_folder_while_a_dead_ones_go(tmp_path, models):
    """A CLI ingest beside a live server: each start clears only what a dead process owned."""
    from app import leftovers

    data = tmp_path / "data"
    first = KnowledgeBase(make_settings(data), models=models)
    dead = _dead_owner()
    with first.database.session() as session:
        mine = IngestJob(kind="ingest", status=JobStatus.running, total_files=3)
        theirs = IngestJob(kind="ingest", status=JobStatus.running, total_files=3, owner=dead)
        session.add_all([mine, theirs])
    dead_folder = data / f"upload-{dead.split('|')[2]}.1-abcdefgh"
    (dead_folder / "x").mkdir(parents=True)
    with leftovers.staging(data, "unzip") as live_folder:
        second = KnowledgeBase(make_settings(data), models=models)
        assert live_folder.is_dir() and not dead_folder.exists()
        with second.database.session() as session:
            assert session.get(IngestJob, mine.id).status == JobStatus.running
            assert session.get(IngestJob, theirs.id).status == JobStatus.interrupted
        second.close()
    assert not live_folder.exists()
    first.close()


def test_a_pid_reused_by_another_program_is_not_taken_for_the_owner(tmp_path):
    """After a container restart the server is often pid 1 again: the start time tells them apart."""
    from app.owners import Liveness, liveness, process_token

    other = subprocess.Popen(["sleep", "30"])
    try:
        token = process_token(other.pid)
        host, boot, pid, started = token.rsplit("|", 3)
        assert liveness(token) == Liveness.alive
        assert liveness(f"{host}|{boot}|{pid}|{int(started) - 1}") == Liveness.dead
        assert liveness(f"{host}|another-boot|{pid}|{started}") == Liveness.dead
        assert liveness(f"another-host|{boot}|{pid}|{started}") == Liveness.unknown
    finally:
        other.kill()
        other.wait()


def test_a_job_left_running_before_owners_were_recorded_is_marked_at_the_upgrade_start(tmp_path, models):
    """Migration 0004 keeps old jobs; one still "running" has no owner, so no process of
    this version runs it: the first start after the upgrade reports it interrupted."""
    from alembic import command
    from sqlalchemy import text

    from app.db import alembic_config, make_engine

    data = tmp_path / "data"
    data.mkdir()
    engine = make_engine(f"sqlite:///{(data / 'mmkb.sqlite3').resolve()}")
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        connection.execute(
            text(
                "INSERT INTO ingest_jobs (id, kind, status, total_files, done_files, failed_files, created_at) "
                "VALUES (1, 'ingest', 'running', 5, 2, 0, '2026-01-01'), (2, 'ingest', 'done', 1, 1, 0, '2026-01-01')"
            )
        )
    engine.dispose()
    kb = KnowledgeBase(make_settings(data), models=models)
    try:
        jobs = {job.id: job for job in kb.jobs(kb.system_user())}
        assert jobs[1].status == "interrupted" and "after 2 of 5 files" in jobs[1].message
        assert jobs[2].status == "done"
    finally:
        kb.close()


def _dead_owner() -> str:
    from app.owners import process_token

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return process_token().rsplit("|", 2)[0] + f"|{int(gone.stdout)}|1"


@needs_postgres
def test_on_postgresql_the_new_status_exists_and_a_dead_processs_job_is_marked(postgres_url, tmp_path, models):
    """PostgreSQL keeps job_status as a native enum type: migration 0004 adds the value."""
    settings = make_settings(tmp_path / "data").model_copy(update={"database_url": postgres_url})
    first = KnowledgeBase(settings, models=models)
    with first.database.session() as session:
        mine = IngestJob(kind="ingest", status=JobStatus.running, total_files=2)
        theirs = IngestJob(kind="ingest", status=JobStatus.running, total_files=2, owner=_dead_owner())
        session.add_all([mine, theirs])
    second = KnowledgeBase(settings, models=models)
    with second.database.session() as session:
        assert session.get(IngestJob, mine.id).status == JobStatus.running
        assert session.get(IngestJob, theirs.id).status == JobStatus.interrupted
    assert second.queue_lengths().ingest_running == 1
    second.close()
    first.close()
