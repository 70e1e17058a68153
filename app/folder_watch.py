"""`kb sync --watch`: follow a folder with watchdog (inotify on Linux) and sync it whenever
its changes have settled.

Copying a large file, or saving from an editor, is a burst of events; syncing on the first
would read a half-written file. So each event only notes its path with the size and time it
had; a sync runs once no event has come for `debounce_s` seconds *and* every noted path still
has that size and time (a writer that pauses without an event is waited for too). Each
sync is a whole run (app.folder_sync): unchanged files cost a stat, so it stays cheap on big
trees, and nothing an event missed (an overflowing inotify queue) is lost for good.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from app.folder_sync import SyncSummary, ignored

log = logging.getLogger(__name__)

# Reads are not changes: the sync itself opens every file it hashes or ingests.
_READS = {"opened", "closed_no_write"}


def _signature(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None  # removed (a change too)
    return info.st_size, info.st_mtime_ns


class _Changes(FileSystemEventHandler):
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._paths: dict[str, tuple[int, int] | None] = {}
        self._last_event = 0.0

    def _matters(self, path: str) -> bool:
        try:
            parts = Path(path).relative_to(self.root).parts
        except ValueError:
            return False
        return bool(parts) and not any(ignored(part) for part in parts)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _READS or (event.is_directory and event.event_type == "modified"):
            return
        raw_paths = [p for p in (event.src_path, getattr(event, "dest_path", "")) if p]
        paths = [os.fsdecode(p) for p in raw_paths if self._matters(os.fsdecode(p))]
        if not paths:
            return
        with self._lock:
            for path in paths:
                self._paths[path] = _signature(path)
            self._last_event = time.monotonic()

    def settled(self, debounce_s: float) -> bool:
        """True once, when there were changes and they have settled; they are then forgotten."""
        with self._lock:
            if not self._paths or time.monotonic() - self._last_event < debounce_s:
                return False
            moved = {path: now for path, before in self._paths.items() if (now := _signature(path)) != before}
            if moved:  # still being written, without an event saying so: wait a while more
                self._paths.update(moved)
                self._last_event = time.monotonic()
                return False
            self._paths.clear()
            return True


def watch(
    sync: Callable[[], SyncSummary],
    root: Path,
    report: Callable[[SyncSummary | Exception], None],
    debounce_s: float = 2.0,
    stop: threading.Event | None = None,
) -> None:
    """Sync once, then again whenever changes under `root` have settled, until `stop` is set
    (or Ctrl-C). Every result goes to `report`; a failed run (the folder unmounted, the
    database busy) is reported and watching goes on."""
    stop = stop or threading.Event()
    changes = _Changes(root)
    observer = Observer()
    # Watching starts before the first run, so what changes during it is synced after it.
    observer.schedule(changes, str(root), recursive=True)
    observer.start()
    try:
        report(_attempt(sync))
        while not stop.wait(min(0.25, debounce_s / 4)):
            if changes.settled(debounce_s):
                report(_attempt(sync))
    finally:
        observer.stop()
        observer.join(timeout=10)


def _attempt(sync: Callable[[], SyncSummary]) -> SyncSummary | Exception:
    try:
        return sync()
    except Exception as exc:  # reported; the next change tries again
        log.warning("folder sync failed: %s", exc)
        return exc
