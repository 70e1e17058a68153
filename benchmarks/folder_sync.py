"""What the size-and-time check saves `kb sync` on a big tree that did not change.

    python benchmarks/folder_sync.py [--files 2000] [--kb 256] [--folders 40]

A tree of `--files` PDFs of `--kb` KB each (a one-page text plus an attached blob of random
bytes, so hashing has the bytes a real file would) in `--folders` subfolders is synced into a
fresh data directory, then synced again four ways: unchanged (every file skipped by its size
and time), unchanged with every file's time distrusted (each is hashed: what a sync without
the check, or the first one after another folder is registered, pays), with 1 % of the files
touched (new time, same bytes: hashed, found unchanged), and with 1 % of them edited (hashed
and ingested). All files share their bytes but for the edited ones, so the first sync
ingests one document (the rest are found by hash) and the timing is the sync's own work:
walking, stat, hashing and SQL, not parsing and embedding. The page cache is warm (dropping
it would disturb the other work on the machine), so hashing reads from memory here; from a
cold disk or a network share it costs more, and the check saves more.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pymupdf
from sqlalchemy import update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import registry  # noqa: E402,F401 - hub libraries offline before any model import
from app.models import SyncFile  # noqa: E402
from app.service import KnowledgeBase  # noqa: E402
from app.settings import Settings  # noqa: E402

LONG_AGO = 1_600_000_000  # older than any run: the times are trusted


def pdf_bytes(size_kb: int, text: str) -> bytes:
    document = pymupdf.open()
    document.new_page().insert_textbox(pymupdf.Rect(72, 72, 520, 400), text, fontsize=11)
    document.embfile_add("blob.bin", os.urandom(size_kb * 1024))
    return document.tobytes()


def make_tree(root: Path, files: int, folders: int, size_kb: int) -> list[Path]:
    content = pdf_bytes(size_kb, "Maintenance log. Pump P-7 was greased on the first Monday of the month.")
    paths = []
    for number in range(files):
        path = root / f"folder-{number % folders:03d}" / f"log-{number:05d}.pdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(path, (LONG_AGO, LONG_AGO))
        paths.append(path)
    return paths


def timed(kb: KnowledgeBase, root: Path) -> tuple[float, object]:
    started = time.perf_counter()
    summary = kb.sync_folder(kb.system_user(), "bench", root, at_shell=True)
    return time.perf_counter() - started, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--kb", type=int, default=256, help="size of each file in KB")
    parser.add_argument("--folders", type=int, default=40)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mmkb-sync-bench-") as tmp:
        root = Path(tmp) / "share"
        paths = make_tree(root, args.files, args.folders, args.kb)
        kb = KnowledgeBase(Settings(data_dir=Path(tmp) / "data", database_url=None, parse_workers=0))
        rows = []
        try:
            seconds, summary = timed(kb, root)
            rows.append(("first sync (all new)", seconds, summary))
            seconds, summary = timed(kb, root)
            rows.append(("unchanged: size and time checked", seconds, summary))
            with kb.database.session() as session:
                session.execute(update(SyncFile).values(mtime_ns=-1))
            seconds, summary = timed(kb, root)
            rows.append(("unchanged: every file hashed", seconds, summary))
            share = max(1, args.files // 100)
            for path in paths[:share]:
                os.utime(path, (LONG_AGO + 60, LONG_AGO + 60))
            seconds, summary = timed(kb, root)
            rows.append(("1 % touched (same bytes)", seconds, summary))
            for number, path in enumerate(paths[share : 2 * share]):
                path.write_bytes(pdf_bytes(4, f"Maintenance log {number}. Valve V-{number} was replaced in March."))
                os.utime(path, (LONG_AGO + 120, LONG_AGO + 120))
            seconds, summary = timed(kb, root)
            rows.append(("1 % edited", seconds, summary))
        finally:
            kb.close()

    print(
        f"\n{args.files} files of {args.kb} KB ({args.files * args.kb / 1024:.0f} MB) in {args.folders} folders, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| run | seconds | files hashed | added | replaced | unchanged | failed |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, seconds, summary in rows:
        print(
            f"| {name} | {seconds:.2f} | {summary.hashed} | {len(summary.added)} | {len(summary.replaced)} | "
            f"{summary.unchanged} | {len(summary.failed)} |"
        )


if __name__ == "__main__":
    main()
