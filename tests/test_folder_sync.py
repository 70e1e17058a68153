"""Folder sync (`kb sync`, app.folder_sync) with real files, the real embedder, SQLite and FAISS:
a collection mirrors a folder tree across syncs, a bad file fails alone, a second run changes
nothing, a run stopped between two files is finished by the next, `--watch` picks up a new
file, and only folders under MMKB_SYNC_ROOTS and only a collection's editors and admins may
register or run one. No answers are generated here: ingest and search only."""

from __future__ import annotations

import os
import threading
import time
import zipfile
from pathlib import Path

import pymupdf
import pytest
from sqlalchemy import func, select

from app.indexes import TEXT_SPACE
from app.models import Chunk, Document, IngestJob, Role
from app.service import AccessDenied, Hidden, KnowledgeBase, NotFound
from tests.conftest import make_settings
from tests.servers import SCREENSHOTS, chromium, needs_chromium, serving
from tests.test_crash_recovery import _job

LONG_AGO = 1_600_000_000  # a modification time well before any sync (2020), so it is trusted


@pytest.fixture()
def kb(tmp_path, models):
    # Parsed in this process: the sync is the same either way and the shared CPUs are spared.
    settings = make_settings(tmp_path / "data", parse_workers=0, sync_roots=[tmp_path / "shares"])
    knowledge_base = KnowledgeBase(settings, models=models)
    yield knowledge_base
    knowledge_base.close()


def write(path: Path, text: str, mtime: int = LONG_AGO) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.utime(path, (mtime, mtime))
    return path


def write_pdf(path: Path, text: str, mtime: int = LONG_AGO) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = pymupdf.open()
    document.new_page().insert_textbox(pymupdf.Rect(72, 72, 520, 400), text, fontsize=11)
    document.save(path)
    os.utime(path, (mtime, mtime))
    return path


def found(kb: KnowledgeBase, question: str) -> list[tuple[str, str]]:
    """(file as cited, passage) of the best sources for `question` in the collection."""
    return [(s.filename, s.text) for s in kb.search(kb.system_user(), question, ["docs"], limit=3)]


def names(kb: KnowledgeBase) -> dict[str, str]:
    return {d.filename: d.status.value for d in kb.documents(kb.system_user(), "docs")}


def jobs(kb: KnowledgeBase) -> int:
    with kb.database.session() as session:
        return session.scalar(select(func.count()).select_from(IngestJob))


def index_matches_sql(kb: KnowledgeBase) -> bool:
    collection_id = kb.readable_collections(kb.system_user(), ["docs"])[0].id
    with kb.database.session() as session:
        chunks = session.scalar(select(func.count()).select_from(Chunk).where(Chunk.collection_id == collection_id))
    return len(kb.indexes.store(collection_id, TEXT_SPACE)) == chunks


def sync(kb: KnowledgeBase, folder: Path, **options):
    return kb.sync_folder(kb.system_user(), "docs", folder, at_shell=True, **options)


def test_a_collection_mirrors_its_folder_across_syncs(kb, tmp_path):
    folder = tmp_path / "share"
    write_pdf(folder / "hr" / "travel.pdf", "Travel policy. The nightly hotel cap in Munich is 180 EUR.")
    write(folder / "hr" / "budget.txt", "HR budget. The cafeteria opens at 07:30 on weekdays.")
    write(folder / "finance" / "budget.txt", "Finance budget. The fan model HX-FAN-77 costs 40 dollars.")
    write(folder / "parking.md", "# Parking\nVisitors park on level minus two of the garage.")
    write(folder / ".git" / "config", "not a document")
    write(folder / "~$budget.docx", "an Office lock file")
    write(tmp_path / "elsewhere.txt", "A secret outside the synced folder: the vault code is 4711.")
    (folder / "outside-link.txt").symlink_to(tmp_path / "elsewhere.txt")

    first = sync(kb, folder)

    assert first.added == ["finance/budget.txt", "hr/budget.txt", "hr/travel.pdf", "parking.md"]
    assert [(f.file, f.error) for f in first.failed] == [
        ("outside-link.txt", "a link to a file outside the synced folder: not synced")
    ]
    # Two files of the same name in two folders are two documents, cited by their path in the folder.
    assert names(kb) == dict.fromkeys(first.added, "ready")
    assert found(kb, "What is the nightly hotel cap in Munich?")[0][0] == "hr/travel.pdf"
    assert found(kb, "How much does the HX-FAN-77 fan cost?")[0][0] == "finance/budget.txt"
    assert not any("4711" in text for _, text in found(kb, "What is the vault code?"))

    # Edit one, add one, move one, remove one; the other keeps its size and time.
    write_pdf(folder / "hr" / "travel.pdf", "Travel policy. The nightly hotel cap in Munich is 215 EUR.", mtime=LONG_AGO + 60)
    write(folder / "finance" / "forecast.txt", "Forecast. Solar panels on the depot roof yield 41 MWh a year.")
    (folder / "hr" / "archive").mkdir()
    (folder / "hr" / "budget.txt").rename(folder / "hr" / "archive" / "budget-2025.txt")
    (folder / "parking.md").unlink()
    jobs_before = jobs(kb)

    second = sync(kb, folder)

    assert (second.added, second.replaced, second.deleted) == (["finance/forecast.txt"], ["hr/travel.pdf"], [])
    assert second.renamed == ["hr/budget.txt → hr/archive/budget-2025.txt"]  # found by its hash, not ingested again
    assert second.missing == ["parking.md"] and second.unchanged == 1
    assert second.hashed == 3  # only the new, the changed and the moved file were read; the other by size and time
    assert jobs(kb) == jobs_before + 1
    hotel = found(kb, "What is the nightly hotel cap in Munich?")
    assert "215 EUR" in hotel[0][1] and not any("180 EUR" in text for _, text in hotel)
    assert found(kb, "How much do the solar panels on the depot roof yield?")[0][0] == "finance/forecast.txt"
    assert "parking.md" in names(kb)  # no --delete: a removed file's document stays
    assert "hr/budget.txt" not in names(kb)
    assert found(kb, "When does the cafeteria open on weekdays?")[0][0] == "hr/archive/budget-2025.txt"
    assert [d.filename for d in kb.documents(kb.system_user(), "docs")].count("hr/travel.pdf") == 1

    third = sync(kb, folder, delete=True)

    assert (third.added, third.replaced, third.deleted, third.missing) == ([], [], ["parking.md"], [])
    assert "parking.md" not in names(kb)
    assert not any(name == "parking.md" for name, _ in found(kb, "Where do visitors park in the garage?"))
    assert index_matches_sql(kb)

    # Idempotent: another run reads nothing, ingests nothing, and leaves every document as it was.
    before = {d.id: (d.filename, d.sha256, d.updated_at) for d in kb.documents(kb.system_user(), "docs")}
    jobs_before = jobs(kb)
    again = sync(kb, folder, delete=True)
    assert (again.added, again.replaced, again.deleted, again.missing, again.hashed) == ([], [], [], [], 0)
    assert again.unchanged == 4 and jobs(kb) == jobs_before
    assert {d.id: (d.filename, d.sha256, d.updated_at) for d in kb.documents(kb.system_user(), "docs")} == before
    info = kb.sync_folder_info(kb.system_user(), "docs")
    assert info.path == str(folder.resolve()) and not info.unfinished and info.last_summary.unchanged == 4


def test_a_corrupt_file_fails_alone_and_is_not_read_again_until_it_changes(kb, tmp_path):
    folder = tmp_path / "share"
    good = write_pdf(folder / "manual.pdf", "Inverter manual. The maximum DC input voltage is 600 V.")
    (folder / "broken.pdf").write_bytes(good.read_bytes()[:300])
    os.utime(folder / "broken.pdf", (LONG_AGO, LONG_AGO))
    with zipfile.ZipFile(folder / "bundle.zip", "w") as archive:
        archive.writestr("inside.txt", "A file inside an archive.")
    write(folder / "notes.txt", "Notes. The spare fuses are in cabinet B.")

    first = sync(kb, folder)

    assert first.added == ["manual.pdf", "notes.txt"]
    reasons = {f.file: f.error for f in first.failed}
    assert set(reasons) == {"broken.pdf", "bundle.zip"}
    assert "PDF" in reasons["broken.pdf"] and "unpack it into the folder" in reasons["bundle.zip"]
    assert found(kb, "What is the maximum DC input voltage?")[0][0] == "manual.pdf"
    assert names(kb) == {"broken.pdf": "failed", "manual.pdf": "ready", "notes.txt": "ready"}

    jobs_before = jobs(kb)
    second = sync(kb, folder)
    assert (second.added, second.replaced, second.unchanged) == ([], [], 2)
    assert {f.file for f in second.failed} == {"broken.pdf", "bundle.zip"}
    assert "unchanged since it failed" in {f.file: f.error for f in second.failed}["broken.pdf"]
    assert jobs(kb) == jobs_before  # the same broken bytes are not read again

    write_pdf(folder / "broken.pdf", "Repaired. The emergency exit code is 2-4-6.", mtime=LONG_AGO + 60)
    third = sync(kb, folder)
    assert third.added == ["broken.pdf"] and {f.file for f in third.failed} == {"bundle.zip"}
    assert names(kb) == {"broken.pdf": "ready", "manual.pdf": "ready", "notes.txt": "ready"}


class Stopped(Exception):
    """Stands for a kill between two files: raised by the progress report the ingest makes as
    it starts the next file, after the one before was committed."""


def test_a_sync_stopped_between_two_files_is_finished_by_the_next_run(kb, tmp_path):
    folder = tmp_path / "share"
    write(folder / "a-rules.txt", "Rules. The library closes at 18:00.")
    write(folder / "z-keep.txt", "Keep. The archive room is on floor 3.")
    sync(kb, folder)
    write(folder / "a-rules.txt", "Rules. The library closes at 21:00 from now on.", mtime=LONG_AGO + 60)
    for name, text in (("b-new.txt", "New. The bike shed holds 40 bikes."), ("c-new.txt", "New. The roof garden opens in May.")):
        write(folder / name, text)

    def stop_at_second_file(stage: str, done: int, total: int, name: str) -> None:
        if stage == "ingest" and done == 1:
            raise Stopped(f"stopped before {name}")

    with pytest.raises(Stopped):
        kb.sync_folder(kb.system_user(), "docs", folder, at_shell=True, progress=stop_at_second_file)
    assert kb.sync_folder_info(kb.system_user(), "docs").unfinished
    # The changed file was committed before the stop (nothing recorded it in the folder's state
    # yet); the next ones may have been begun (read ahead), not finished.
    stopped = names(kb)
    assert stopped["a-rules.txt"] == "ready" and "ready" not in (stopped.get("b-new.txt"), stopped.get("c-new.txt"))

    rerun = sync(kb, folder)

    assert rerun.added == ["b-new.txt", "c-new.txt"] and not rerun.failed
    assert rerun.unchanged == 2  # a-rules.txt (done before the stop) and z-keep.txt
    with kb.database.session() as session:
        rows = session.execute(select(Document.filename, func.count()).group_by(Document.filename)).all()
    assert dict(rows) == dict.fromkeys(["a-rules.txt", "b-new.txt", "c-new.txt", "z-keep.txt"], 1)  # no duplicates
    closing = found(kb, "When does the library close?")
    assert "21:00" in closing[0][1] and not any("18:00" in text for _, text in closing)
    assert found(kb, "How many bikes does the bike shed hold?")[0][0] == "b-new.txt"
    assert index_matches_sql(kb) and not kb.sync_folder_info(kb.system_user(), "docs").unfinished
    assert sync(kb, folder).unchanged == 4


def test_watch_picks_up_a_new_file_once_it_is_written(kb, tmp_path):
    from app.folder_watch import watch

    folder = tmp_path / "share"
    write(folder / "first.txt", "First. The printer is on floor 2.")
    results: list = []
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch,
        args=(lambda: sync(kb, folder), folder.resolve(), results.append),
        kwargs={"debounce_s": 0.5, "stop": stop},
        daemon=True,
    )
    watcher.start()
    try:
        _wait_for(lambda: results, "the first sync")
        assert results[0].added == ["first.txt"]
        with (folder / "later.txt").open("w", encoding="utf-8") as handle:  # written in a burst of events
            handle.write("Later. The coffee machine ")
            handle.flush()
            time.sleep(0.2)
            handle.write("descales itself every Friday at noon.")
        _wait_for(lambda: any(getattr(r, "added", None) for r in results[1:]), "the new file's sync")
        time.sleep(1.5)  # time for a second, unwanted sync of the same file
    finally:
        stop.set()
        watcher.join(timeout=30)
    assert not watcher.is_alive()
    synced = [r for r in results[1:] if not isinstance(r, Exception) and (r.added or r.replaced)]
    assert [(r.added, r.replaced) for r in synced] == [(["later.txt"], [])]  # once, and whole
    assert "Friday at noon" in found(kb, "When does the coffee machine descale itself?")[0][1]


def _wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_the_console_registers_only_folders_under_the_sync_roots(kb, tmp_path):
    admin = kb.system_user()
    kb.create_collection(admin, "docs")
    shares = tmp_path / "shares"
    write(shares / "handbooks" / "guide.txt", "Guide. The fire assembly point is the north car park.")
    (shares / "etc-link").symlink_to("/etc")

    for outside in ("/etc", str(shares / ".." / "data"), str(shares / "etc-link")):
        with pytest.raises(AccessDenied, match="MMKB_SYNC_ROOTS"):
            kb.register_sync_folder(admin, "docs", outside)
    with pytest.raises(ValueError, match="absolute path"):
        kb.register_sync_folder(admin, "docs", "handbooks")
    with pytest.raises(ValueError, match="does not exist"):
        kb.register_sync_folder(admin, "docs", str(shares / "nothing-here"))
    assert kb.sync_folder_info(admin, "docs") is None

    registered = kb.register_sync_folder(admin, "docs", str(shares / "handbooks"))
    assert registered.path == str((shares / "handbooks").resolve()) and registered.last_summary is None
    assert kb.sync_folder(admin, "docs").added == ["guide.txt"]  # the console's "Sync now"

    # `kb sync` at the shell may mirror any folder, but the console cannot run one outside the roots.
    write(tmp_path / "private" / "notes.txt", "Private notes.")
    sync(kb, tmp_path / "private")
    with pytest.raises(AccessDenied, match="MMKB_SYNC_ROOTS"):
        kb.sync_folder(admin, "docs")

    unbound = KnowledgeBase(make_settings(tmp_path / "data", parse_workers=0), models=kb.models)
    try:
        with pytest.raises(AccessDenied, match="MMKB_SYNC_ROOTS is not set"):
            unbound.register_sync_folder(admin, "docs", str(shares / "handbooks"))
    finally:
        unbound.close()


def test_only_a_collections_editors_and_admins_may_register_or_run_its_sync(kb, tmp_path):
    admin = kb.system_user()
    kb.create_collection(admin, "docs")
    folder = tmp_path / "shares" / "team"
    write(folder / "plan.txt", "Plan. The team offsite is in Lisbon in October.")
    for username, role in (("rita", Role.reader), ("eddie", Role.editor)):
        kb.ensure_user(username)
        kb.grant(username, "docs", role)
    kb.ensure_user("nina")
    reader, editor, stranger = kb.user("rita"), kb.user("eddie"), kb.user("nina")

    with pytest.raises(AccessDenied) as refused:
        kb.register_sync_folder(reader, "docs", str(folder))
    assert not isinstance(refused.value, NotFound)  # a member: told it is not allowed
    with pytest.raises(Hidden):
        kb.register_sync_folder(stranger, "docs", str(folder))  # not a member: no such collection
    assert kb.sync_folder_info(admin, "docs") is None

    kb.register_sync_folder(editor, "docs", str(folder))
    for user, refusal in ((reader, AccessDenied), (stranger, Hidden)):
        with pytest.raises(refusal):
            kb.sync_folder(user, "docs")
        with pytest.raises(refusal):
            kb.sync_folder_info(user, "docs")
    assert names(kb) == {}
    assert kb.sync_folder(editor, "docs").added == ["plan.txt"]


def test_kb_sync_killed_with_sigkill_mid_run_then_rerun_ends_consistent(tmp_path, models):
    import signal
    import sqlite3
    import subprocess
    import sys

    from tests.conftest import ROOT

    data, folder = tmp_path / "data", tmp_path / "share"
    topics = ["boiler", "lift", "roof", "garage", "canteen", "library", "gym", "archive", "lab", "studio", "chapel", "depot"]
    for number, topic in enumerate(topics):
        write(
            folder / f"{number:02d}" / f"{topic}.md",
            f"# The {topic}\nThe {topic} is serviced every {number + 2} weeks by team {topic.upper()}-{number}.\n" * 20,
        )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MMKB_DATA_DIR": str(data), "MMKB_PARSE_WORKERS": "0"}
    env.pop("DATABASE_URL", None)
    log = tmp_path / "sync.log"
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "sync", str(folder), "-c", "docs"], env=env, cwd=ROOT, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 600
        while True:
            assert child.poll() is None, f"it ended before the kill:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no file was synced in 10 minutes"
            job = _job(data)
            if job and job[0] == "running" and job[1] >= 1:
                break
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        child.kill()
        child.wait()
    with sqlite3.connect(data / "mmkb.sqlite3", timeout=30) as connection:
        ready = connection.execute("SELECT count(*) FROM documents WHERE status = 'ready'").fetchone()[0]
        recorded = connection.execute("SELECT count(*) FROM sync_files").fetchone()[0]
    assert 1 <= ready < len(topics) and recorded == 0, "the kill did not land mid-run"

    restarted = KnowledgeBase(make_settings(data, parse_workers=0, sync_roots=[tmp_path]), models=models)
    try:
        admin = restarted.system_user()
        assert restarted.sync_folder_info(admin, "docs").unfinished
        rerun = restarted.sync_folder(admin, "docs")  # the registered folder, as the console's button does
        assert not rerun.failed and len(rerun.added) + rerun.unchanged == len(topics)
        assert rerun.unchanged == ready  # finished before the kill: found by hash, not ingested twice
        documents = restarted.documents(admin, "docs")
        assert sorted(d.filename for d in documents) == sorted(f"{n:02d}/{t}.md" for n, t in enumerate(topics))
        assert {d.status.value for d in documents} == {"ready"}
        assert index_matches_sql(restarted) and not restarted.sync_folder_info(admin, "docs").unfinished
        assert [j.status for j in restarted.jobs(admin)] == ["done", "interrupted"]
        hits = restarted.search(admin, "How often is the canteen serviced?", ["docs"], limit=1)
        assert hits[0].filename == "04/canteen.md"
    finally:
        restarted.close()


@needs_chromium
def test_the_console_registers_a_folder_syncs_it_and_shows_the_last_sync(tmp_path, models):
    from tests.test_admin_ui import choose, fill, login, table_rows
    from ui.server import create_app

    shares = tmp_path / "shares"
    write_pdf(shares / "plant" / "pumps" / "manual.pdf", "Pump manual. Grease the bearings of pump P-12 every 90 days.")
    write(shares / "plant" / "valves.md", "# Valves\nValve V-3 is checked on Mondays.")
    kb = KnowledgeBase(make_settings(tmp_path / "data", parse_workers=0, sync_roots=[shares]), models=models)
    kb.accounts.create_user("alice", "alice-password", is_admin=True)
    kb.create_collection(kb.user("alice"), "docs")
    try:
        with serving(create_app(kb)) as url, chromium() as browser:
            context, page = login(browser, f"{url}/admin/", "alice")
            choose(page, "admin-collection", "docs")
            page.get_by_role("tab", name="Folder sync").click()
            page.locator("#sync-status").get_by_text("No folder is registered").wait_for(timeout=30_000)
            fill(page, "sync-folder", "/etc")
            page.locator("#sync-register").click()
            page.locator("#sync-message").get_by_text("is not under the folders this server may sync").wait_for(timeout=30_000)
            fill(page, "sync-folder", str(shares / "plant"))
            page.locator("#sync-register").click()
            page.locator("#sync-message").get_by_text("now mirrors").wait_for(timeout=30_000)
            page.locator("#sync-run").click()
            page.locator("#sync-message").get_by_text("Synced docs: 2 added, 0 replaced").wait_for(timeout=120_000)
            page.locator("#sync-status").get_by_text("Last sync").wait_for(timeout=30_000)
            rows = sorted(row[:2] for row in table_rows(page, "sync-files"))
            assert rows == [["pumps/manual.pdf", "added"], ["valves.md", "added"]]
            page.screenshot(path=str(SCREENSHOTS / "admin-folder-sync.png"), full_page=True)
            context.close()
        hits = kb.search(kb.system_user(), "How often are the bearings of pump P-12 greased?", ["docs"], limit=1)
        assert hits[0].filename == "pumps/manual.pdf"
    finally:
        kb.close()
