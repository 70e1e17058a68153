"""`kb reindex`: rebuild every ready document's chunks and vectors from its stored original.

A resumable job per collection, recorded in ingest_jobs (kind "reindex"):

1. Build: each document is parsed, chunked and embedded (here, or on Ray Data) and its
   result staged as a file under ``<data dir>/reindex/<job id>/``. Nothing that queries
   read changes: the old chunks and the old index keep serving.
2. Swap: one SQL transaction replaces the chunk rows of every rebuilt document (and bumps
   the document row, so BM25 rebuilds); inside it the new FAISS index is written next to
   the live one, and right after the commit it is renamed over it.

Between the two, a collection with its own evaluation set has it run against the live index
and the staged one (app.reindex_guard): when recall@5 falls by more than
MMKB_REINDEX_GUARD_MARGIN the swap does not happen, and the job is "held" with its staged
files, so that `--force` swaps them in without rebuilding.

One re-index of a collection runs at a time: a second one (the CLI, the console, the API,
another replica) is refused with AlreadyRunning while the first holds the collection's
`reindex:<id>` lock (app.db_locks), rather than resuming the same job beside it.

Killed at any point, the next run finds the job ("running", or "interrupted" once a start
has seen its process gone) and its staged files, and only builds what is missing; stopped
by an error while this process lives on, the job is marked "interrupted" at once, just as
resumable. A crash between the commit and the rename leaves an index behind SQL, which
IndexManager repairs from the stored embeddings when it opens it (SQL stays the source of
truth). Staged results are trusted only if the settings that shape chunks (chunk size,
models, OCR) are unchanged; otherwise the job starts over.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, select

from app.chunk_rows import read_options
from app.db import Database
from app.db_locks import Timeout
from app.indexes import TEXT_SPACE, IndexManager, bump_index_version
from app.ingestion import ProgressCallback
from app.kb.errors import AlreadyRunning
from app.models import Chunk, Collection, Document, DocumentStatus, IngestJob, JobStatus
from app.owners import process_token
from app.reindex_build import DocumentTask, StagedDocument, build_document
from app.reindex_guard import RegressionGuard
from app.schemas import GuardReport, ReindexedDocument, ReindexOutcome, ReindexReport
from app.settings import Settings
from ingest.reading import FileReader, InProcessReader, read_ahead

log = logging.getLogger(__name__)

JOB_KIND = "reindex"
# A job left by a killed run: "running" until a start marks it "interrupted" (app.leftovers);
# or "held" by its collection's evaluation set, to be swapped in by --force or judged again.
RESUMABLE = (JobStatus.running, JobStatus.interrupted, JobStatus.held)
FINGERPRINT_FILE = "settings.json"


@dataclass
class _Plan:
    """One collection's job: its documents, and which of them an earlier run already staged."""

    collection: Collection
    job_id: int
    folder: Path
    tasks: list[DocumentTask]
    # The text embedder the collection has after the swap (`kb reindex --embedder`, else its own).
    text_embedder: str | None
    staged_before: set[int] = field(default_factory=set)
    done: int = 0
    failed: int = 0

    def stage_path(self, document_id: int, sha256: str) -> Path:
        return self.folder / f"doc-{document_id}-{sha256[:16]}.json"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Reindexer:
    def __init__(
        self, settings: Settings, database: Database, indexes: IndexManager, models, reader: FileReader | None = None
    ) -> None:
        self.settings = settings
        self.database = database
        self.indexes = indexes
        self.models = models
        # The knowledge base's parse workers; without them, originals are read in this process.
        self.reader = reader or InProcessReader(read_options(settings), lambda: self.models.ocr)
        self.guard = RegressionGuard(settings, database, indexes, models)

    @property
    def root(self) -> Path:
        return self.settings.data_dir / "reindex"

    def fingerprint(self, collection: Collection, text_embedder: str | None = None) -> dict:
        """What a staged result depends on besides the document's bytes; text_embedder: the
        registry name the vectors are built with (None: the settings' default)."""
        s = self.settings
        embedder = self.models.embedder_name(text_embedder)
        return {
            "chunk_tokens": collection.chunk_tokens or s.chunk_tokens,
            "chunk_overlap_tokens": s.chunk_overlap_tokens
            if collection.chunk_overlap_tokens is None
            else collection.chunk_overlap_tokens,
            "ocr_engine": s.ocr_engine,
            "ocr_scanned_pages": s.ocr_scanned_pages,
            "text_embedder": embedder,
            "text_embedder_path": str(s.text_embedder_path or "") if embedder == s.text_embedder else "",
            "image_embedder": s.image_embedder,
            "image_embedder_path": str(s.image_embedder_path or ""),
            "ocr_images": s.ocr_images,
            "min_image_side_px": s.min_image_side_px,
            "dims": {**self.indexes.dims, TEXT_SPACE: self.models.text_embedder_for(text_embedder).dim},
        }

    def run(
        self,
        collections: list[Collection],
        progress: ProgressCallback | None = None,
        use_ray: bool = False,
        text_embedder: str | None = None,
        force: bool = False,
    ) -> ReindexReport:
        """text_embedder: move the collections to this embedder (a registry name, checked by
        the caller); None keeps each collection's own. force: swap even where the collection's
        evaluation set does worse on the new index. AlreadyRunning: one of them is being
        re-indexed already."""
        with self.exclusive(collections):
            return self.carry_out(self.plan(collections, text_embedder), progress, use_ray, force)

    @contextmanager
    def exclusive(self, collections: list[Collection]) -> Iterator[None]:
        """Hold the re-index lock of every collection for the block, or refuse at once
        (AlreadyRunning) if another re-index (this process or another) holds one: waiting could
        take hours, and resuming the job it is running would build every document twice."""
        with ExitStack() as held:
            for collection in collections:
                try:
                    held.enter_context(self.database.locks.hold(f"reindex:{collection.id}", timeout_s=0))
                except Timeout:
                    raise AlreadyRunning(self._running_message(collection)) from None
            yield

    def _running_message(self, collection: Collection) -> str:
        with self.database.session() as session:
            job = session.scalar(
                select(IngestJob)
                .where(
                    IngestJob.collection_id == collection.id, IngestJob.kind == JOB_KIND, IngestJob.status == JobStatus.running
                )
                .order_by(IngestJob.id.desc())
            )
        # No row yet: the other run holds the lock but has not recorded its job.
        where = f" (job {job.id}, {job.done_files} of {job.total_files} documents built)" if job is not None else ""
        return (
            f"collection {collection.name} is being re-indexed already{where}; a second re-index is not started: "
            "try again when that one has finished"
        )

    def plan(self, collections: list[Collection], text_embedder: str | None = None) -> list[_Plan]:
        """Each collection's job row, created or resumed, with what is staged already; call
        inside exclusive(). text_embedder: as in run()."""
        self._remove_leftovers()
        return [self._plan(collection, text_embedder or collection.text_embedder) for collection in collections]

    def carry_out(
        self, plans: list[_Plan], progress: ProgressCallback | None = None, use_ray: bool = False, force: bool = False
    ) -> ReindexReport:
        """Build what the plans have not staged yet, judge and swap (or hold); inside exclusive()."""
        try:
            return self._carry_out(plans, progress, use_ray, force)
        except BaseException as exc:
            # An error, Ctrl-C, a progress callback that raised: this process lives on, so no
            # later start would mark the job; it is closed here (resumable, as after a kill).
            self._stopped(plans, exc)
            raise

    def _carry_out(self, plans: list[_Plan], progress: ProgressCallback | None, use_ray: bool, force: bool) -> ReindexReport:
        report = ReindexReport(
            job_ids=[p.job_id for p in plans], collections=[p.collection.name for p in plans], used_ray=use_ray
        )
        total = sum(len(p.tasks) for p in plans)
        done = sum(len(p.staged_before) for p in plans)
        if progress:
            progress(done, total, "")
        owner = {task.document_id: plan for plan in plans for task in plan.tasks}
        pending = [task for plan in plans for task in plan.tasks if task.document_id not in plan.staged_before]
        for staged in self._build(pending, use_ray):
            plan = owner[staged.document_id]
            staged.write(plan.stage_path(staged.document_id, staged.sha256))
            plan.done += 1
            plan.failed += bool(staged.error)
            self._count(plan)
            done += 1
            if progress:
                progress(done, total, staged.filename)
        for plan in plans:
            judged = self.guard.judge(
                plan.collection,
                plan.job_id,
                plan.folder,
                lambda: self._staged(plan),  # noqa: B023 - judged in this turn
                plan.text_embedder,
                force,
            )
            held = judged is not None and judged.verdict == "kept"
            report.documents.extend(self._hold(plan, judged) if held and judged is not None else self._swap(plan))
            if judged is not None:
                report.guard.append(self.guard.record(plan.collection, judged))
        if progress:
            progress(total, total, "")
        return report

    def _stopped(self, plans: list[_Plan], exc: BaseException) -> None:
        try:
            with self.database.session() as session:
                for plan in plans:
                    job = session.get(IngestJob, plan.job_id)
                    if job is None or job.status != JobStatus.running:  # gone with its collection, or ended
                        continue
                    job.status, job.finished_at = JobStatus.interrupted, _utcnow()
                    job.message = (
                        f"interrupted after {job.done_files} of {job.total_files} documents ({type(exc).__name__}: {exc}); "
                        "run the re-index again: it resumes where this job stopped"
                    )
        except Exception:  # the database may be what failed; a start after this process ends marks it
            log.exception("could not record that re-index job(s) %s stopped", [p.job_id for p in plans])

    def _build(self, tasks: list[DocumentTask], use_ray: bool) -> Iterable[StagedDocument]:
        if not tasks:
            return []
        if use_ray:
            from app.reindex_ray import build_on_ray

            return build_on_ray(tasks, self.settings)
        return self._build_here(tasks)

    def _build_here(self, tasks: list[DocumentTask]) -> Iterator[StagedDocument]:
        # As in ingestion: the workers read the next originals while this process embeds.
        def submit(task: DocumentTask) -> Future | None:
            original = Path(task.stored_path) if task.stored_path else None
            # A missing original is reported by build_document; nothing to read.
            return self.reader.submit(original, task.mime) if original is not None and original.is_file() else None

        for task, reading in read_ahead(self.reader, tasks, submit):
            yield build_document(task, self.settings, self.models, self.reader, reading)

    # --- the job row and its staging folder ------------------------------------------

    def _plan(self, collection: Collection, text_embedder: str | None) -> _Plan:
        fingerprint = self.fingerprint(collection, text_embedder)
        with self.database.session() as session:
            documents = list(
                session.scalars(
                    select(Document)
                    .where(Document.collection_id == collection.id, Document.status == DocumentStatus.ready)
                    .order_by(Document.id)
                )
            )
            job = session.scalar(
                select(IngestJob)
                .where(IngestJob.collection_id == collection.id, IngestJob.kind == JOB_KIND, IngestJob.status.in_(RESUMABLE))
                .order_by(IngestJob.id.desc())
            )
            if job is not None:  # this process carries it on (app.leftovers marks it only once we are gone)
                job.status, job.owner, job.message, job.finished_at = JobStatus.running, process_token(), None, None
            if job is not None and self._read_fingerprint(job.id) != fingerprint:
                # Staged with other settings (or killed before its folder existed): not reusable.
                job.status, job.finished_at = JobStatus.failed, _utcnow()
                job.message = "abandoned: the settings that shape chunks changed before it finished; a new job started"
                shutil.rmtree(self.root / str(job.id), ignore_errors=True)
                job = None
            if job is None:
                job = IngestJob(collection_id=collection.id, kind=JOB_KIND, status=JobStatus.running)
                session.add(job)
                session.flush()
                folder = self.root / str(job.id)
                folder.mkdir(parents=True, exist_ok=True)
                partial = folder / (FINGERPRINT_FILE + ".part")
                partial.write_text(json.dumps(fingerprint, sort_keys=True))
                os.replace(partial, folder / FINGERPRINT_FILE)
            job.total_files = len(documents)
            job_id = job.id
        tasks = [
            DocumentTask(
                d.id,
                d.sha256,
                d.filename,
                d.mime or "",
                d.stored_path or "",
                collection.chunk_tokens,
                collection.chunk_overlap_tokens,
                text_embedder,
            )
            for d in documents
        ]
        plan = _Plan(
            collection=collection, job_id=job_id, folder=self.root / str(job_id), tasks=tasks, text_embedder=text_embedder
        )
        staged = self._staged(plan)
        plan.staged_before = {s.document_id for s in staged}
        plan.done, plan.failed = len(staged), sum(1 for s in staged if s.error)
        self._count(plan)
        return plan

    def _remove_leftovers(self) -> None:
        """Staging folders of jobs that are no longer running (a kill after the swap's commit,
        before the folder was removed) hold nothing anyone will read again."""
        if not self.root.is_dir():
            return
        with self.database.session() as session:
            running = {
                str(job_id)
                for job_id in session.scalars(
                    select(IngestJob.id).where(IngestJob.kind == JOB_KIND, IngestJob.status.in_(RESUMABLE))
                )
            }
        for folder in self.root.iterdir():
            if folder.is_dir() and folder.name not in running:
                shutil.rmtree(folder, ignore_errors=True)

    def _read_fingerprint(self, job_id: int) -> dict | None:
        try:
            return json.loads((self.root / str(job_id) / FINGERPRINT_FILE).read_text())
        except (OSError, ValueError):
            return None

    def _staged(self, plan: _Plan) -> list[StagedDocument]:
        found = []
        for task in plan.tasks:
            path = plan.stage_path(task.document_id, task.sha256)
            if path.is_file():
                found.append(StagedDocument.from_json(path.read_text(encoding="utf-8")))
        return found

    def _count(self, plan: _Plan) -> None:
        with self.database.session() as session:
            job = session.get(IngestJob, plan.job_id)
            assert job is not None  # the plan's job row: created or resumed by _plan
            job.done_files, job.failed_files = plan.done, plan.failed

    # --- the swap ------------------------------------------------------------------------

    def _hold(self, plan: _Plan, judged: GuardReport) -> list[ReindexedDocument]:
        """The evaluation set did worse on the new index: SQL and the live index stay as they
        are, and the job stays resumable with its staged files (held), for --force to swap in
        without rebuilding, or a later run to judge again."""
        staged = self._staged(plan)
        with self.database.session() as session:
            job = session.get(IngestJob, plan.job_id)
            assert job is not None  # the plan's job row: created or resumed by _plan
            job.status, job.finished_at = JobStatus.held, _utcnow()
            # A move to another embedder leads with what a client asked about (PATCH
            # /api/collections answered it so when the move ran inside the request).
            lead = f"{plan.collection.name} stays on its text embedder: " if self._switches_embedder(plan) else "held: "
            job.message = lead + judged.message
        return [
            ReindexedDocument(
                collection=plan.collection.name,
                document_id=s.document_id,
                filename=s.filename,
                outcome=ReindexOutcome.failed if s.error else ReindexOutcome.held,
                error=s.error,
            )
            for s in staged
        ]

    def _switches_embedder(self, plan: _Plan) -> bool:
        return self.models.embedder_name(plan.text_embedder) != self.models.embedder_name(plan.collection.text_embedder)

    def _refuse_switch(self, plan: _Plan) -> list[ReindexedDocument] | None:
        """A move to another embedder happens whole or not at all: a document that failed to
        build would keep vectors of the old model, which the new index cannot search. So then
        nothing is swapped and the collection stays on its old embedder and index."""
        with self.database.session() as session:
            staged = [
                s
                for s in self._staged(plan)
                if (d := session.get(Document, s.document_id)) is not None
                and d.sha256 == s.sha256
                and d.status == DocumentStatus.ready
            ]
            failed = [s for s in staged if s.error]
            if not failed:
                return None
            job = session.get(IngestJob, plan.job_id)
            assert job is not None  # the plan's job row: created or resumed by _plan
            job.status, job.finished_at = JobStatus.failed, _utcnow()
            job.done_files, job.failed_files = len(staged), len(failed)
            name, target = plan.collection.name, self.models.embedder_name(plan.text_embedder)
            failures = "; ".join(f"{s.filename}: {s.error}" for s in failed)
            # The first sentence is the one PATCH /api/collections answered (409) when the move
            # ran inside the request.
            job.message = (
                f"{name} stays on its text embedder: {len(failed)} document(s) failed to re-index ({failures}); "
                f"fix or delete them and try again. It was not moved to {target}: the old vectors of the failed "
                "documents cannot join the new index, so the collection keeps its embedder and index."
            )
        shutil.rmtree(plan.folder, ignore_errors=True)
        return [
            ReindexedDocument(
                collection=name,
                document_id=s.document_id,
                filename=s.filename,
                outcome=ReindexOutcome.failed if s.error else ReindexOutcome.not_swapped,
                error=s.error,
            )
            for s in staged
        ]

    def _swap(self, plan: _Plan) -> list[ReindexedDocument]:
        switches = self._switches_embedder(plan)
        if switches and (refused := self._refuse_switch(plan)) is not None:
            return refused
        results: list[ReindexedDocument] = []
        collection_id = plan.collection.id
        with self.database.session() as session:
            for staged in self._staged(plan):
                outcome = ReindexOutcome.resumed if staged.document_id in plan.staged_before else ReindexOutcome.rebuilt
                result = ReindexedDocument(
                    collection=plan.collection.name, document_id=staged.document_id, filename=staged.filename, outcome=outcome
                )
                results.append(result)
                document = session.get(Document, staged.document_id)
                if (
                    document is None
                    or document.collection_id != collection_id
                    or document.sha256 != staged.sha256
                    or document.status != DocumentStatus.ready
                ):
                    result.outcome = ReindexOutcome.skipped  # deleted or replaced while the job ran
                    continue
                if staged.error:
                    result.outcome, result.error = ReindexOutcome.failed, staged.error
                    document.error = f"re-index failed, the previous chunks are kept: {staged.error}"
                    continue
                old_ids = list(session.scalars(select(Chunk.id).where(Chunk.document_id == document.id)))
                # New rows first, then the old ones go: new ids are then above every old one, so no
                # id is reused for other content within the swap.
                session.add_all(c.row(document.id, collection_id) for c in staged.chunks)
                session.flush()
                for start in range(0, len(old_ids), 500):
                    session.execute(delete(Chunk).where(Chunk.id.in_(old_ids[start : start + 500])))
                document.page_count = staged.page_count
                document.error = None
                # Chunks never change without their document row being touched too.
                document.updated_at = _utcnow()
                result.chunks = len(staged.chunks)
            bump_index_version(session, collection_id)
            if plan.text_embedder != plan.collection.text_embedder:
                # In the swap's transaction: readers see the new embedder with the new chunks.
                collection_row = session.get(Collection, collection_id)
                assert collection_row is not None  # the collection being re-indexed
                collection_row.text_embedder = plan.text_embedder
            session.flush()
            dims = {**self.indexes.dims, TEXT_SPACE: self.models.text_embedder_for(plan.text_embedder).dim}
            replacements = {
                space: self.indexes.build_replacement(session, collection_id, space, dims[space]) for space in self.indexes.dims
            }
            job = session.get(IngestJob, plan.job_id)
            assert job is not None  # the plan's job row: created or resumed by _plan
            failed = [r for r in results if r.outcome == ReindexOutcome.failed]
            job.status, job.finished_at = JobStatus.done, _utcnow()
            job.done_files, job.failed_files = len(results), len(failed)
            rebuilt = sum(1 for r in results if r.outcome in (ReindexOutcome.rebuilt, ReindexOutcome.resumed))
            message = f"{rebuilt} re-indexed, {len(failed)} failed" + (" (kept their previous chunks)" if failed else "")
            if switches:  # and then nothing failed (_refuse_switch)
                message += f"\n{plan.collection.name} now uses the text embedder {self.models.embedder_name(plan.text_embedder)}"
            job.message = message + "".join(f"\n{r.filename}: {r.error}" for r in failed)
        for space, replacement in replacements.items():
            self.indexes.install_replacement(collection_id, space, replacement)
        shutil.rmtree(plan.folder, ignore_errors=True)
        return results
