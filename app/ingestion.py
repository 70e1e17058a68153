"""Ingest files into a collection: validate, dedup, parse, chunk, embed, store, index.

Each file succeeds or fails alone. A failure is recorded on the file's document row with
a message a person can act on, and the batch goes on. Work is committed per file, so a
crash loses at most the file in flight, and re-running the same command resumes: files
already ready are skipped by content hash, failed or half-done ones are tried again.

One path for checks, dedup, document rows, storing, replacement and errors (this module, in
the driver); only the "read + chunk + embed" stage differs: parse workers and this process's
models (read ahead, in order), or, with `use_ray` (`kb ingest --ray`, RAY_ADDRESS), Ray Data
actors (app.reindex_ray) whose results are stored as they arrive.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from sqlalchemy import delete, select

from app.chunk_rows import ChunkBuilder, read_options
from app.db import Database
from app.indexes import IndexManager, bump_index_version
from app.models import Chunk, ChunkKind, Collection, Document, DocumentStatus, IngestJob, JobStatus
from app.removal import finish_removal, remove_in_session
from app.schemas import FileOutcome, FileResult, IngestReport
from app.settings import Settings
from ingest.loaders import EXTENSIONS, SUPPORTED_MIMES, safe_filename, safe_relative_name, sniff_mime
from ingest.reading import FileReader, InProcessReader, read_ahead
from ingest.types import IngestError

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, str], None]  # (files done, files total, current filename)


@dataclass(frozen=True)
class Upload:
    """A file to ingest: where its bytes are now and the name the user knows it by."""

    path: Path
    display_name: str
    # Folder sync names a document by its path inside the synced folder ("hr/travel.pdf"): two
    # same-named files in different subfolders stay two documents. Uploads lose directories.
    keep_folders: bool = False

    @property
    def document_name(self) -> str:
        return safe_relative_name(self.display_name) if self.keep_folders else safe_filename(self.display_name)


def expand_paths(paths: Iterable[Path]) -> list[Upload]:
    """Files given directly, and every file under given directories, in a stable order."""
    uploads: list[Upload] = []
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
                uploads.append(Upload(child, child.name))
        else:
            uploads.append(Upload(path, path.name))
    return uploads


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class _Accepted:
    """A file past the checks, stored and marked processing; its reading may be under way."""

    filename: str
    document_id: int
    stored: Path
    mime: str
    sha: str


@dataclass(frozen=True)
class _SameAsEarlier:
    """A file whose bytes an earlier file of this batch already has: it ends as that one does."""

    filename: str
    document_id: int


@dataclass(frozen=True)
class _Built:
    """An accepted file read, chunked and embedded: what _store writes."""

    page_count: int | None
    text_rows: list[Chunk]
    image_rows: list[Chunk]


_Started = FileResult | _Accepted | _SameAsEarlier
# A file of the batch after _begin: its position in the batch, the upload, what _begin made of
# it, and for an accepted file the step that builds its rows (raises IngestError if it cannot).
_Staged = tuple[int, Upload, _Started, Callable[[], _Built] | None]


class Ingestor:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        indexes: IndexManager,
        models,
        reader: FileReader | None = None,
        use_ray: bool = False,
    ) -> None:
        self.settings = settings
        self.database = database
        self.indexes = indexes
        self.models = models  # app.model_set.ModelSet; typed loosely to keep model imports lazy
        # Read, chunk and embed on Ray Data actors (the reader and this process's chunking unused).
        self.use_ray = use_ray
        self.reader = reader or InProcessReader(read_options(settings), lambda: self.models.ocr)
        self.chunks = ChunkBuilder(settings, models, self.reader)
        # Documents written by the current batch: two different files that share a name in one
        # batch (a/report.pdf, b/report.pdf) are two documents, not a new version of each other.
        self._batch_documents: set[int] = set()

    def ingest(
        self,
        collection: Collection,
        uploads: list[Upload],
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        report = IngestReport(collection=collection.name)
        with self.database.session() as session:
            new_job = IngestJob(collection_id=collection.id, kind="ingest", status=JobStatus.running, total_files=len(uploads))
            session.add(new_job)
            session.flush()
            report.job_id = new_job.id
        in_flight: dict[str, int] = {}  # sha256 -> document id, for files accepted in this batch
        # Each file's checks and document row come just before its reading is submitted (here:
        # the parse workers read it while earlier files are embedded and stored; on Ray: all
        # are begun, then built by the actors while the driver stores each as it arrives).
        begun = (
            (position, upload, self._guarded(upload, lambda: self._begin(collection, upload, in_flight)))  # noqa: B023 - called at once
            for position, upload in enumerate(uploads)
        )
        staged = self._build_on_ray(collection, begun) if self.use_ray else self._build_here(collection, begun)
        positions: list[int] = []
        try:
            for position, upload, started, build in staged:
                if progress:
                    progress(len(positions), len(uploads), upload.display_name)
                result = self._guarded(upload, lambda: self._end(collection, started, build))  # noqa: B023 - called here
                report.files.append(result)
                positions.append(position)
                with self.database.session() as session:
                    job = session.get(IngestJob, report.job_id)
                    assert job is not None  # the row added above
                    job.done_files = len(report.files)
                    job.failed_files = len(report.failed)
        except BaseException as exc:
            # Ctrl-C, a lost database, a progress callback that raised: this process lives on,
            # so no later start would see the job as left over; it is closed here.
            self._stopped(report, exc)
            raise
        finally:
            staged.close()  # on Ray, ends the job of files not built yet
        # In the order they were given, whatever order they finished in.
        report.files = [result for _, result in sorted(zip(positions, report.files), key=lambda pair: pair[0])]
        if progress:
            progress(len(uploads), len(uploads), "")
        with self.database.session() as session:
            job = session.get(IngestJob, report.job_id)
            assert job is not None  # the row added above
            job.status = JobStatus.done
            job.finished_at = datetime.now(UTC)
            job.message = f"{len(report.ingested)} ingested, {len(report.skipped)} unchanged, {len(report.failed)} failed"
        return report

    def _stopped(self, report: IngestReport, exc: BaseException) -> None:
        status = JobStatus.interrupted if isinstance(exc, KeyboardInterrupt) else JobStatus.failed
        try:
            with self.database.session() as session:
                job = session.get(IngestJob, report.job_id)
                assert job is not None  # the row ingest() added
                job.status, job.finished_at = status, datetime.now(UTC)
                job.message = (
                    f"{status.value} after {len(report.files)} of {job.total_files} files ({type(exc).__name__}: {exc}); "
                    "files finished before are kept: ingest the same files again to finish"
                )
        except Exception:  # the database may be what failed; a start after this process ends marks it
            log.exception("could not record that ingest job %s stopped", report.job_id)

    @staticmethod
    def _guarded(upload: Upload, step: Callable):
        try:
            return step()
        except Exception as exc:  # a bug must not sink the batch either; it is recorded
            log.exception("unexpected error ingesting %s", upload.display_name)
            return FileResult(filename=upload.document_name, outcome=FileOutcome.failed, error=f"internal error: {exc}")

    def _begin(
        self, collection: Collection, upload: Upload, in_flight: dict[str, int]
    ) -> FileResult | _Accepted | _SameAsEarlier:
        """Checks, dedup and the document row; the file's reading can start after this."""
        filename = upload.document_name
        try:
            size = upload.path.stat().st_size
        except OSError as exc:
            return FileResult(filename=filename, outcome=FileOutcome.failed, error=f"cannot read the file: {exc.strerror}")
        sha = _sha256(upload.path)
        if sha in in_flight:
            return _SameAsEarlier(filename, in_flight[sha])
        with upload.path.open("rb") as handle:
            head = handle.read(2048)
        mime = sniff_mime(head, upload.path)

        # Taken in turn with other processes' (replicas', the CLI's) checks and stores in this
        # collection: given the same bytes at once, a second process finds the row the first
        # added rather than adding another, and whichever stores second finds the file ready
        # (see _store). No lock is held while a file is read: a writer waiting on another's
        # file while holding its own read-ahead could wait for ever on one that waits on it.
        with self._collection_writer(collection), self.database.session() as session:
            document = session.scalar(select(Document).where(Document.collection_id == collection.id, Document.sha256 == sha))
            if document is not None and document.status == DocumentStatus.ready:
                return FileResult(
                    filename=filename, outcome=FileOutcome.skipped_duplicate, document_id=document.id, pages=document.page_count
                )
            if document is None:
                document = Document(collection_id=collection.id, sha256=sha, filename=filename)
                session.add(document)
            document.filename, document.mime, document.size_bytes = filename, mime, size
            document.status, document.error = DocumentStatus.processing, None
            # A retry starts clean: chunks of an earlier, interrupted attempt go.
            if document.id is not None:
                session.execute(delete(Chunk).where(Chunk.document_id == document.id))
            session.flush()
            document_id = document.id
        in_flight[sha] = document_id
        # Marked now, not when stored: a file read ahead must not look like an older version of
        # a same-named file of this batch that is stored before it.
        self._batch_documents.add(document_id)

        rejection = self._rejection(size, mime)
        if rejection:
            return self._fail(document_id, filename, rejection)
        assert mime is not None  # _rejection refuses a type sniff_mime did not recognise
        stored = self._store_original(upload.path, sha, mime)
        return _Accepted(filename, document_id, stored, mime, sha)

    def _build_here(self, collection: Collection, begun: Iterable[tuple[int, Upload, _Started]]) -> Generator[_Staged]:
        """In order; the parse workers read up to reader.lookahead files ahead of the one
        this process embeds."""

        def submit(item: tuple[int, Upload, _Started]) -> Future | None:
            started = item[2]
            return self.reader.submit(started.stored, started.mime) if isinstance(started, _Accepted) else None

        for (position, upload, started), future in read_ahead(self.reader, begun, submit):
            build = partial(self._read_and_embed, collection, started, future) if isinstance(started, _Accepted) else None
            yield position, upload, started, build

    def _read_and_embed(self, collection: Collection, started: _Accepted, future: Future | None) -> _Built:
        assert future is not None  # submit() reads every _Accepted file
        parsed = self.reader.result(future, started.stored, started.mime)
        text_rows, image_rows = self.chunks.rows(
            parsed,
            started.sha,
            started.filename,
            collection.chunk_tokens,
            collection.chunk_overlap_tokens,
            collection.text_embedder,
        )
        return _Built(parsed.page_count, text_rows, image_rows)

    def _build_on_ray(self, collection: Collection, begun: Iterable[tuple[int, Upload, _Started]]) -> Generator[_Staged]:
        """Every file is begun first (a file refused or already there ends at once), then the
        accepted ones are built on Ray Data actors and each is handed out as it arrives, so
        the driver holds only the results in flight, however large the batch. Files whose
        bytes an earlier one of the batch has come last, to end as that one did."""
        from app.reindex_build import DocumentTask
        from app.reindex_ray import build_on_ray

        accepted: dict[int, tuple[int, Upload, _Accepted]] = {}
        same_as_earlier: list[_Staged] = []
        for position, upload, started in begun:
            if isinstance(started, _Accepted):
                accepted[started.document_id] = (position, upload, started)
            elif isinstance(started, _SameAsEarlier):
                same_as_earlier.append((position, upload, started, None))
            else:
                yield position, upload, started, None
        tasks = [
            DocumentTask(
                started.document_id,
                started.sha,
                started.filename,
                started.mime,
                str(started.stored),
                collection.chunk_tokens,
                collection.chunk_overlap_tokens,
                collection.text_embedder,
            )
            for _, _, started in accepted.values()
        ]
        if tasks:
            try:
                for built in build_on_ray(tasks, self.settings):
                    position, upload, started = accepted.pop(built.document_id)
                    yield position, upload, started, partial(_built_from, built)
            except Exception as exc:
                # Ray itself failed (no cluster, an actor that died): each file not built yet
                # fails with the reason, as a file does alone, and the next run tries it again.
                log.exception("Ray Data stopped building this ingest's files")
                error = IngestError(f"not built: Ray Data stopped ({type(exc).__name__}: {exc}); ingest the file again")
                for position, upload, started in list(accepted.values()):
                    yield position, upload, started, partial(_raise, error)
        yield from same_as_earlier

    def _end(self, collection: Collection, started: _Started, build: Callable[[], _Built] | None) -> FileResult:
        if isinstance(started, FileResult):
            return started
        if isinstance(started, _SameAsEarlier):
            return self._same_as_earlier(started)
        assert build is not None  # both stages build every _Accepted file
        try:
            return self._store(collection, started, build())
        except IngestError as exc:
            return self._fail(started.document_id, started.filename, str(exc))

    def _same_as_earlier(self, duplicate: _SameAsEarlier) -> FileResult:
        with self.database.session() as session:
            document = session.get(Document, duplicate.document_id)
            assert document is not None  # the earlier file's row, added by _begin
            if document.status == DocumentStatus.ready:
                return FileResult(
                    filename=duplicate.filename,
                    outcome=FileOutcome.skipped_duplicate,
                    document_id=document.id,
                    pages=document.page_count,
                )
            return FileResult(
                filename=duplicate.filename,
                outcome=FileOutcome.failed,
                document_id=document.id,
                error=document.error or "the same file earlier in this batch was not ingested",
            )

    def _store(self, collection: Collection, started: _Accepted, built: _Built) -> FileResult:
        document_id, filename = started.document_id, started.filename
        text_chunks, image_rows = built.text_rows, built.image_rows
        # One process at a time makes a collection's files ready: two versions of one name
        # stored at once by two processes would each miss the other as "older".
        with self._collection_writer(collection), self.database.session() as session:
            # Checked in the transaction that makes the file ready: a re-index that moved the
            # collection to another embedder meanwhile must not get vectors of the old one.
            now = session.scalar(select(Collection.text_embedder).where(Collection.id == collection.id))
            if self.models.embedder_name(now) != self.models.embedder_name(collection.text_embedder):
                raise IngestError(
                    f"the collection's text embedder changed to {self.models.embedder_name(now)} while this file was "
                    "being read; upload it again"
                )
            document = session.get(Document, document_id)
            if document is not None and document.status == DocumentStatus.ready:
                # Another process stored the same bytes first, while this one read them.
                return FileResult(
                    filename=filename, outcome=FileOutcome.skipped_duplicate, document_id=document_id, pages=document.page_count
                )
            if document is None:
                raise IngestError("the document was deleted while it was being read")
            document.stored_path = str(started.stored)
            document.page_count = built.page_count
            rows = text_chunks + image_rows
            for row in rows:
                row.document_id, row.collection_id = document_id, collection.id
            session.add_all(rows)
            session.flush()
            document.status = DocumentStatus.ready
            bump_index_version(session, collection.id)
            # A changed file (same name, new bytes) replaces its old version in the same commit
            # that makes the new one ready: a reader sees the old or the new, never both or neither.
            # If the new version fails, we never get here and the old one stays.
            older = list(
                session.scalars(
                    select(Document).where(
                        Document.collection_id == collection.id,
                        Document.filename == filename,
                        Document.id != document_id,
                        Document.id.not_in(self._batch_documents),
                    )
                )
            )
            pending = remove_in_session(session, older) if older else None
        # The index follows SQL: sync adds the rows just committed (and any an earlier crash left
        # out); with a replaced version, it also drops the old version's vectors.
        for space in {row.vector_space for row in rows}:
            assert space is not None  # ChunkBuilder.rows gives every row a vector space
            self.indexes.sync(collection.id, space)
        replaced: list[int] = []
        if pending is not None:
            replaced = finish_removal(self.database.session, self.indexes, pending).document_ids
        return FileResult(
            filename=filename,
            outcome=FileOutcome.ingested,
            document_id=document_id,
            pages=built.page_count,
            text_chunks=len(text_chunks),
            image_chunks=len({row.image_path for row in image_rows}),
            replaced_document_ids=replaced,
        )

    def _collection_writer(self, collection: Collection):
        return self.database.locks.hold(f"collection-write:{collection.id}")

    def _rejection(self, size: int, mime: str | None) -> str | None:
        if size == 0:
            return "the file is empty (0 bytes)"
        if size > self.settings.max_upload_bytes:
            return f"the file is {size / 1e6:.1f} MB, over the {self.settings.max_upload_mb:g} MB limit (MMKB_MAX_UPLOAD_MB)"
        if mime not in SUPPORTED_MIMES:
            return (
                "unsupported or unrecognised file type: mmkb reads PDF, PNG, JPEG, TIFF, WebP, DOCX, PPTX, HTML and "
                "UTF-8 text or Markdown files (checked by content, not by name)"
            )
        return None

    def _store_original(self, source: Path, sha: str, mime: str) -> Path:
        target = self.settings.files_dir / f"{sha}{EXTENSIONS[mime]}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(target.suffix + ".part")
            shutil.copyfile(source, partial)
            partial.replace(target)
        return target

    def _fail(self, document_id: int, filename: str, message: str) -> FileResult:
        with self.database.session() as session:
            document = session.get(Document, document_id)
            # A copy that another process made ready meanwhile is not undone by this one's failure.
            if document is not None and document.status != DocumentStatus.ready:
                document.status = DocumentStatus.failed
                document.error = message
        return FileResult(filename=filename, outcome=FileOutcome.failed, document_id=document_id, error=message)


def _built_from(staged) -> _Built:
    """A document built on Ray (app.reindex_build.StagedDocument) as the rows to store."""
    if staged.error:
        raise IngestError(staged.error)
    rows = [chunk.row() for chunk in staged.chunks]
    text_rows = [row for row in rows if row.kind == ChunkKind.text]
    return _Built(staged.page_count, text_rows, [row for row in rows if row.kind != ChunkKind.text])


def _raise(error: Exception) -> _Built:
    raise error
