"""The service layer: the one entry point the CLI, the UI and the API use.

It owns storage (database, indexes, stored files) and composes ingest -> retrieval ->
rerank -> generation. Every read goes through `readable_collections`, so the permission
rule lives in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import func, select

from app.accounts import Accounts
from app.answering import Answerer, AnswerEvent
from app.followup import Turn
from app.conversations import Conversations
from app.llm import generate
from app.db import Database
from app.indexes import IndexManager, KeywordIndexManager
from app.ingestion import Ingestor, ProgressCallback, Upload, expand_paths
from app.model_set import ModelSet
from app.models import Chunk, Collection, Document, DocumentStatus, Membership, Role, User
from app.removal import RemovalResult, finish_removal, remove_in_session
from app.schemas import Answer, CollectionInfo, IngestReport, Source
from app.settings import Settings
from retrieval.hyde import HydeWriter

SYSTEM_USER = "local-admin"


class AccessDenied(PermissionError):
    pass


class NotFound(LookupError):
    pass


class KnowledgeBase:
    def __init__(self, settings: Settings, models: ModelSet | None = None) -> None:
        settings.ensure_dirs()
        self.settings = settings
        self.database = Database(settings.resolved_database_url)
        self.models = models or ModelSet(settings)
        self.accounts = Accounts(self.database)
        self.conversations = Conversations(self.database)
        self._indexes: IndexManager | None = None
        # One per knowledge base, so the in-memory BM25 indexes outlive a single question.
        self.keyword_indexes = KeywordIndexManager(self.database)
        # Likewise the HyDE passages: cached per question for the life of the process.
        self.hyde = HydeWriter(
            lambda messages: generate(self.models.generator, messages, settings.hyde_max_new_tokens), settings.hyde_cache_size
        )

    @property
    def indexes(self) -> IndexManager:
        if self._indexes is None:
            from retrieval.gpu import GpuResources, resolve_faiss_device
            from retrieval.vector_store import configure_faiss_threads

            gpu = GpuResources() if resolve_faiss_device(self.settings.faiss_gpu) == "gpu" else None
            configure_faiss_threads(self.settings.faiss_threads)
            self._indexes = IndexManager(
                self.database, self.settings.index_dir, self.models.dims(), hnsw_threshold=self.settings.hnsw_threshold if self.settings.hnsw_threshold > 0 else None,
                gpu=gpu,
            )
        return self._indexes

    def close(self) -> None:
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
        """Once any account has a password, every UI and API caller must authenticate."""
        with self.database.session() as session:
            return session.scalar(select(func.count()).select_from(User).where(User.password_hash.is_not(None))) > 0

    def manage_member(self, actor: User, collection_name: str, username: str, role: Role | None) -> None:
        """Add, change (role) or remove (None) a member; needs a global admin or the collection's admin."""
        with self.database.session() as session:
            collection = self._collection_by_name(session, collection_name)
        if not actor.is_admin and self._role(actor, collection) != Role.admin:
            raise AccessDenied(f"{actor.username} may not manage members of {collection_name}")
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
            raise AccessDenied(f"no readable collection named {', '.join(missing)}")
        return [by_name[n] for n in names]

    def _writable(self, user: User, collection: Collection) -> None:
        if user.is_admin:
            return
        if self._role(user, collection) not in (Role.admin, Role.editor):
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
                        select(Document.status, func.count()).where(Document.collection_id == collection.id).group_by(Document.status)
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
                    )
                )
        return infos

    def documents(self, user: User, collection_name: str) -> list[Document]:
        (collection,) = self.readable_collections(user, [collection_name])
        with self.database.session() as session:
            return list(session.scalars(select(Document).where(Document.collection_id == collection.id).order_by(Document.filename)))

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

    def create_collection(self, user: User, name: str) -> Collection:
        if not user.is_admin:
            raise AccessDenied("only administrators create collections")
        return self.get_or_create_collection(name)

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
        return Ingestor(self.settings, self.database, self.indexes, self.models).ingest(collection, batch, progress)

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
        return [ranked.source(number) for number, ranked in enumerate(ranking.chunks[:limit], start=1)]

    def _ask_scope(self, user: User, question: str, collection_names: list[str] | None) -> list[Collection]:
        if not question or not question.strip():
            raise ValueError("the question is empty")
        collections = self.readable_collections(user, collection_names)
        if not collections:
            raise AccessDenied("you cannot read any collection yet; ask an administrator for access")
        return collections

    def _answerer(self) -> Answerer:
        return Answerer(self.settings, self.database, self.indexes, self.models, self.keyword_indexes, self.hyde)
