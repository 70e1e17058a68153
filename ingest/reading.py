"""Read a stored file into a ParsedFile (text, tables, figures, OCR), in worker processes.

Parsing, table detection and OCR are CPU work in MuPDF, Python and Tesseract; embedding is
torch. Done in the ingesting process they take turns, and the core that could embed one
file waits while the next is parsed. `WorkerPoolReader` reads the next files in worker
processes while the ingesting process embeds the current one (benchmarks/RESULTS.md has the
gain), and a file that crashes MuPDF kills a worker, not the server: the file fails alone.
`InProcessReader` does the same work inline: for `kb reindex`, whose Ray actors already run
one document per process, and for MMKB_PARSE_WORKERS=0.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Protocol, TypeVar

from ingest.loaders import parse_file
from ingest.ocr import OcrEngine, load_ocr
from ingest.types import IngestError, ParsedFile

T = TypeVar("T")


@dataclass(frozen=True)
class ReadOptions:
    """What reading a file involves; plain data, so it travels to worker processes."""

    ocr_engine: str = "tesseract"
    ocr_threads: int = 0  # 0 = the engine's default
    ocr_scanned_pages: bool = True
    ocr_images: bool = True
    min_image_side_px: int = 64
    niceness: int = 0  # worker processes run this many steps nicer than normal (parsing yields to questions)


def read_file(path: Path, mime: str, options: ReadOptions, ocr: Callable[[], OcrEngine]) -> ParsedFile:
    """Parse a file and OCR what needs it. `ocr` returns the engine and is called only when a
    scanned page or a figure is read, so a file without either never loads (or needs) one."""
    scanned_page_reader = (lambda png: ocr().read(png)) if options.ocr_scanned_pages else None
    parsed = parse_file(path, mime, ocr=scanned_page_reader)
    # Icons and rules are not figures; only the kept ones are worth OCR.
    figures = [image for image in parsed.images if min(image.width, image.height) >= options.min_image_side_px]
    if options.ocr_images:
        figures = [replace(image, ocr_text=" ".join(ocr().read(image.png_bytes).split())) for image in figures]
    parsed.images = figures
    return parsed


class FileReader(Protocol):
    # How many files an ingest should have submitted at once: enough to keep every worker busy.
    lookahead: int

    def start(self) -> None: ...

    def submit(self, path: Path, mime: str) -> Future: ...

    def result(self, future: Future, path: Path, mime: str) -> ParsedFile: ...

    def close(self) -> None: ...


class InProcessReader:
    """Reads in the calling process; `submit` does the work before it returns."""

    lookahead = 1

    def __init__(self, options: ReadOptions, ocr: Callable[[], OcrEngine]) -> None:
        self.options = options
        self._ocr = ocr

    def start(self) -> None:
        pass

    def submit(self, path: Path, mime: str) -> Future:
        future: Future = Future()
        try:
            future.set_result(read_file(path, mime, self.options, self._ocr))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def result(self, future: Future, path: Path, mime: str) -> ParsedFile:
        return future.result()

    def close(self) -> None:
        pass


def read_ahead(reader: FileReader, items: Iterable[T], submit: Callable[[T], Future | None]) -> Iterator[tuple[T, Future | None]]:
    """Each item with its reading (`submit(item)`: a future, or None for nothing to read), in
    order. Up to reader.lookahead items are submitted before the caller works on the first,
    and the next is submitted as each is handed out, so the workers read while the caller
    embeds. `items` is consumed only as far as needed: a lazy iterable may do per-item work."""
    queue: deque[tuple[T, Future | None]] = deque()
    upcoming = iter(items)

    def fill() -> None:
        for item in islice(upcoming, max(0, reader.lookahead - len(queue))):
            queue.append((item, submit(item)))

    fill()
    while queue:
        handed_out = queue.popleft()
        fill()
        yield handed_out


# Per worker process (set by _start_worker): the options and the OCR engine, loaded on first use.
_worker_options: ReadOptions | None = None
_worker_ocr: OcrEngine | None = None


# How often a worker checks that the process that started it is still there.
PARENT_CHECK_S = 0.5


def _exit_with_parent(parent: int) -> None:
    """End this worker once `parent` is gone (a kill -9 runs none of its cleanup, and the
    worker, blocked on a queue whose write end it holds itself, would wait for ever).

    A thread polling the parent pid rather than prctl(PR_SET_PDEATHSIG): Linux sends that
    signal when the *thread* that started the worker ends, and the pool is started from
    whichever thread ingests first (a server's request thread, which its pool retires
    when idle), so the workers would die under a live server. The cost: a worker inside a
    long C call that holds the GIL (MuPDF on one page) leaves only when the call returns."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)  # no cleanup to run: the results have nowhere to go

    threading.Thread(target=watch, name="mmkb-parent-watch", daemon=True).start()


def _start_worker(options: ReadOptions, parent: int | None = None) -> None:
    global _worker_options
    _worker_options = options
    _exit_with_parent(os.getppid() if parent is None else parent)
    if options.niceness > 0:
        os.nice(options.niceness)  # inherited by the OCR programs it starts
    if options.ocr_threads > 0:
        # Tesseract is a child program using OpenMP; without a limit each one takes every core
        # and the embedder in the parent process waits (0.92 s vs 1.41 s for 3 figures here).
        os.environ["OMP_THREAD_LIMIT"] = str(options.ocr_threads)


def _worker_engine() -> OcrEngine:
    global _worker_ocr
    if _worker_ocr is None:
        assert _worker_options is not None  # set by _start_worker, the pool's initializer
        _worker_ocr = load_ocr(_worker_options.ocr_engine, threads=_worker_options.ocr_threads)
    return _worker_ocr


def _ready() -> int:
    return os.getpid()


def _read_in_worker(path: str, mime: str) -> ParsedFile:
    assert _worker_options is not None  # set by _start_worker, the pool's initializer
    return read_file(Path(path), mime, _worker_options, _worker_engine)


_CRASHED = (
    "the file crashed the document parser (its worker process died: a damaged or hostile file, "
    "or one too large for the memory available); nothing of it was indexed"
)


class WorkerPoolReader:
    """Reads files in `workers` spawned processes, started on first use and kept for reuse."""

    def __init__(self, options: ReadOptions, workers: int) -> None:
        if workers < 1:
            raise ValueError("a worker pool needs at least one worker; use InProcessReader for none")
        self.options = options
        self.workers = workers
        self.lookahead = 2 * workers  # one being read and one queued per worker
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        # spawn, not fork: the parent holds torch's and FAISS's thread pools, which a forked
        # child inherits in an undefined state.
        return ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self.options, os.getpid()),
        )

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = self._new_pool(self.workers)
            return self._pool

    def start(self) -> None:
        """Start the workers now rather than on the first file (a server's first upload, a
        benchmark's clock): each process imports the parsers once, ~1 s."""
        pool = self._executor()
        for future in [pool.submit(_ready) for _ in range(self.workers)]:
            future.result()

    def submit(self, path: Path, mime: str) -> Future:
        try:
            return self._executor().submit(_read_in_worker, str(path), mime)
        except BrokenProcessPool:  # broken since the last read: result() retries it alone
            failed: Future = Future()
            failed.set_exception(BrokenProcessPool("the pool broke before this file was read"))
            return failed

    def result(self, future: Future, path: Path, mime: str) -> ParsedFile:
        try:
            return future.result()
        except BrokenProcessPool:
            # A worker died with this file or another one in flight: every pending read fails
            # alike. Read this one again alone, in a process of its own, to know which it was.
            self._discard_pool()
            solo = self._new_pool(1)
            try:
                return solo.submit(_read_in_worker, str(path), mime).result()
            except BrokenProcessPool:
                raise IngestError(_CRASHED) from None
            finally:
                solo.shutdown(wait=True, cancel_futures=True)

    def _discard_pool(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


# Each worker holds MuPDF and its table-layout model (~0.4 GB once it has read a table).
MAX_DEFAULT_WORKERS = 8


def default_parse_workers(configured: int | None) -> int:
    """MMKB_PARSE_WORKERS, else one per core (at most MAX_DEFAULT_WORKERS).

    As many as cores although the embedder needs one too: a worker waits while its Tesseract
    process reads a figure. On the 2-core VM 2 workers ingested the benchmark corpus in 10.6 s,
    1 in 15.0 s and 4 in 12.8 s (benchmarks/RESULTS.md)."""
    if configured is not None:
        return max(0, configured)
    return max(1, min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1))
