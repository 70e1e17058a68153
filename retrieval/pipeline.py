"""The query path as typed stages: prepare the query, retrieve lists, fuse, load, post-process.

The shape of Haystack 2's components and LlamaIndex's QueryFusionRetriever with node
post-processors: each retriever returns chunk ids best first, reciprocal-rank fusion merges
the lists, a loader turns the fused ids into plain Candidates (the permission filter is the
loader's, in its query), and post-processors (the reranker, MMR) reorder them. Nothing here
knows the database, the ORM or the app: the app lists the stages (app.answering) and supplies
the retrievers and loader that need its indexes (app.retrievers).

A stage that the options turn off is not listed, so it is neither run nor timed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from retrieval.fusion import reciprocal_rank_fusion
from retrieval.hyde import combine

if TYPE_CHECKING:  # faiss is not imported for a type: a pipeline of fakes runs without it
    from retrieval.vector_store import VectorHit


@dataclass(frozen=True)
class Candidate:
    """One chunk a question may be answered from: plain data, no database session behind it."""

    chunk_id: int
    text: str
    # The loader's prior (the calibrated query cosine), then each post-processor's: after the
    # reranker, the reranker's score (the refusal floor is compared with the first one's).
    score: float
    collection_id: int
    collection_name: str
    document_id: int
    filename: str
    page: int | None
    kind: str  # app.models.ChunkKind's value: "text", "table", "image"
    heading_path: str
    image_path: str | None
    vector_space: str | None
    embedding: bytes | None  # the stored float32 vector, for the prior and MMR


@dataclass
class Query:
    """One question as the stages see it; query steps fill in the vectors as the pipeline runs."""

    text: str
    # The asker's collections: nothing outside them may come back (the loader's filter).
    collection_ids: list[int]
    # Embedder name -> the collections whose vectors it made: the question is embedded once per
    # embedder and each collection searched with its own embedder's vector.
    groups: dict[str, list[int]]
    language: str  # the question's ("en", "zh"): a passage in another one gets the cross-lingual map
    depth: int  # fused candidates kept for the loader and the post-processors
    # Another wording of the question (its English translation), searched as well.
    also: str | None = None
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # the question's (with HyDE's passage)
    also_vectors: dict[str, np.ndarray] = field(default_factory=dict)  # the other wording's
    hypothetical_passage: str | None = None  # HyDE's, when it ran
    # CLIP's image-space hits (None: CLIP not run), kept for the figures shown beside an answer.
    image_hits: list[VectorHit] | None = None

    @property
    def search_text(self) -> str:
        """What the reranker and CLIP read: the question and its other wording together."""
        return f"{self.text} {self.also}" if self.also else self.text

    def scoring_vectors(self) -> dict[str, np.ndarray]:
        """Per embedder, the vector the candidates' priors are measured against: the question's,
        averaged with the other wording's when there is one (either may match the passage)."""
        if not self.also:
            return self.vectors
        return {name: combine(vector, self.also_vectors[name]) for name, vector in self.vectors.items()}

    def embedder_of(self) -> dict[int, str]:
        """Collection id -> the name of the embedder its vectors come from."""
        return {collection_id: name for name, ids in self.groups.items() for collection_id in ids}


class QueryStep(Protocol):
    """Prepares the query before (or between) the retrievers: embeds it, adds HyDE's passage."""

    def prepare(self, query: Query) -> None: ...


class Retriever(Protocol):
    name: str  # the list's name in Ranking.lists and in the fusion ("dense", "bm25", ...)

    def retrieve(self, query: Query, k: int) -> list[int]:
        """At most k chunk ids, best first."""
        ...


class CandidateLoader(Protocol):
    def load(self, query: Query, chunk_ids: Sequence[int]) -> list[Candidate]:
        """The chunks of `chunk_ids`, in that order, that the query may see: only of
        query.collection_ids and of ready documents, filtered where the rows are read (an index
        that is stale or shared must not leak another collection's chunk); each scored with its
        prior."""
        ...


class PostProcessor(Protocol):
    def process(self, query: Query, candidates: list[Candidate]) -> list[Candidate]: ...


@dataclass(frozen=True)
class Prepare:
    stage: str  # the timing's name
    step: QueryStep


@dataclass(frozen=True)
class Retrieve:
    stage: str
    retriever: Retriever
    top_k: int
    # True: the list is at least the query's depth long (a deep evaluation sees deep lists);
    # False: top_k exactly (CLIP's few figures).
    deepen: bool = True

    def k(self, query: Query) -> int:
        return max(self.top_k, query.depth) if self.deepen else self.top_k


@dataclass(frozen=True)
class Process:
    stage: str
    processor: PostProcessor
    # Fewer candidates than this: the stage is skipped (MMR has nothing to reorder in one).
    min_candidates: int = 0


@dataclass
class PipelineResult:
    candidates: list[Candidate]  # best first
    timings: dict[str, float]  # seconds per stage, in the order the stages first ran
    lists: dict[str, list[int]]  # each retriever's chunk ids before fusion, best first


class StageTimer:
    """Seconds per stage name; a name used twice (the translated lists) adds up."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started


@dataclass
class QueryPipeline:
    # Query steps and retrievers, run in this order (a step may prepare what a later retriever reads).
    steps: Sequence[Prepare | Retrieve]
    loader: CandidateLoader
    processors: Sequence[Process] = ()
    rrf_k: int = 60

    def run(self, query: Query) -> PipelineResult:
        timer = StageTimer()
        lists: dict[str, list[int]] = {}
        for step in self.steps:
            with timer.stage(step.stage):
                if isinstance(step, Retrieve):
                    lists[step.retriever.name] = step.retriever.retrieve(query, step.k(query))
                else:
                    step.step.prepare(query)
        with timer.stage("fusion"):
            order = self.fuse(lists)[: query.depth]
        with timer.stage("load"):
            candidates = self.loader.load(query, order)
        for process in self.processors:
            if len(candidates) < process.min_candidates:
                continue
            with timer.stage(process.stage):
                candidates = process.processor.process(query, candidates)
        return PipelineResult(candidates, timer.timings, lists)

    def fuse(self, lists: dict[str, list[int]]) -> list[int]:
        """One list alone is kept as it is (its order is its own scores'); several are fused by
        rank, since their scores (cosine, BM25) are not comparable."""
        if len(lists) > 1:
            return [hit.chunk_id for hit in reciprocal_rank_fusion(lists, k=self.rrf_k)]
        return next(iter(lists.values()), [])
