"""The work that changes a collection's index: ingest, re-index and folder sync, and what
is seen of it (jobs, the dashboard, queue lengths)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app import dashboard, folder_sync, leftovers, registry
from app.activity import InFlight, IngestTotals, run_at_low_priority
from app.archives import ArchiveLimits, expand_archives
from app.db import Database
from app.indexes import IndexManager
from app.ingestion import Ingestor, ProgressCallback, Upload, expand_paths
from app.kb import repository
from app.kb.access import Access
from app.kb.collections import Collections
from app.kb.errors import AccessDenied, Hidden, NotFound
from app.model_set import ModelSet
from app.models import Collection, Role, User
from app.schemas import Dashboard, IngestReport, JobInfo, QueueLengths, ReindexReport
from app.settings import Settings
from ingest.reading import FileReader

if TYPE_CHECKING:  # imported when used: app.reindex loads the evaluation and answering code
    from app.reindex import Reindexer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartedReindex:
    """A re-index running in a thread of its own: the collection's name (after the rename
    that came with it, if any) and its job's id (GET /api/jobs/{id} follows it)."""

    collection: str
    job_id: int


class Jobs:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        models: ModelSet,
        access: Access,
        collections: Collections,
        indexes: Callable[[], IndexManager],
        file_reader: Callable[[], FileReader],
        ingest_totals: IngestTotals,
        asks_in_flight: InFlight,
    ) -> None:
        self.settings = settings
        self.database = database
        self.models = models
        self.access = access
        self.collections = collections
        # Both opened on first use (the knowledge base's lazy properties).
        self._indexes = indexes
        self._file_reader = file_reader
        self.ingest_totals = ingest_totals
        self.asks_in_flight = asks_in_flight

    # --- ingest and re-index ----------------------------------------------------------

    def ingest(
        self,
        user: User,
        collection_name: str,
        paths: list[Path] | None = None,
        uploads: list[Upload] | None = None,
        progress: ProgressCallback | None = None,
        use_ray: bool = False,
    ) -> IngestReport:
        if user.is_admin:
            collection = self.collections.get_or_create(collection_name)
        else:
            (collection,) = self.access.readable_collections(user, [collection_name])
        self.access.writable(user, collection)
        batch = list(uploads or []) + expand_paths(paths or [])
        limits = ArchiveLimits(self.settings.zip_max_files, self.settings.zip_max_total_bytes, self.settings.max_upload_bytes)
        # Zip archives are expanded after the permission check, so only writers can make us inflate one.
        started = time.perf_counter()
        try:
            with leftovers.staging(self.settings.data_dir, "unzip") as staging:
                batch, refused_archives = expand_archives(batch, staging, limits)
                # On Ray (asked for, or RAY_ADDRESS set: uploads too) the actors read the files,
                # so this process's parse workers are not started for it.
                use_ray = use_ray or bool(self.settings.ray_address)
                reader = None if use_ray else self._file_reader()
                ingestor = Ingestor(self.settings, self.database, self._indexes(), self.models, reader, use_ray)
                report = run_at_low_priority(self.settings.ingest_niceness, lambda: ingestor.ingest(collection, batch, progress))
        finally:
            # Also what an earlier process killed mid-upload left, if it died after our start.
            leftovers.sweep_staging(self.settings.data_dir)
        self.ingest_totals.add(sum(f.pages or 0 for f in report.ingested), time.perf_counter() - started)
        report.files[:0] = refused_archives
        return report

    def reindex(
        self,
        user: User,
        collection_name: str | None = None,
        progress: ProgressCallback | None = None,
        use_ray: bool = False,
        text_embedder: str | None = None,
        force: bool = False,
    ) -> ReindexReport:
        """See KnowledgeBase.reindex."""
        if text_embedder is not None:
            text_embedder = registry.check_text_embedder(text_embedder, self.settings)

        if collection_name is None:
            if not user.is_admin:
                raise AccessDenied("only administrators re-index every collection")
            with self.database.session() as session:
                collections = repository.all_collections(session)
        else:
            collections = [self._reindexable(user, collection_name)]
        use_ray = use_ray or bool(self.settings.ray_address)
        return self._reindexer().run(collections, progress, use_ray, text_embedder, force=force)

    def change_embedder(
        self, user: User, collection_name: str, text_embedder: str, new_name: str | None = None
    ) -> StartedReindex:
        """See KnowledgeBase.change_embedder."""
        text_embedder = registry.check_text_embedder(text_embedder, self.settings)
        collection = self._reindexable(user, collection_name)
        reindexer = self._reindexer()
        use_ray = bool(self.settings.ray_address)
        # Set once the job is recorded (or the start refused); the caller waits for it, the
        # re-index goes on.
        started: Future[StartedReindex] = Future()

        def run() -> None:
            try:
                # The rename, too, under the collection's re-index lock: refused as busy, the
                # request changes nothing.
                with reindexer.exclusive([collection]):
                    target = collection if new_name is None else self.collections.rename(user, collection_name, new_name)
                    plans = reindexer.plan([target], text_embedder)
                    started.set_result(StartedReindex(collection=target.name, job_id=plans[0].job_id))
                    reindexer.carry_out(plans, use_ray=use_ray)
            except BaseException as exc:
                if not started.done():
                    started.set_exception(exc)
                else:  # the job row says it stopped (Reindexer.carry_out); the traceback goes to the log
                    log.exception("the re-index of collection %s to %s stopped", collection_name, text_embedder)

        # A daemon: a server that stops does not wait hours for it. Its job row then stays
        # "running" until the next start sees its process gone and marks it interrupted
        # (app.leftovers); the staged documents stay for the next run to resume.
        threading.Thread(target=run, name=f"reindex-collection-{collection.id}", daemon=True).start()
        return started.result()

    def _reindexable(self, user: User, collection_name: str) -> Collection:
        with self.database.session() as session:
            collection = repository.collection_by_name(session, collection_name)
        self.access.require(user, collection, Role.admin, f"{user.username} may not re-index collection {collection_name}")
        return collection

    def _reindexer(self) -> Reindexer:
        from app.reindex import Reindexer

        return Reindexer(self.settings, self.database, self._indexes(), self.models, self._file_reader())

    # --- jobs, dashboard, queue ---------------------------------------------------------

    def jobs(self, actor: User, limit: int = 20) -> list[JobInfo]:
        """Newest ingest jobs of the collections `actor` may change (admins and editors)."""
        ids = self.access.changeable_collection_ids(actor)
        if ids is not None and not ids:
            raise AccessDenied(f"{actor.username} may not change any collection, so has no jobs to see")
        return dashboard.job_infos(self.database, ids, limit=limit)

    def job(self, actor: User, job_id: int) -> JobInfo:
        exists, collection_id = dashboard.job_collection_id(self.database, job_id)
        if not exists:
            raise NotFound(f"no job with id {job_id}")
        ids = self.access.changeable_collection_ids(actor)
        if ids is not None and collection_id not in ids:
            if collection_id not in {c.id for c in self.access.readable_collections(actor)}:
                raise Hidden(f"no job with id {job_id}")
            raise AccessDenied(f"{actor.username} may not see job {job_id}")
        return dashboard.job_infos(self.database, None, limit=1, job_id=job_id)[0]

    def dashboard(self, actor: User, job_limit: int = 10) -> Dashboard:
        """Counts, index size on disk, last jobs and models for what `actor` administers."""
        collections = self.access.administered_collections(actor)
        if not actor.is_admin and not collections:
            raise AccessDenied(f"{actor.username} administers no collection")
        ids = None if actor.is_admin else [c.id for c in collections]
        return Dashboard(
            collections=dashboard.collection_stats(
                self.database, self.settings.index_dir, collections, self.settings.text_embedder
            ),
            jobs=dashboard.job_infos(self.database, ids, limit=job_limit),
            models=dashboard.models_in_use(self.settings, self.models),
        )

    def queue_lengths(self) -> QueueLengths:
        """Server-wide totals for /metrics (no names, so no permission involved)."""
        active = dashboard.active_jobs(self.database)
        return QueueLengths(
            ingest_queued=active.get("queued", 0),
            ingest_running=active.get("running", 0),
            asks_in_flight=self.asks_in_flight.count,
        )

    # --- folder sync (app.folder_sync) ----------------------------------------------------

    def sync_collection(self, user: User, collection_name: str, create: bool = False) -> Collection:
        """A collection's admins and editors register and run its folder sync (global admins
        any); to a non-member it does not exist. create: a global admin's new name is made."""
        if create and user.is_admin:
            collection = self.collections.get_or_create(collection_name)
        else:
            (collection,) = self.access.readable_collections(user, [collection_name])
        self.access.writable(user, collection)
        return collection

    def console_folder(self, folder: str | Path) -> Path:
        """A folder the console may use: under MMKB_SYNC_ROOTS, links resolved."""
        try:
            return folder_sync.allowed_folder(folder, list(self.settings.sync_roots))
        except folder_sync.OutsideSyncRoots as exc:
            raise AccessDenied(str(exc)) from None

    def register_sync_folder(self, user: User, collection_name: str, folder: str | Path) -> folder_sync.SyncFolderInfo:
        """The console's registration of the server folder a collection mirrors (one per
        collection; another one replaces it). Only folders under MMKB_SYNC_ROOTS."""
        collection = self.sync_collection(user, collection_name)
        folder_sync.register(self.database, collection, self.console_folder(folder), user.username)
        info = folder_sync.folder_info(self.database, collection)
        assert info is not None  # just registered
        return info

    def sync_folder_info(self, user: User, collection_name: str) -> folder_sync.SyncFolderInfo | None:
        """The collection's folder and its last sync (when, and what it did); None: no folder."""
        return folder_sync.folder_info(self.database, self.sync_collection(user, collection_name))

    def sync_folder(
        self,
        target: folder_sync.SyncTarget,
        user: User,
        collection_name: str,
        folder: str | Path | None = None,
        delete: bool = False,
        progress: folder_sync.SyncProgress | None = None,
        at_shell: bool = False,
    ) -> folder_sync.SyncSummary:
        """See KnowledgeBase.sync_folder; `target` ingests the files (the knowledge base)."""
        collection = self.sync_collection(user, collection_name, create=at_shell)
        if folder is not None:
            path = folder_sync.existing_folder(folder) if at_shell else self.console_folder(folder)
            folder_sync.register(self.database, collection, path, user.username)
        else:
            registered = folder_sync.folder_info(self.database, collection)
            if registered is None:
                raise NotFound(f"collection {collection.name} has no folder to sync; register one first")
            if not at_shell:
                self.console_folder(registered.path)  # the roots may have changed since
        return folder_sync.run_sync(target, user, collection, delete, progress)
