"""Typed results the service layer hands to the CLI, the UI and the API."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import BaseModel, Field


class FileOutcome(str, Enum):
    ingested = "ingested"
    skipped_duplicate = "skipped_duplicate"
    failed = "failed"


class FileResult(BaseModel):
    filename: str
    outcome: FileOutcome
    document_id: int | None = None
    pages: int | None = None
    text_chunks: int = 0
    image_chunks: int = 0
    error: str | None = None
    # Earlier versions (same file name, other bytes) this file replaced in its collection.
    replaced_document_ids: list[int] = Field(default_factory=list)


class IngestReport(BaseModel):
    collection: str
    job_id: int | None = None
    files: list[FileResult] = Field(default_factory=list)

    @property
    def ingested(self) -> list[FileResult]:
        return [f for f in self.files if f.outcome == FileOutcome.ingested]

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.outcome == FileOutcome.failed]

    @property
    def skipped(self) -> list[FileResult]:
        return [f for f in self.files if f.outcome == FileOutcome.skipped_duplicate]


class Source(BaseModel):
    """One numbered source shown to the model and to the user."""

    number: int
    chunk_id: int
    collection: str
    filename: str
    page: int | None
    kind: str
    text: str
    score: float
    image_path: str | None = None
    heading_path: str = ""  # the section of the document the chunk sits in ("Travel policy > Hotels")

    @property
    def label(self) -> str:
        return f"{self.filename}, p. {self.page}" if self.page else self.filename


class Quote(BaseModel):
    """Verbatim sentence(s) of one source that best support an answer to the question, found
    right after retrieval (before the model writes) and checked against the source text."""

    source_number: int
    chunk_id: int
    filename: str
    page: int | None
    text: str  # exactly as it stands in the source's text
    score: float  # share of the question's key terms the quote covers (0..1)

    @property
    def label(self) -> str:
        return f"{self.filename}, p. {self.page}" if self.page else self.filename


class Answer(BaseModel):
    question: str
    # The follow-up rewritten with the conversation, when there was one; what retrieval searched.
    standalone_question: str | None = None
    text: str
    sources: list[Source] = Field(default_factory=list)
    images: list[Source] = Field(default_factory=list)
    cited: list[int] = Field(default_factory=list)
    supported: bool = True
    message_id: int | None = None  # set when the exchange was stored in a conversation
    # The best supporting sentence(s), shown at once; None when no source supports an answer.
    quote: Quote | None = None
    # True when the answer text is the quote itself (the model refused or was not supported,
    # but the sources clearly answer): shown as a quotation, not as the model's words.
    extractive: bool = False

    @property
    def cited_sources(self) -> list[Source]:
        by_number = {s.number: s for s in self.sources}
        return [by_number[n] for n in self.cited if n in by_number]


class CollectionInfo(BaseModel):
    id: int
    name: str
    documents: int
    ready_documents: int
    failed_documents: int
    chunks: int
    # Chunking used for documents ingested from now on (the collection's own, else the defaults).
    chunk_tokens: int | None = None
    chunk_overlap_tokens: int | None = None
    # The text embedder its vectors come from (its own choice, else MMKB_TEXT_EMBEDDER).
    text_embedder: str | None = None


class MemberInfo(BaseModel):
    username: str
    role: str


class JobInfo(BaseModel):
    id: int
    collection: str | None  # None for jobs not tied to one collection
    kind: str
    status: str
    total_files: int
    done_files: int
    failed_files: int
    message: str | None
    created_at: datetime
    finished_at: datetime | None


class CollectionStats(BaseModel):
    name: str
    documents: int
    ready_documents: int
    failed_documents: int
    chunks: int
    figures: int  # distinct figure images indexed
    index_bytes: int  # FAISS index files on disk
    # Its vectors' embedder (its own choice or MMKB_TEXT_EMBEDDER): two collections that differ
    # only in it answer differently, so the dashboard names it.
    text_embedder: str = ""


class ModelInUse(BaseModel):
    role: str
    name: str
    package: str
    loaded: bool  # already in memory in this process


class Dashboard(BaseModel):
    collections: list[CollectionStats]
    jobs: list[JobInfo]
    models: list[ModelInUse]

    @property
    def documents(self) -> int:
        return sum(c.documents for c in self.collections)

    @property
    def chunks(self) -> int:
        return sum(c.chunks for c in self.collections)

    @property
    def figures(self) -> int:
        return sum(c.figures for c in self.collections)

    @property
    def index_bytes(self) -> int:
        return sum(c.index_bytes for c in self.collections)


class QueueLengths(BaseModel):
    ingest_queued: int
    ingest_running: int
    asks_in_flight: int


class EvalQuestionInfo(BaseModel):
    """A question of a collection's evaluation set and where its answer is."""

    id: int
    question: str
    file: str
    page: int | None  # None: any page of the file counts
    created_by: str
    created_at: datetime


class NewEvalQuestion(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    file: str = Field(min_length=1, max_length=512, description="file name of a document of the collection")
    page: int | None = Field(default=None, ge=1, description="the page that answers it (1-based); null: any page of the file")


class EvalScores(BaseModel):
    """A collection's evaluation set run against one index."""

    recall_at_5: float  # share of questions whose file (and page) is among the first 5 places
    mrr_at_10: float  # mean of 1/rank of that place within the first 10, else 0
    questions: int
    missed: list[str] = Field(default_factory=list)  # questions not found within the first 5


class EvalRunInfo(BaseModel):
    id: int
    collection: str
    index: Literal["live", "candidate"]
    recall_at_5: float
    mrr_at_10: float
    questions: int
    job_id: int | None  # the re-index that ran it; None for a run on demand
    verdict: Literal["swapped", "kept", "forced"] | None
    created_at: datetime


class GuardReport(BaseModel):
    """What a collection's evaluation set said about a re-index, and what was done."""

    collection: str
    job_id: int
    live: EvalScores | None  # None: the live index could not be searched (see message)
    candidate: EvalScores
    margin: float
    verdict: Literal["swapped", "kept", "forced"]
    message: str


class ReindexOutcome(str, Enum):
    rebuilt = "rebuilt"  # parsed, chunked and embedded by this run
    resumed = "resumed"  # staged by an earlier, interrupted run of the same job: not redone
    failed = "failed"  # kept its previous chunks; `error` says why
    skipped = "skipped"  # deleted or replaced while the job ran
    # Built with the new embedder, but not swapped in: another document failed, and a collection
    # moves to another embedder whole or not at all (app.reindex).
    not_swapped = "not_swapped"
    # Built, but its collection's evaluation set did worse on the new index: staged, not swapped
    # in (app.reindex_guard); `kb reindex --force` swaps it without rebuilding.
    held = "held"


class ReindexedDocument(BaseModel):
    collection: str
    document_id: int
    filename: str
    outcome: ReindexOutcome
    chunks: int = 0
    error: str | None = None


class ReindexReport(BaseModel):
    job_ids: list[int] = Field(default_factory=list)  # one ingest_jobs row (kind "reindex") per collection
    collections: list[str] = Field(default_factory=list)
    documents: list[ReindexedDocument] = Field(default_factory=list)
    used_ray: bool = False
    # The collections' own evaluation sets, run before each swap (app.reindex_guard); none for a
    # collection without questions.
    guard: list[GuardReport] = Field(default_factory=list)

    def _with(self, outcome: ReindexOutcome) -> list[ReindexedDocument]:
        return [d for d in self.documents if d.outcome == outcome]

    @property
    def rebuilt(self) -> list[ReindexedDocument]:
        return self._with(ReindexOutcome.rebuilt)

    @property
    def resumed(self) -> list[ReindexedDocument]:
        return self._with(ReindexOutcome.resumed)

    @property
    def failed(self) -> list[ReindexedDocument]:
        return self._with(ReindexOutcome.failed)

    @property
    def held(self) -> list[ReindexedDocument]:
        return self._with(ReindexOutcome.held)
