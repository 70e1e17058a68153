"""The service layer: the one entry point the CLI, the UI and the API use.

It owns storage (database, indexes, stored files) and composes ingest -> retrieval ->
rerank -> generation. KnowledgeBase is a façade over the components of app/kb/, one
responsibility each; every permission decision is app.kb.access's, so the rule lives in
one place.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator
from pathlib import Path

from app import folder_sync, leftovers
from app.accounts import Accounts
from app.activity import InFlight, IngestTotals
from app.admission import Admission
from app.answering import Answerer, AnswerEvent
from app.chunk_rows import read_options
from app.collection_eval import EvalSets
from app.conversations import Conversations
from app.db import Database
from app.directory import Directory, DirectoryConfig
from app.generation.base import generate
from app.generation.followup import Turn
from app.indexes import IndexManager, KeywordIndexManager
from app.ingestion import ProgressCallback, Upload
from app.kb import repository
from app.kb.access import SYSTEM_USER, Access
from app.kb.asking import Asking
from app.kb.collections import MIN_CHUNK_TOKENS, Collections
from app.kb.errors import AccessDenied, AlreadyRunning, EmptyCollection, Hidden, NotFound
from app.kb.evaluation_sets import EvaluationSets
from app.kb.jobs import Jobs, StartedReindex
from app.kb.sources import Sources
from app.model_set import ModelSet
from app.models import Collection, Document, Role, User
from app.oidc import OidcConfig
from app.page_view import SourceView
from app.removal import RemovalResult
from app.schemas import (
    Answer,
    CollectionInfo,
    Dashboard,
    EvalQuestionInfo,
    EvalRunInfo,
    EvalScores,
    IngestReport,
    JobInfo,
    MemberInfo,
    NewEvalQuestion,
    QueueLengths,
    ReindexReport,
    Source,
)
from app.settings import Settings
from ingest.reading import FileReader
from retrieval.hyde import HydeWriter

# Re-exported: callers import the refusals and these constants from here.
__all__ = [
    "MIN_CHUNK_TOKENS",
    "SYSTEM_USER",
    "AccessDenied",
    "AlreadyRunning",
    "EmptyCollection",
    "Hidden",
    "KnowledgeBase",
    "NotFound",
]

logger = logging.getLogger(__name__)


class KnowledgeBase:
    def __init__(self, settings: Settings, models: ModelSet | None = None) -> None:
        settings.ensure_dirs()
        self.settings = settings
        self.database = Database(settings.resolved_database_url)
        self.models = models or ModelSet(settings)
        directory = DirectoryConfig.from_settings(settings)  # bad LDAP settings fail here, at start
        single_sign_on = OidcConfig.from_settings(settings) is not None  # bad OIDC settings too
        self.accounts = Accounts(
            self.database, directory=Directory(directory) if directory else None, single_sign_on=single_sign_on
        )
        self.conversations = Conversations(self.database)
        self.eval_sets = EvalSets(self.database)
        self._indexes: IndexManager | None = None
        # One per knowledge base, so the in-memory BM25 indexes outlive a single question.
        self.keyword_indexes = KeywordIndexManager(self.database)
        # Likewise the HyDE passages: cached per question for the life of the process.
        self.hyde = HydeWriter(
            lambda messages: generate(self.models.generator, messages, settings.hyde_max_new_tokens), settings.hyde_cache_size
        )
        self.asks_in_flight = InFlight()
        self.admission = Admission(settings.ask_max_admitted, settings.ask_per_user, settings.ask_max_wait_s)
        self.ingest_totals = IngestTotals()
        self._file_reader: FileReader | None = None
        self._file_reader_lock = threading.Lock()
        # The components; each takes what it needs, the lazily opened indexes and file reader
        # (and the answerer) as callables, so that nothing is loaded before it is used.
        self.access = Access(self.database, self.accounts)
        self.collections = Collections(
            settings, self.database, self.models, self.access, lambda: self.indexes, self.keyword_indexes
        )
        self.work = Jobs(
            settings,
            self.database,
            self.models,
            self.access,
            self.collections,
            lambda: self.indexes,
            lambda: self.file_reader,
            self.ingest_totals,
            self.asks_in_flight,
        )
        self.asking = Asking(
            settings,
            self.database,
            self.access,
            self.conversations,
            self.admission,
            self.asks_in_flight,
            lambda: self._answerer(),
        )
        self.sources = Sources(self.database, self.access)
        self.evaluation_sets = EvaluationSets(self.access, self.eval_sets, lambda: self._answerer())
        self.recover_leftovers()

    def recover_leftovers(self) -> None:
        """What processes killed mid-work left: their jobs are marked interrupted (the job
        list says what to run again) and their staging folders go. Only a dead owner's
        things are touched, so a live CLI ingest beside this server keeps its own."""
        leftovers.recover_jobs(self.database)
        leftovers.sweep_staging(self.settings.data_dir)

    @property
    def indexes(self) -> IndexManager:
        if self._indexes is None:
            from retrieval.gpu import GpuResources, resolve_faiss_device
            from retrieval.vector_store import configure_faiss_threads

            gpu = GpuResources() if resolve_faiss_device(self.settings.faiss_gpu) == "gpu" else None
            configure_faiss_threads(self.settings.faiss_threads)
            self._indexes = IndexManager(
                self.database,
                self.settings.index_dir,
                self.models.dims(),
                hnsw_threshold=self.settings.hnsw_threshold if self.settings.hnsw_threshold > 0 else None,
                gpu=gpu,
                text_dims=self._text_dim,
            )
        return self._indexes

    def _text_dim(self, collection_id: int) -> int:
        """The text dimension of a collection: its embedder's (read from SQL, which a re-index
        in another process may have changed)."""
        with self.database.session() as session:
            name = repository.text_embedder_of(session, collection_id)
        return self.models.text_embedder_for(name).dim

    @property
    def file_reader(self) -> FileReader:
        """Parses uploads in worker processes (MMKB_PARSE_WORKERS); shared by every ingest of
        this knowledge base, started on the first one and stopped by close()."""
        with self._file_reader_lock:
            if self._file_reader is None:
                from ingest.reading import InProcessReader, WorkerPoolReader, default_parse_workers

                options = read_options(self.settings)
                workers = default_parse_workers(self.settings.parse_workers)
                self._file_reader = (
                    WorkerPoolReader(options, workers) if workers else InProcessReader(options, lambda: self.models.ocr)
                )
            return self._file_reader

    def preload_models(self) -> threading.Thread:
        """Loads the query-path models (and warms the generator's prompt cache) in a background
        thread, so that a server's first question does not pay for loading them. A model that
        is missing is only logged here; asking then says what to install."""

        def load() -> None:
            try:
                self.models.text_embedder
                self.models.reranker
                self.models.generator
            except Exception as exc:  # reported again, to the asker, on the first question
                logger.warning("could not preload the models: %s", exc)

        thread = threading.Thread(target=load, name="mmkb-preload", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        with self._file_reader_lock:
            reader, self._file_reader = self._file_reader, None
        if reader is not None:
            reader.close()
        self.database.dispose()

    # --- users and permissions (app.kb.access) ------------------------------------------

    def ensure_user(self, username: str, is_admin: bool = False) -> User:
        return self.access.ensure_user(username, is_admin)

    def system_user(self) -> User:
        """The operator at the console: the CLI acts as this administrator."""
        return self.access.system_user()

    def grant(self, username: str, collection_name: str, role: Role = Role.reader) -> None:
        self.access.grant(username, collection_name, role)

    def user(self, username: str) -> User:
        return self.access.user(username)

    def login_required(self) -> bool:
        """Once any account has a password, or a directory signs users in, every UI and API
        caller must authenticate."""
        return self.access.login_required()

    def readable_collections(self, user: User, names: list[str] | None = None) -> list[Collection]:
        """The collections `user` may read, optionally narrowed to `names` (unknown or
        forbidden names raise, so a typo is never silently an empty search)."""
        return self.access.readable_collections(user, names)

    def administered_collections(self, user: User) -> list[Collection]:
        """What the admin console shows `user`: every collection for a global admin, else
        those where `user` has the admin role (possibly none)."""
        return self.access.administered_collections(user)

    # --- collections, members, documents (app.kb.collections) ----------------------------

    def map_directory_group(self, actor: User, collection_name: str, group: str, role: Role | None) -> None:
        """Members of directory `group` (its name or DN) get `role` in the collection at their next
        login; None removes the mapping. Once a collection maps any group, its directory users'
        memberships follow their groups (app.directory_accounts). Needs the collection's admin."""
        self.collections.map_directory_group(actor, collection_name, group, role)

    def directory_groups(self, actor: User, collection_name: str) -> list[tuple[str, Role]]:
        return self.collections.directory_groups(actor, collection_name)

    def manage_member(self, actor: User, collection_name: str, username: str, role: Role | None) -> None:
        """Add, change (role) or remove (None) a member; needs a global admin or the collection's admin."""
        self.collections.manage_member(actor, collection_name, username, role)

    def members(self, actor: User, collection_name: str) -> list[MemberInfo]:
        return self.collections.members(actor, collection_name)

    def get_or_create_collection(self, name: str, owner: User | None = None) -> Collection:
        return self.collections.get_or_create(name, owner)

    def collection_info(self, user: User) -> list[CollectionInfo]:
        return self.collections.info(user)

    def documents(self, user: User, collection_name: str) -> list[Document]:
        return self.collections.documents(user, collection_name)

    def find_document(self, user: User, collection_name: str, filename_or_id: str) -> Document:
        """One document of a collection by its id or its file name; ambiguity is an error, never a guess."""
        return self.collections.find_document(user, collection_name, filename_or_id)

    def delete_document(self, user: User, collection_name: str, document_id: int) -> RemovalResult:
        """Remove a document: its chunks, its vectors, and files no other document uses."""
        return self.collections.delete_document(user, collection_name, document_id)

    def create_collection(
        self,
        user: User,
        name: str,
        chunk_tokens: int | None = None,
        chunk_overlap_tokens: int | None = None,
        text_embedder: str | None = None,
    ) -> Collection:
        """text_embedder: a registry name (`kb models`); None = MMKB_TEXT_EMBEDDER, followed as it changes."""
        return self.collections.create(user, name, chunk_tokens, chunk_overlap_tokens, text_embedder)

    def configure_chunking(
        self, user: User, name: str, chunk_tokens: int | None = None, chunk_overlap_tokens: int | None = None
    ) -> Collection:
        """Set a collection's chunk size and overlap (tokens), used for the files ingested from
        now on; None leaves a value as it is. Documents already stored keep their chunks until
        they are ingested again."""
        return self.collections.configure_chunking(user, name, chunk_tokens, chunk_overlap_tokens)

    def rename_collection(self, actor: User, name: str, new_name: str) -> Collection:
        """Global admins and the collection's admins. Indexes and files are keyed by id, so
        only the row changes; readers see the new name at their next refresh."""
        return self.collections.rename(actor, name, new_name)

    def delete_collection(self, actor: User, name: str) -> RemovalResult:
        """Global admins and the collection's admins. One transaction removes the documents,
        chunks, memberships, jobs and the collection row; then the index files go, then the
        stored originals and figures no document of any other collection uses."""
        return self.collections.delete(actor, name)

    # --- ingest, re-index, jobs, folder sync (app.kb.jobs) ----------------------------------

    def jobs(self, actor: User, limit: int = 20) -> list[JobInfo]:
        """Newest ingest jobs of the collections `actor` may change (admins and editors)."""
        return self.work.jobs(actor, limit)

    def job(self, actor: User, job_id: int) -> JobInfo:
        return self.work.job(actor, job_id)

    def dashboard(self, actor: User, job_limit: int = 10) -> Dashboard:
        """Counts, index size on disk, last jobs and models for what `actor` administers."""
        return self.work.dashboard(actor, job_limit)

    def queue_lengths(self) -> QueueLengths:
        """Server-wide totals for /metrics (no names, so no permission involved)."""
        return self.work.queue_lengths()

    def ingest(
        self,
        user: User,
        collection_name: str,
        paths: list[Path] | None = None,
        uploads: list[Upload] | None = None,
        progress: ProgressCallback | None = None,
        use_ray: bool = False,
    ) -> IngestReport:
        """Ingest files (paths, folders expanded) and uploads into a collection, each failing
        alone (app.ingestion). use_ray, or RAY_ADDRESS set: parse, OCR and embedding run on
        Ray Data actors, with the same checks, dedup, storing and errors in this process."""
        return self.work.ingest(user, collection_name, paths, uploads, progress, use_ray)

    def reindex(
        self,
        user: User,
        collection_name: str | None = None,
        progress: ProgressCallback | None = None,
        use_ray: bool = False,
        text_embedder: str | None = None,
        force: bool = False,
    ) -> ReindexReport:
        """Rebuild the chunks and vectors of every ready document (of one collection, or of all)
        from the stored originals, e.g. after a model or chunk-size change. Resumable; the old
        chunks serve queries until the swap at the end (app/reindex.py). Global admins may
        re-index everything, a collection's admins their collection. Ray Data runs the parse
        and embed stages when use_ray is set or RAY_ADDRESS names a cluster.
        text_embedder: move the collection(s) to this embedder (a registry name); the swap's
        transaction changes `collections.text_embedder` with the chunks, and if any document
        fails to build, nothing changes (its old vectors could not join the new index).
        A collection with its own evaluation set keeps its old index when the new one does worse
        on it (app.reindex_guard; report.guard says so), unless force. A collection being
        re-indexed already (by this process or another) is refused: AlreadyRunning."""
        return self.work.reindex(user, collection_name, progress, use_ray, text_embedder, force)

    def change_embedder(
        self, user: User, collection_name: str, text_embedder: str, new_name: str | None = None
    ) -> StartedReindex:
        """Move a collection to another text embedder in the background (PATCH
        /api/collections/{name}): the re-index of `reindex(user, collection_name,
        text_embedder=...)`, run in a thread of its own; returns as soon as its job is recorded
        (GET /api/jobs/{id} follows it to done, failed or held, as `reindex` would end). Refused
        at once, as `reindex` is: an unknown embedder (ValueError), a caller who is not an admin
        of the collection, and a collection being re-indexed already (AlreadyRunning).
        new_name: renamed first, under the same lock, so a refused start renames nothing."""
        return self.work.change_embedder(user, collection_name, text_embedder, new_name)

    def register_sync_folder(self, user: User, collection_name: str, folder: str | Path) -> folder_sync.SyncFolderInfo:
        """The console's registration of the server folder a collection mirrors (one per
        collection; another one replaces it). Only folders under MMKB_SYNC_ROOTS."""
        return self.work.register_sync_folder(user, collection_name, folder)

    def sync_folder_info(self, user: User, collection_name: str) -> folder_sync.SyncFolderInfo | None:
        """The collection's folder and its last sync (when, and what it did); None: no folder."""
        return self.work.sync_folder_info(user, collection_name)

    def sync_folder(
        self,
        user: User,
        collection_name: str,
        folder: str | Path | None = None,
        delete: bool = False,
        progress: folder_sync.SyncProgress | None = None,
        at_shell: bool = False,
    ) -> folder_sync.SyncSummary:
        """Make the collection mirror its folder now: new files ingested, changed ones replaced,
        unchanged ones skipped by hash, the documents of removed ones deleted only with `delete`.
        folder: register this one first; None: the registered one. at_shell: `kb sync`, whose
        operator can read the folder anyway, so MMKB_SYNC_ROOTS (the web console's bound) does
        not apply and a global admin's new collection is created."""
        return self.work.sync_folder(self, user, collection_name, folder, delete, progress, at_shell)

    # --- a collection's own evaluation set (app.kb.evaluation_sets) -------------------------

    def eval_questions(self, user: User, collection_name: str) -> list[EvalQuestionInfo]:
        return self.evaluation_sets.questions(user, collection_name)

    def add_eval_questions(
        self, user: User, collection_name: str, questions: list[NewEvalQuestion], skip_existing: bool = False
    ) -> list[EvalQuestionInfo]:
        """All or none; each must name a ready file of the collection (and a page it has).
        skip_existing: leave out questions already in the set instead of refusing them."""
        return self.evaluation_sets.add_questions(user, collection_name, questions, skip_existing)

    def remove_eval_question(self, user: User, collection_name: str, question_id: int) -> None:
        self.evaluation_sets.remove_question(user, collection_name, question_id)

    def run_eval(self, user: User, collection_name: str) -> tuple[EvalRunInfo, EvalScores]:
        """Run the set against the live index now and record it; the run and its scores (with
        the questions not found in the first 5)."""
        return self.evaluation_sets.run(user, collection_name)

    def eval_runs(self, user: User, collection_name: str, limit: int = 50) -> list[EvalRunInfo]:
        """The collection's evaluation runs, newest first: on demand, and each re-index's live
        and candidate scores with what it did."""
        return self.evaluation_sets.runs(user, collection_name, limit)

    # --- asking (app.kb.asking) --------------------------------------------------------------

    def ask(
        self,
        user: User,
        question: str,
        collection_names: list[str] | None = None,
        conversation_id: int | None = None,
        hyde: bool | None = None,
        history: list[Turn] | None = None,
        mmr_lambda: float | None = None,
    ) -> Answer:
        """See ask_stream; returns the final, checked answer."""
        return self.asking.ask(user, question, collection_names, conversation_id, hyde, history, mmr_lambda)

    def ask_stream(
        self,
        user: User,
        question: str,
        collection_names: list[str] | None = None,
        conversation_id: int | None = None,
        hyde: bool | None = None,
        history: list[Turn] | None = None,
        mmr_lambda: float | None = None,
    ) -> Generator[AnswerEvent, None, None]:
        """Partial answers while the model writes, then the checked answer.
        conversation_id: the exchange is stored there (the final event carries the stored
        message id) and, unless `history` is given, earlier turns make a follow-up standalone.
        hyde: None follows MMKB_HYDE; True/False overrides it for this question.
        mmr_lambda: None follows MMKB_MMR_LAMBDA; 0..1 diversifies this question's sources (1 = off)."""
        return self.asking.ask_stream(user, question, collection_names, conversation_id, hyde, history, mmr_lambda)

    def search(
        self,
        user: User,
        question: str,
        collection_names: list[str] | None = None,
        hyde: bool | None = None,
        limit: int | None = None,
        mmr_lambda: float | None = None,
    ) -> list[Source]:
        """Retrieval only (no generation): up to `limit` (default MMKB_CONTEXT_CHUNKS) text
        sources, best first, from the collections the asker may read."""
        return self.asking.search(user, question, collection_names, hyde, limit, mmr_lambda)

    # --- opening a cited source (app.kb.sources) ------------------------------------------

    def source_view(self, user: User, chunk_id: int, highlight: str | None = None) -> SourceView:
        """The cited page with the passage highlighted, the figure, or the passage in its
        text; only for a chunk of a collection `user` may read.
        highlight: highlight only this text (an answer's quote) instead of the whole passage;
        ignored unless it is part of the chunk's text."""
        return self.sources.view(user, chunk_id, highlight)

    def thumbnail(self, user: User, chunk_id: int) -> Path:
        """The thumbnail file (JPEG) of figure chunk `chunk_id`, made now if the figure was
        stored before thumbnails existed; only for a collection `user` may read."""
        return self.sources.thumbnail(user, chunk_id)

    def _answerer(self) -> Answerer:
        return Answerer(self.settings, self.database, self.indexes, self.models, self.keyword_indexes, self.hyde, self.admission)
