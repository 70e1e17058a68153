"""The service layer: the one entry point the CLI, the UI and the API use.

It owns storage (database, indexes, stored files) and composes ingest -> retrieval ->
rerank -> generation. Every read goes through `readable_collections`, so the permission
rule lives in one place.
"""

from __future__ import annotations

import functools
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select

from app import dashboard, folder_sync, leftovers, registry
from app.accounts import Accounts
from app.activity import InFlight, IngestTotals, run_at_low_priority
from app.admission import Admission
from app.answering import Answerer, AnswerEvent
from app.archives import ArchiveLimits, expand_archives
from app.chunk_rows import read_options
from app.collection_eval import EvalSets
from app.conversations import Conversations
from app.db import Database
from app.directory import Directory, DirectoryConfig
from app.generation.base import generate
from app.generation.followup import Turn
from app.indexes import TEXT_SPACE, IndexManager, KeywordIndexManager
from app.ingestion import Ingestor, ProgressCallback, Upload, expand_paths
from app.model_set import ModelSet
from app.models import Chunk, ChunkKind, Collection, DirectoryGroup, Document, DocumentStatus, IngestJob, Membership, Role, User
from app.page_view import SourceView
from app.page_view import view as page_view
from app.removal import RemovalResult, finish_removal, remove_in_session
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
from ingest.thumbnails import ensure_thumbnail
from retrieval.hyde import HydeWriter

logger = logging.getLogger(__name__)

SYSTEM_USER = "local-admin"
# Below this a chunk is a sentence fragment: too little for an embedding to mean anything.
MIN_CHUNK_TOKENS = 16


class AccessDenied(PermissionError):
    # Set by the UI on a refusal it words itself (ui.i18n.localized reads them back).
    i18n_key: str
    i18n_params: dict[str, Any]


class NotFound(LookupError):
    pass


class Hidden(AccessDenied, NotFound):
    """Refused to someone who may not know the thing exists (not a member of its collection):
    worded as the NotFound of a missing one, and answered 404 like it, so ids and names
    reveal nothing. Refusing a member who lacks the role stays a plain AccessDenied (403)."""


def _counted_as_ask(method):
    """Counts a streaming ask as in flight from its first step until it ends or is abandoned."""

    @functools.wraps(method)
    def counted(self, *args, **kwargs):
        with self.asks_in_flight.track():
            yield from method(self, *args, **kwargs)

    return counted


class EmptyCollection(ValueError):
    """Every collection asked has no ready document: there is nothing to search yet."""


class KnowledgeBase:
    def __init__(self, settings: Settings, models: ModelSet | None = None) -> None:
        settings.ensure_dirs()
        self.settings = settings
        self.database = Database(settings.resolved_database_url)
        self.models = models or ModelSet(settings)
        directory = DirectoryConfig.from_settings(settings)  # bad LDAP settings fail here, at start
        self.accounts = Accounts(self.database, directory=Directory(directory) if directory else None)
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
            name = session.scalar(select(Collection.text_embedder).where(Collection.id == collection_id))
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

    # --- users and permissions -------------------------------------------------------

    def ensure_user(self, username: str, is_admin: bool = False) -> User:
        with self.database.session() as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                user = User(username=username, is_admin=is_admin)
                session.add(user)
                session.flush()
            return user

    def system_user(self) -> User:
        """The operator at the console: the CLI acts as this administrator."""
        return self.ensure_user(SYSTEM_USER, is_admin=True)

    def grant(self, username: str, collection_name: str, role: Role = Role.reader) -> None:
        user = self.ensure_user(username)
        with self.database.session() as session:
            collection = self._collection_by_name(session, collection_name)
            membership = session.scalar(
                select(Membership).where(Membership.user_id == user.id, Membership.collection_id == collection.id)
            )
            if membership is None:
                session.add(Membership(user_id=user.id, collection_id=collection.id, role=role))
            else:
                membership.role = role

    def user(self, username: str) -> User:
        with self.database.session() as session:
            user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound(f"no user {username!r}")
        return user

    def login_required(self) -> bool:
        """Once any account has a password, or a directory signs users in, every UI and API
        caller must authenticate."""
        if self.accounts.directory is not None:
            return True
        with self.database.session() as session:
            passwords = session.scalar(select(func.count()).select_from(User).where(User.password_hash.is_not(None)))
            assert passwords is not None  # COUNT always gives a row
            return passwords > 0

    def map_directory_group(self, actor: User, collection_name: str, group: str, role: Role | None) -> None:
        """Members of directory `group` (its name or DN) get `role` in the collection at their next
        login; None removes the mapping. Once a collection maps any group, its directory users'
        memberships follow their groups (app.directory_accounts). Needs the collection's admin."""
        collection = self._administrable(actor, collection_name, f"{actor.username} may not map groups of {collection_name}")
        group = group.strip()
        if not group:
            raise ValueError("a directory group needs a name or DN")
        with self.database.session() as session:
            mapping = session.scalar(
                select(DirectoryGroup).where(
                    DirectoryGroup.collection_id == collection.id, func.lower(DirectoryGroup.group_name) == group.lower()
                )
            )
            if role is None:
                if mapping is None:
                    raise NotFound(f"collection {collection_name} maps no directory group {group!r}")
                session.delete(mapping)
            elif mapping is None:
                session.add(DirectoryGroup(collection_id=collection.id, group_name=group, role=role))
            else:
                mapping.role = role

    def directory_groups(self, actor: User, collection_name: str) -> list[tuple[str, Role]]:
        collection = self._administrable(actor, collection_name)
        with self.database.session() as session:
            rows = session.execute(
                select(DirectoryGroup.group_name, DirectoryGroup.role)
                .where(DirectoryGroup.collection_id == collection.id)
                .order_by(DirectoryGroup.group_name)
            )
            return [(name, role) for name, role in rows]

    def manage_member(self, actor: User, collection_name: str, username: str, role: Role | None) -> None:
        """Add, change (role) or remove (None) a member; needs a global admin or the collection's admin."""
        collection = self._administrable(actor, collection_name, f"{actor.username} may not manage members of {collection_name}")
        member = self.user(username)
        if role is None:
            with self.database.session() as session:
                membership = session.scalar(
                    select(Membership).where(Membership.user_id == member.id, Membership.collection_id == collection.id)
                )
                if membership is not None:
                    session.delete(membership)
            return
        self.grant(username, collection_name, role)

    def _role(self, user: User, collection: Collection) -> Role | None:
        with self.database.session() as session:
            return session.scalar(
                select(Membership.role).where(Membership.user_id == user.id, Membership.collection_id == collection.id)
            )

    def readable_collections(self, user: User, names: list[str] | None = None) -> list[Collection]:
        """The collections `user` may read, optionally narrowed to `names` (unknown or
        forbidden names raise, so a typo is never silently an empty search)."""
        with self.database.session() as session:
            query = select(Collection).order_by(Collection.name)
            if not user.is_admin:
                query = query.join(Membership).where(Membership.user_id == user.id)
            allowed = list(session.scalars(query))
        if names is None:
            return allowed
        by_name = {c.name: c for c in allowed}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise Hidden(f"no readable collection named {', '.join(missing)}")
        return [by_name[n] for n in names]

    def _administrable(self, user: User, collection_name: str, refusal: str | None = None) -> Collection:
        """The collection, if `user` administers it (a global admin, or its collection admin)."""
        with self.database.session() as session:
            collection = self._collection_by_name(session, collection_name)
        if not user.is_admin and self._visible_role(user, collection) != Role.admin:
            raise AccessDenied(refusal or f"{user.username} is not an administrator of collection {collection_name}")
        return collection

    def _visible_role(self, user: User, collection: Collection) -> Role:
        """`user`'s role in `collection`; to a non-member the collection does not exist."""
        role = self._role(user, collection)
        if role is None:
            raise Hidden(f"no collection named {collection.name!r}")
        return role

    def administered_collections(self, user: User) -> list[Collection]:
        """What the admin console shows `user`: every collection for a global admin, else
        those where `user` has the admin role (possibly none)."""
        with self.database.session() as session:
            query = select(Collection).order_by(Collection.name)
            if not user.is_admin:
                query = query.join(Membership).where(Membership.user_id == user.id, Membership.role == Role.admin)
            return list(session.scalars(query))

    def _changeable_collection_ids(self, user: User) -> list[int] | None:
        """Collections whose jobs `user` may see (admin or editor); None: all (global admin)."""
        if user.is_admin:
            return None
        with self.database.session() as session:
            return list(
                session.scalars(
                    select(Membership.collection_id).where(
                        Membership.user_id == user.id, Membership.role.in_([Role.admin, Role.editor])
                    )
                )
            )

    def members(self, actor: User, collection_name: str) -> list[MemberInfo]:
        collection = self._administrable(actor, collection_name, f"{actor.username} may not see the members of {collection_name}")
        with self.database.session() as session:
            rows = session.execute(
                select(User.username, Membership.role)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.collection_id == collection.id)
                .order_by(User.username)
            ).all()
        return [MemberInfo(username=username, role=role.value) for username, role in rows]

    def _writable(self, user: User, collection: Collection) -> None:
        if user.is_admin:
            return
        if self._visible_role(user, collection) not in (Role.admin, Role.editor):
            raise AccessDenied(f"{user.username} may not change collection {collection.name}")

    # --- collections -------------------------------------------------------------------

    @staticmethod
    def _collection_by_name(session, name: str) -> Collection:
        collection = session.scalar(select(Collection).where(Collection.name == name))
        if collection is None:
            raise NotFound(f"no collection named {name!r}")
        return collection

    def get_or_create_collection(self, name: str, owner: User | None = None) -> Collection:
        name = name.strip()
        if not name:
            raise ValueError("a collection needs a name")
        with self.database.session() as session:
            collection = session.scalar(select(Collection).where(Collection.name == name))
            if collection is None:
                collection = Collection(name=name)
                session.add(collection)
                session.flush()
                if owner is not None and not owner.is_admin:
                    session.add(Membership(user_id=owner.id, collection_id=collection.id, role=Role.admin))
            return collection

    def collection_info(self, user: User) -> list[CollectionInfo]:
        infos = []
        with self.database.session() as session:
            for collection in self.readable_collections(user):
                counts = dict(
                    session.execute(
                        select(Document.status, func.count())
                        .where(Document.collection_id == collection.id)
                        .group_by(Document.status)
                    ).all()
                )
                chunks = session.scalar(select(func.count()).select_from(Chunk).where(Chunk.collection_id == collection.id))
                infos.append(
                    CollectionInfo(
                        id=collection.id,
                        name=collection.name,
                        documents=sum(counts.values()),
                        ready_documents=counts.get(DocumentStatus.ready, 0),
                        failed_documents=counts.get(DocumentStatus.failed, 0),
                        chunks=chunks or 0,
                        chunk_tokens=collection.chunk_tokens or self.settings.chunk_tokens,
                        chunk_overlap_tokens=(
                            collection.chunk_overlap_tokens
                            if collection.chunk_overlap_tokens is not None
                            else self.settings.chunk_overlap_tokens
                        ),
                        text_embedder=self.models.embedder_name(collection.text_embedder),
                    )
                )
        return infos

    def documents(self, user: User, collection_name: str) -> list[Document]:
        (collection,) = self.readable_collections(user, [collection_name])
        with self.database.session() as session:
            return list(
                session.scalars(select(Document).where(Document.collection_id == collection.id).order_by(Document.filename))
            )

    def find_document(self, user: User, collection_name: str, filename_or_id: str) -> Document:
        """One document of a collection by its id or its file name; ambiguity is an error, never a guess."""
        documents = self.documents(user, collection_name)
        if filename_or_id.isdigit():
            by_id = [d for d in documents if d.id == int(filename_or_id)]
            if by_id:
                return by_id[0]
        matches = [d for d in documents if d.filename == filename_or_id]
        if not matches:
            raise NotFound(f"no document {filename_or_id!r} in collection {collection_name!r}")
        if len(matches) > 1:
            ids = ", ".join(str(d.id) for d in matches)
            raise ValueError(f"{len(matches)} documents are named {filename_or_id!r} in {collection_name!r}; give an id ({ids})")
        return matches[0]

    def delete_document(self, user: User, collection_name: str, document_id: int) -> RemovalResult:
        """Remove a document: its chunks, its vectors, and files no other document uses."""
        with self.database.session() as session:
            collection = self._collection_by_name(session, collection_name)
        self._writable(user, collection)
        with self.database.session() as session:
            document = session.get(Document, document_id)
            if document is None or document.collection_id != collection.id:
                raise NotFound(f"no document with id {document_id} in collection {collection_name!r}")
            pending = remove_in_session(session, [document])
        return finish_removal(self.database.session, self.indexes, pending)

    # --- ingest and ask ---------------------------------------------------------------

    def create_collection(
        self,
        user: User,
        name: str,
        chunk_tokens: int | None = None,
        chunk_overlap_tokens: int | None = None,
        text_embedder: str | None = None,
    ) -> Collection:
        """text_embedder: a registry name (`kb models`); None = MMKB_TEXT_EMBEDDER, followed as it changes."""
        if not user.is_admin:
            raise AccessDenied("only administrators create collections")
        # Checked before anything is written: a refused setting must not leave a collection behind.
        self._check_chunking(
            chunk_tokens or self.settings.chunk_tokens,
            chunk_overlap_tokens if chunk_overlap_tokens is not None else self.settings.chunk_overlap_tokens,
        )
        if text_embedder is not None:
            text_embedder = registry.check_text_embedder(text_embedder, self.settings)
            with self.database.session() as session:
                existing = session.scalar(select(Collection).where(Collection.name == name.strip()))
            if existing is not None and self.models.embedder_name(existing.text_embedder) != text_embedder:
                raise ValueError(
                    f"collection {existing.name!r} exists already, with the text embedder "
                    f"{self.models.embedder_name(existing.text_embedder)}; change it with "
                    f"`kb reindex --collection {existing.name} --embedder {text_embedder}`"
                )
        collection = self.get_or_create_collection(name)
        if text_embedder is not None and collection.text_embedder != text_embedder:
            with self.database.session() as session:
                row = session.get(Collection, collection.id)
                assert row is not None  # get_or_create_collection just returned it
                collection = row
                collection.text_embedder = text_embedder
        if chunk_tokens is not None or chunk_overlap_tokens is not None:
            collection = self.configure_chunking(user, name, chunk_tokens, chunk_overlap_tokens)
        return collection

    @staticmethod
    def _check_chunking(tokens: int, overlap: int) -> None:
        if tokens < MIN_CHUNK_TOKENS:
            raise ValueError(f"chunk size must be at least {MIN_CHUNK_TOKENS} tokens, not {tokens}")
        if not 0 <= overlap < tokens:
            raise ValueError(f"chunk overlap must be at least 0 and less than the chunk size ({tokens}), not {overlap}")

    def configure_chunking(
        self, user: User, name: str, chunk_tokens: int | None = None, chunk_overlap_tokens: int | None = None
    ) -> Collection:
        """Set a collection's chunk size and overlap (tokens), used for the files ingested from
        now on; None leaves a value as it is. Documents already stored keep their chunks until
        they are ingested again."""
        with self.database.session() as session:
            collection = self._collection_by_name(session, name)
        if not user.is_admin and self._visible_role(user, collection) != Role.admin:
            raise AccessDenied(f"{user.username} may not configure collection {collection.name}")
        with self.database.session() as session:
            collection = self._collection_by_name(session, name)
            tokens = chunk_tokens if chunk_tokens is not None else (collection.chunk_tokens or self.settings.chunk_tokens)
            overlap = (
                chunk_overlap_tokens
                if chunk_overlap_tokens is not None
                else (
                    collection.chunk_overlap_tokens
                    if collection.chunk_overlap_tokens is not None
                    else self.settings.chunk_overlap_tokens
                )
            )
            self._check_chunking(tokens, overlap)
            if chunk_tokens is not None:
                collection.chunk_tokens = chunk_tokens
            if chunk_overlap_tokens is not None:
                collection.chunk_overlap_tokens = chunk_overlap_tokens
            return collection

    def rename_collection(self, actor: User, name: str, new_name: str) -> Collection:
        """Global admins and the collection's admins. Indexes and files are keyed by id, so
        only the row changes; readers see the new name at their next refresh."""
        new_name = (new_name or "").strip()
        if not new_name:
            raise ValueError("a collection needs a name")
        if len(new_name) > 128:
            raise ValueError("collection names have at most 128 characters")
        collection = self._administrable(actor, name, f"{actor.username} may not rename collection {name}")
        with self.database.session() as session:
            clash = session.scalar(select(Collection).where(Collection.name == new_name, Collection.id != collection.id))
            if clash is not None:
                raise ValueError(f"a collection named {new_name!r} exists already")
            row = session.get(Collection, collection.id)
            assert row is not None  # _administrable just found it
            row.name = new_name
            return row

    def delete_collection(self, actor: User, name: str) -> RemovalResult:
        """Global admins and the collection's admins. One transaction removes the documents,
        chunks, memberships, jobs and the collection row; then the index files go, then the
        stored originals and figures no document of any other collection uses."""
        collection = self._administrable(actor, name, f"{actor.username} may not delete collection {name}")
        with self.database.session() as session:
            documents = list(session.scalars(select(Document).where(Document.collection_id == collection.id)))
            pending = remove_in_session(session, documents)
            pending.collection_id = collection.id
            session.execute(delete(Membership).where(Membership.collection_id == collection.id))
            session.execute(delete(IngestJob).where(IngestJob.collection_id == collection.id))
            session.execute(delete(Collection).where(Collection.id == collection.id))
        removed = finish_removal(self.database.session, self.indexes, pending)
        self.indexes.drop_collection(collection.id)
        self.keyword_indexes.drop_collection(collection.id)
        # The folder is this collection's alone (named by its id, which SQLite may hand out again).
        shutil.rmtree(self.indexes.path(collection.id, TEXT_SPACE).parent, ignore_errors=True)
        return removed

    # --- jobs, dashboard, queue ---------------------------------------------------------

    def jobs(self, actor: User, limit: int = 20) -> list[JobInfo]:
        """Newest ingest jobs of the collections `actor` may change (admins and editors)."""
        ids = self._changeable_collection_ids(actor)
        if ids is not None and not ids:
            raise AccessDenied(f"{actor.username} may not change any collection, so has no jobs to see")
        return dashboard.job_infos(self.database, ids, limit=limit)

    def job(self, actor: User, job_id: int) -> JobInfo:
        exists, collection_id = dashboard.job_collection_id(self.database, job_id)
        if not exists:
            raise NotFound(f"no job with id {job_id}")
        ids = self._changeable_collection_ids(actor)
        if ids is not None and collection_id not in ids:
            if collection_id not in {c.id for c in self.readable_collections(actor)}:
                raise Hidden(f"no job with id {job_id}")
            raise AccessDenied(f"{actor.username} may not see job {job_id}")
        return dashboard.job_infos(self.database, None, limit=1, job_id=job_id)[0]

    def dashboard(self, actor: User, job_limit: int = 10) -> Dashboard:
        """Counts, index size on disk, last jobs and models for what `actor` administers."""
        collections = self.administered_collections(actor)
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

    def ingest(
        self,
        user: User,
        collection_name: str,
        paths: list[Path] | None = None,
        uploads: list[Upload] | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        if user.is_admin:
            collection = self.get_or_create_collection(collection_name)
        else:
            (collection,) = self.readable_collections(user, [collection_name])
        self._writable(user, collection)
        batch = list(uploads or []) + expand_paths(paths or [])
        limits = ArchiveLimits(self.settings.zip_max_files, self.settings.zip_max_total_bytes, self.settings.max_upload_bytes)
        # Zip archives are expanded after the permission check, so only writers can make us inflate one.
        started = time.perf_counter()
        try:
            with leftovers.staging(self.settings.data_dir, "unzip") as staging:
                batch, refused_archives = expand_archives(batch, staging, limits)
                ingestor = Ingestor(self.settings, self.database, self.indexes, self.models, self.file_reader)
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
        """Rebuild the chunks and vectors of every ready document (of one collection, or of all)
        from the stored originals, e.g. after a model or chunk-size change. Resumable; the old
        chunks serve queries until the swap at the end (app/reindex.py). Global admins may
        re-index everything, a collection's admins their collection. Ray Data runs the parse
        and embed stages when use_ray is set or RAY_ADDRESS names a cluster.
        text_embedder: move the collection(s) to this embedder (a registry name); the swap's
        transaction changes `collections.text_embedder` with the chunks, and if any document
        fails to build, nothing changes (its old vectors could not join the new index).
        A collection with its own evaluation set keeps its old index when the new one does worse
        on it (app.reindex_guard; report.guard says so), unless force."""
        from app.reindex import Reindexer

        if text_embedder is not None:
            text_embedder = registry.check_text_embedder(text_embedder, self.settings)

        with self.database.session() as session:
            if collection_name is None:
                if not user.is_admin:
                    raise AccessDenied("only administrators re-index every collection")
                collections = list(session.scalars(select(Collection).order_by(Collection.name)))
            else:
                collections = [self._collection_by_name(session, collection_name)]
        if collection_name is not None and not user.is_admin and self._visible_role(user, collections[0]) != Role.admin:
            raise AccessDenied(f"{user.username} may not re-index collection {collection_name}")
        use_ray = use_ray or bool(self.settings.ray_address)
        return Reindexer(self.settings, self.database, self.indexes, self.models, self.file_reader).run(
            collections, progress, use_ray, text_embedder, force=force
        )

    # --- a collection's own evaluation set (app.collection_eval) ---------------------------

    def _eval_collection(self, user: User, collection_name: str, change: bool = False) -> Collection:
        """Its readers see a collection's questions and scores; its editors and admins change
        the set and run it. To anyone else the collection does not exist."""
        (collection,) = self.readable_collections(user, [collection_name])
        if change:
            self._writable(user, collection)
        return collection

    def eval_questions(self, user: User, collection_name: str) -> list[EvalQuestionInfo]:
        return self.eval_sets.questions(self._eval_collection(user, collection_name).id)

    def add_eval_questions(
        self, user: User, collection_name: str, questions: list[NewEvalQuestion], skip_existing: bool = False
    ) -> list[EvalQuestionInfo]:
        """All or none; each must name a ready file of the collection (and a page it has).
        skip_existing: leave out questions already in the set instead of refusing them."""
        collection = self._eval_collection(user, collection_name, change=True)
        return self.eval_sets.add(collection, questions, user.username, skip_existing)

    def remove_eval_question(self, user: User, collection_name: str, question_id: int) -> None:
        collection = self._eval_collection(user, collection_name, change=True)
        if not self.eval_sets.remove(collection.id, question_id):
            raise NotFound(f"no evaluation question {question_id} in collection {collection_name!r}")

    def run_eval(self, user: User, collection_name: str) -> tuple[EvalRunInfo, EvalScores]:
        """Run the set against the live index now and record it; the run and its scores (with
        the questions not found in the first 5)."""
        from app.collection_eval import LIVE, evaluate

        collection = self._eval_collection(user, collection_name, change=True)
        questions = self.eval_sets.questions(collection.id)
        if not questions:
            raise ValueError(f"collection {collection_name} has no evaluation questions yet; add some first")
        scores = evaluate(self._answerer(), collection, questions)
        return self.eval_sets.record(collection, LIVE, scores), scores

    def eval_runs(self, user: User, collection_name: str, limit: int = 50) -> list[EvalRunInfo]:
        """The collection's evaluation runs, newest first: on demand, and each re-index's live
        and candidate scores with what it did."""
        return self.eval_sets.runs(self._eval_collection(user, collection_name), limit)

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
        events = list(self.ask_stream(user, question, collection_names, conversation_id, hyde, history, mmr_lambda))
        return events[-1].answer

    @_counted_as_ask
    def ask_stream(
        self,
        user: User,
        question: str,
        collection_names: list[str] | None = None,
        conversation_id: int | None = None,
        hyde: bool | None = None,
        history: list[Turn] | None = None,
        mmr_lambda: float | None = None,
    ) -> Iterator[AnswerEvent]:
        """Partial answers while the model writes, then the checked answer.
        conversation_id: the exchange is stored there (the final event carries the stored
        message id) and, unless `history` is given, earlier turns make a follow-up standalone.
        hyde: None follows MMKB_HYDE; True/False overrides it for this question.
        mmr_lambda: None follows MMKB_MMR_LAMBDA; 0..1 diversifies this question's sources (1 = off)."""
        scope = self._ask_scope(user, question, collection_names)
        if conversation_id is not None:
            stored = self.conversations.history(user, conversation_id)  # also the ownership check, before any work
            history = stored if history is None else history
        answerer = self._answerer()
        with self.admission.admit(user.username):  # Busy: turned away before any work
            for event in answerer.stream(question, scope, answerer.default_options(hyde, mmr_lambda), history):
                if event.done and conversation_id is not None:
                    message_id = self.conversations.record(user, conversation_id, event.answer)
                    event = AnswerEvent(done=True, answer=event.answer.model_copy(update={"message_id": message_id}))
                yield event

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
        answerer = self._answerer()
        limit = limit or self.settings.context_chunks
        scope = self._ask_scope(user, question, collection_names)
        ranking = answerer.rank(
            question, scope, answerer.default_options(hyde, mmr_lambda), depth=max(limit, self.settings.rerank_top_n)
        )
        return ranking.sources(limit)

    def _ask_scope(self, user: User, question: str, collection_names: list[str] | None) -> list[Collection]:
        if not question or not question.strip():
            raise ValueError("the question is empty")
        collections = self.readable_collections(user, collection_names)
        if not collections:
            raise AccessDenied("you cannot read any collection yet; ask an administrator for access")
        with self.database.session() as session:
            ready = session.scalar(
                select(func.count())
                .select_from(Document)
                .where(Document.collection_id.in_([c.id for c in collections]), Document.status == DocumentStatus.ready)
            )
        if not ready:
            names = ", ".join(c.name for c in collections)
            raise EmptyCollection(
                f"{'the collection' if len(collections) == 1 else 'the collections'} {names} "
                f"{'has' if len(collections) == 1 else 'have'} no ready documents yet; "
                "ask an editor to upload some, or wait until their processing has finished"
            )
        return collections

    # --- folder sync (app.folder_sync) ----------------------------------------------------

    def _sync_collection(self, user: User, collection_name: str, create: bool = False) -> Collection:
        """A collection's admins and editors register and run its folder sync (global admins
        any); to a non-member it does not exist. create: a global admin's new name is made."""
        if create and user.is_admin:
            collection = self.get_or_create_collection(collection_name)
        else:
            (collection,) = self.readable_collections(user, [collection_name])
        self._writable(user, collection)
        return collection

    def _console_folder(self, folder: str | Path) -> Path:
        """A folder the console may use: under MMKB_SYNC_ROOTS, links resolved."""
        try:
            return folder_sync.allowed_folder(folder, list(self.settings.sync_roots))
        except folder_sync.OutsideSyncRoots as exc:
            raise AccessDenied(str(exc)) from None

    def register_sync_folder(self, user: User, collection_name: str, folder: str | Path) -> folder_sync.SyncFolderInfo:
        """The console's registration of the server folder a collection mirrors (one per
        collection; another one replaces it). Only folders under MMKB_SYNC_ROOTS."""
        collection = self._sync_collection(user, collection_name)
        folder_sync.register(self.database, collection, self._console_folder(folder), user.username)
        info = folder_sync.folder_info(self.database, collection)
        assert info is not None  # just registered
        return info

    def sync_folder_info(self, user: User, collection_name: str) -> folder_sync.SyncFolderInfo | None:
        """The collection's folder and its last sync (when, and what it did); None: no folder."""
        return folder_sync.folder_info(self.database, self._sync_collection(user, collection_name))

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
        collection = self._sync_collection(user, collection_name, create=at_shell)
        if folder is not None:
            path = folder_sync.existing_folder(folder) if at_shell else self._console_folder(folder)
            folder_sync.register(self.database, collection, path, user.username)
        else:
            registered = folder_sync.folder_info(self.database, collection)
            if registered is None:
                raise NotFound(f"collection {collection.name} has no folder to sync; register one first")
            if not at_shell:
                self._console_folder(registered.path)  # the roots may have changed since
        return folder_sync.run_sync(self, user, collection, delete, progress)

    # --- opening a cited source ------------------------------------------------------

    def source_view(self, user: User, chunk_id: int, highlight: str | None = None) -> SourceView:
        """The cited page with the passage highlighted, the figure, or the passage in its
        text; only for a chunk of a collection `user` may read.
        highlight: highlight only this text (an answer's quote) instead of the whole passage;
        ignored unless it is part of the chunk's text."""
        chunk, document = self._readable_chunk(user, chunk_id)
        return page_view(document, chunk, highlight)

    def thumbnail(self, user: User, chunk_id: int) -> Path:
        """The thumbnail file (JPEG) of figure chunk `chunk_id`, made now if the figure was
        stored before thumbnails existed; only for a collection `user` may read."""
        chunk, _document = self._readable_chunk(user, chunk_id)
        if chunk.kind != ChunkKind.image or not chunk.image_path:
            raise NotFound(f"source {chunk_id} is a passage of text, not a figure: it has no thumbnail")
        try:
            return ensure_thumbnail(Path(chunk.image_path))
        except FileNotFoundError as exc:
            raise NotFound(f"source {chunk_id}: {exc}") from None

    def _readable_chunk(self, user: User, chunk_id: int) -> tuple[Chunk, Document]:
        with self.database.session() as session:
            row = session.execute(
                select(Chunk, Document).join(Document, Document.id == Chunk.document_id).where(Chunk.id == chunk_id)
            ).first()
        if row is None or row[1].status != DocumentStatus.ready:
            raise NotFound(f"no source {chunk_id}")
        chunk, document = row
        if chunk.collection_id not in {c.id for c in self.readable_collections(user)}:
            raise Hidden(f"no source {chunk_id}")
        return chunk, document

    def _answerer(self) -> Answerer:
        return Answerer(self.settings, self.database, self.indexes, self.models, self.keyword_indexes, self.hyde, self.admission)
