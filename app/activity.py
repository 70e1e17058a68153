"""Counters of this process's work, read by /metrics: calls in progress, ingest totals."""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


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


def run_at_low_priority(niceness: int, work: Callable[[], T]) -> T:
    """``work()`` in a thread of its own, ``niceness`` steps nicer than this one (Linux niceness
    is per thread), so that ingesting on the cores that answer questions leaves them to the
    questions first. The caller's context variables go with it (Gradio's progress bar reads
    them); its result or exception comes back."""
    if niceness <= 0 or not hasattr(os, "setpriority"):
        return work()
    context = contextvars.copy_context()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            thread_id = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, thread_id, min(19, os.getpriority(os.PRIO_PROCESS, thread_id) + niceness))
            outcome["value"] = context.run(work)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="ingest-low-priority")
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
