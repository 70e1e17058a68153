"""Counters of this process's work, read by /metrics: calls in progress, ingest totals."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class InFlight:
    """How many calls of one kind are running right now (for the /metrics queue gauge)."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @contextmanager
    def track(self) -> Iterator[None]:
        with self._lock:
            self._count += 1
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1

    @property
    def count(self) -> int:
        return self._count


class IngestTotals:
    """Pages ingested and seconds spent ingesting by this process, whoever asked (API, admin
    console, CLI), for the /metrics ingest rate (pages/s = rate(pages) / rate(seconds))."""

    def __init__(self) -> None:
        self.pages = 0
        self.seconds = 0.0
        self._lock = threading.Lock()

    def add(self, pages: int, seconds: float) -> None:
        with self._lock:
            self.pages += pages
            self.seconds += seconds
