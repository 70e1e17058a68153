"""Named locks that hold across processes and machines: one writer per collection index,
one ingest per file's bytes, one schema migration at a time.

On PostgreSQL they are session-level advisory locks, each held on a connection of its own:
every replica that shares the database sees them, and a writer that dies releases its
locks with its connection, so nothing is left to expire. SQLite is one file on one
machine, so its writers are processes of that machine and a lock file beside the
database does the same job.

Re-entrant within a thread: a writer that holds a collection's lock may call code that
takes it again (an ingest's store step syncs the index), which would otherwise wait on
itself through a second connection.
"""

from __future__ import annotations

import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock
from sqlalchemy import Connection, Engine, text

# The first key of every advisory lock mmkb takes, so that another application on the same
# PostgreSQL (which may use one-key advisory locks) cannot collide with ours.
ADVISORY_NAMESPACE = 0x6D6B62  # "mkb"


class Timeout(RuntimeError):
    """The lock stayed held by another writer for longer than the caller would wait."""


def _key(name: str) -> int:
    # A signed 32-bit key, as pg_advisory_lock(int, int) takes; a collision only makes two
    # unrelated writers take turns, never lets two writers of one name in together.
    return zlib.crc32(name.encode()) - (1 << 31)


class NamedLocks:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_postgresql = engine.dialect.name == "postgresql"
        self._held = threading.local()
        if not self.is_postgresql:
            database = engine.url.database or ""
            on_disk = database not in ("", ":memory:") and not database.startswith("file::memory:")
            base = Path(database).resolve().parent if on_disk else Path(tempfile.gettempdir())
            self.lock_dir = base / "locks"

    def _depths(self) -> dict[str, int]:
        if not hasattr(self._held, "depths"):
            self._held.depths = {}
        return self._held.depths

    @contextmanager
    def hold(self, name: str, timeout_s: float | None = None) -> Iterator[None]:
        """Hold the lock `name` for the block; waits for another holder (at most timeout_s,
        then raises Timeout)."""
        depths = self._depths()
        if depths.get(name):
            depths[name] += 1
            try:
                yield
            finally:
                depths[name] -= 1
            return
        with self._acquired(name, timeout_s):
            depths[name] = 1
            try:
                yield
            finally:
                del depths[name]

    @contextmanager
    def _acquired(self, name: str, timeout_s: float | None) -> Iterator[None]:
        if not self.is_postgresql:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.lock_dir / f"{_key(name) & 0xFFFFFFFF:08x}.lock"))
            try:
                lock.acquire(timeout=-1 if timeout_s is None else timeout_s)
            except TimeoutError:
                raise Timeout(f"{name!r} is held by another writer") from None
            try:
                yield
            finally:
                lock.release()
            return
        with self.engine.connect() as connection:
            self._advisory_acquire(connection, name, timeout_s)
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:namespace, :key)"), self._params(name))
                connection.commit()

    @staticmethod
    def _params(name: str) -> dict[str, int]:
        return {"namespace": ADVISORY_NAMESPACE, "key": _key(name)}

    def _advisory_acquire(self, connection: Connection, name: str, timeout_s: float | None) -> None:
        # Polled with try-lock rather than a blocking pg_advisory_lock: a wait then has a
        # deadline, and a stuck wait never pins a server process.
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        pause = 0.01
        while True:
            got = connection.execute(text("SELECT pg_try_advisory_lock(:namespace, :key)"), self._params(name)).scalar()
            connection.commit()  # the lock is the session's, not the transaction's
            if got:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise Timeout(f"{name!r} is held by another writer")
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
