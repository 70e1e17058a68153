"""SQL schema (SQLAlchemy 2 typed ORM). Alembic migrations in app/migrations mirror it."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from app.owners import process_token


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Role(str, enum.Enum):
    admin = "admin"
    editor = "editor"
    reader = "reader"


class DocumentStatus(str, enum.Enum):
    pending = "pending"
    processing = "processing"
    ready = "ready"
    failed = "failed"


class ChunkKind(str, enum.Enum):
    text = "text"
    image = "image"
    ocr = "ocr"


class JobStatus(str, enum.Enum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    # Left running by a process that died (kill -9, power cut): set at the next start
    # (app.leftovers), so the job list tells the user to run it again instead of "running".
    interrupted = "interrupted"
    # A re-index whose new index found fewer of the collection's evaluation questions than the
    # live one (app.reindex_guard): nothing was swapped, and its staged files stay, so that
    # `kb reindex --force` puts them in place without rebuilding (a plain rerun judges again).
    held = "held"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # Signed in by the LDAP directory (app.directory): logs in only there, and its memberships in
    # collections that map directory groups follow those groups at each login.
    from_directory: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="user", cascade="all, delete-orphan")


class Collection(Base):
    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # Chunking of this collection's documents; None = the MMKB_CHUNK_TOKENS /
    # MMKB_CHUNK_OVERLAP_TOKENS defaults, so a changed default applies to collections never tuned.
    chunk_tokens: Mapped[int | None] = mapped_column(Integer)
    chunk_overlap_tokens: Mapped[int | None] = mapped_column(Integer)
    # The text embedder (a registry name) its vectors come from; None = MMKB_TEXT_EMBEDDER, so
    # collections from before the choice existed keep the model their index was built with.
    # Changed only by a re-index's swap (app.reindex), together with the vectors.
    text_embedder: Mapped[str | None] = mapped_column(String(100))
    # Bumped in the transaction of every change to the collection's searchable chunks (a file
    # made ready, documents removed, a re-index's swap): each process compares it with the
    # version its in-memory indexes caught up to, and catches up from stored embeddings.
    index_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="collection", cascade="all, delete-orphan")
    documents: Mapped[list[Document]] = relationship(back_populates="collection", cascade="all, delete-orphan")


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "collection_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    role: Mapped[Role] = mapped_column(Enum(Role, name="member_role"), default=Role.reader)

    user: Mapped[User] = relationship(back_populates="memberships")
    collection: Mapped[Collection] = relationship(back_populates="memberships")


class Document(Base):
    __tablename__ = "documents"
    # Dedup is per collection: the same file may legitimately live in two collections.
    __table_args__ = (UniqueConstraint("collection_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(512))
    mime: Mapped[str | None] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    stored_path: Mapped[str | None] = mapped_column(String(1024))
    status: Mapped[DocumentStatus] = mapped_column(
        Enum(DocumentStatus, name="document_status"), default=DocumentStatus.pending, index=True
    )
    error: Mapped[str | None] = mapped_column(Text)
    page_count: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    collection: Mapped[Collection] = relationship(back_populates="documents")
    chunks: Mapped[list[Chunk]] = relationship(back_populates="document", cascade="all, delete-orphan")


class Chunk(Base):
    __tablename__ = "chunks"
    __table_args__ = (Index("ix_chunks_collection_kind", "collection_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    # Denormalised so the index of one collection can be rebuilt without a join.
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    page: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[ChunkKind] = mapped_column(Enum(ChunkKind, name="chunk_kind"))
    ordinal: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text, default="")
    char_start: Mapped[int | None] = mapped_column(Integer)
    char_end: Mapped[int | None] = mapped_column(Integer)
    # The section the chunk sits in, outermost heading first ("Travel policy > Hotels"); "" if none.
    heading_path: Mapped[str] = mapped_column(Text, default="")
    image_path: Mapped[str | None] = mapped_column(String(1024))
    # The FAISS id is the chunk id; this names which index of the collection holds it.
    vector_space: Mapped[str | None] = mapped_column(String(32))
    # float32 bytes of the embedding: the index can be rebuilt or re-synced without re-embedding.
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)

    document: Mapped[Document] = relationship(back_populates="chunks")


class IngestJob(Base):
    __tablename__ = "ingest_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int | None] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32), default="ingest")
    status: Mapped[JobStatus] = mapped_column(Enum(JobStatus, name="job_status"), default=JobStatus.queued)
    total_files: Mapped[int] = mapped_column(Integer, default=0)
    done_files: Mapped[int] = mapped_column(Integer, default=0)
    failed_files: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The process that runs the job ("host|boot|pid|start", app.leftovers.process_token):
    # a later start marks the job interrupted only once that very process is gone.
    owner: Mapped[str | None] = mapped_column(String(255), default=process_token)


class EvalQuestion(Base):
    """A question of a collection's own evaluation set and where its answer is; a re-index is
    judged by the set before it goes live (app.reindex_guard)."""

    __tablename__ = "eval_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)
    # A file name, not a document id: a new version of the file keeps its questions.
    expected_filename: Mapped[str] = mapped_column(String(512))
    expected_page: Mapped[int | None] = mapped_column(Integer)  # None: any page of the file counts
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EvalRun(Base):
    """One evaluation of a collection's set against one index: the live one (on demand, or
    before a re-index's swap) or a re-index's candidate."""

    __tablename__ = "eval_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    index_kind: Mapped[str] = mapped_column(String(16))  # "live" | "candidate"
    recall_at_5: Mapped[float] = mapped_column(Float)
    mrr_at_10: Mapped[float] = mapped_column(Float)
    questions: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_jobs.id", ondelete="SET NULL"))
    # What the re-index did: "swapped", "kept" (the old index) or "forced"; None for a run on demand.
    verdict: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiToken(Base):
    """A per-user API token; only its SHA-256 is stored, so a database leak reveals no token."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", order_by="Message.id"
    )


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # user | assistant
    content: Mapped[str] = mapped_column(Text)
    # The sources shown with an assistant message (JSON list of app.schemas.Source), so a
    # reopened conversation shows the same citations even after documents change.
    sources_json: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("message_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    rating: Mapped[int] = mapped_column(Integer)  # +1 or -1
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SyncFolder(Base):
    """The folder a collection mirrors (`kb sync`, the console's Folder sync tab): one per
    collection, so its documents' names (paths inside the folder) cannot clash with another's."""

    __tablename__ = "sync_folders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), unique=True)
    path: Mapped[str] = mapped_column(String(1024))
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A start later than the last finish: a sync is running, or one was killed (the next run resumes).
    last_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_summary: Mapped[str | None] = mapped_column(Text)  # JSON of app.folder_sync.SyncSummary

    files: Mapped[list[SyncFile]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class SyncFile(Base):
    """A file of a synced folder as the last sync saw it: its size and modification time (so
    the next sync hashes only files whose stat changed), its hash, and its document."""

    __tablename__ = "sync_files"
    __table_args__ = (UniqueConstraint("folder_id", "relpath"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("sync_folders.id", ondelete="CASCADE"))
    relpath: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # -1: not to be trusted (written too close to the sync), so the next sync hashes the file.
    mtime_ns: Mapped[int] = mapped_column(BigInteger, default=-1)
    sha256: Mapped[str] = mapped_column(String(64))
    # The document holding these bytes (ready or failed); NULL once that document is deleted.
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"), index=True)


class DirectoryGroup(Base):
    """A directory (LDAP) group that gives its members a role in a collection: configured per
    collection by its administrators, applied to directory users at each of their logins."""

    __tablename__ = "directory_groups"
    __table_args__ = (UniqueConstraint("collection_id", "group_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    # The group's name (its ldap_group_name_attribute, e.g. cn) or its full DN; matched without case.
    group_name: Mapped[str] = mapped_column(String(512))
    role: Mapped[Role] = mapped_column(Enum(Role, name="member_role"), default=Role.reader)
