"""The query pipeline's stages that need this knowledge base's database and indexes.

Retrievers return chunk ids best first (retrieval.pipeline.Retriever); the loader turns ids
into plain Candidates, reading only the asker's collections and ready documents. Which of
them run, in which order, is listed in one place: Answerer._pipeline (app.answering).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from sqlalchemy import select

from app.db import Database
from app.indexes import IMAGE_SPACE, TEXT_SPACE, IndexManager, KeywordIndexManager
from app.models import Chunk, Collection, Document, DocumentStatus
from app.registry import ScoreMap
from ingest.sentences import text_language
from retrieval.dense import search_stores
from retrieval.keyword import search_keyword
from retrieval.pipeline import Candidate, Query
from retrieval.vector_store import VectorHit

ScoreMaps = Callable[[str], ScoreMap]  # embedder name -> its cosines on the default's scale (ModelSet.score_map)


class DenseRetriever:
    """The k best dense hits over every collection, each searched with its own embedder's
    vector; scores are calibrated onto one scale before they are merged (raw e5 cosines sit
    near 0.85 where MiniLM's sit near 0.4). translated: search with the other wording's vectors."""

    def __init__(self, indexes: IndexManager, score_map: ScoreMaps, translated: bool = False) -> None:
        self.indexes = indexes
        self.score_map = score_map
        self.translated = translated
        self.name = "dense (translated)" if translated else "dense"

    def retrieve(self, query: Query, k: int) -> list[int]:
        vectors = query.also_vectors if self.translated else query.vectors
        hits: list[VectorHit] = []
        for name, collection_ids in query.groups.items():
            vector, score_map = vectors[name], self.score_map(name)
            stores = self.indexes.stores(list(collection_ids), TEXT_SPACE, dim=vector.shape[-1])
            hits.extend(VectorHit(hit.chunk_id, score_map.apply(hit.score)) for hit in search_stores(stores, vector, k))
        hits.sort(key=lambda hit: -hit.score)
        return [hit.chunk_id for hit in hits[:k]]


class KeywordRetriever:
    """BM25 over every text chunk of the asker's collections, with the question's words alone:
    a code that HyDE's passage made up must not match. translated: the other wording's words."""

    def __init__(self, keyword_indexes: KeywordIndexManager, translated: bool = False) -> None:
        self.keyword_indexes = keyword_indexes
        self.translated = translated
        self.name = "bm25 (translated)" if translated else "bm25"

    def retrieve(self, query: Query, k: int) -> list[int]:
        text = (query.also or "") if self.translated else query.text
        return [hit.chunk_id for hit in search_keyword(self.keyword_indexes.indexes(query.collection_ids), text, k)]


class ClipRetriever:
    """Figures CLIP finds by what they show, as the ids of their text-space chunks (the same
    figure's caption/OCR row), so that they join the fused text candidates. The image-space
    hits are kept on the query (Query.image_hits) for the figures shown beside an answer."""

    name = "clip"

    def __init__(self, indexes: IndexManager, database: Database, embedder: Any, min_score: float) -> None:
        self.indexes = indexes
        self.database = database
        self.embedder = embedder  # ingest.embedders.ClipEmbedder
        self.min_score = min_score  # a cosine below it is noise and finds nothing

    def hits(self, text: str, collection_ids: Sequence[int], k: int) -> list[VectorHit]:
        """The image-space hits for `text`, best first."""
        stores = self.indexes.stores(list(collection_ids), IMAGE_SPACE)
        return search_stores(stores, self.embedder.embed_texts([text])[0], k)

    def retrieve(self, query: Query, k: int) -> list[int]:
        query.image_hits = self.hits(query.search_text, query.collection_ids, k)
        return self.text_siblings(query.image_hits, query.collection_ids)

    def text_siblings(self, hits: list[VectorHit], collection_ids: Sequence[int]) -> list[int]:
        hits = [hit for hit in hits if hit.score >= self.min_score]
        if not hits:
            return []
        with self.database.session() as session:
            paths = dict(
                session.execute(select(Chunk.id, Chunk.image_path).where(Chunk.id.in_([h.chunk_id for h in hits]))).tuples().all()
            )
            siblings = dict(
                session.execute(
                    select(Chunk.image_path, Chunk.id).where(
                        Chunk.image_path.in_([p for p in paths.values() if p]),
                        Chunk.vector_space == TEXT_SPACE,
                        Chunk.collection_id.in_(list(collection_ids)),
                    )
                )
                .tuples()
                .all()
            )
        return [siblings[paths[h.chunk_id]] for h in hits if paths.get(h.chunk_id) in siblings]


class SqlCandidateLoader:
    """Chunk rows as Candidates, read through the permission filter."""

    def __init__(self, database: Database, score_map: ScoreMaps) -> None:
        self.database = database
        self.score_map = score_map

    def fetch(self, chunk_ids: Sequence[int], collection_ids: Sequence[int]) -> dict[int, Candidate]:
        """Chunk id -> Candidate (score 0.0) for those of `chunk_ids` in `collection_ids` whose
        document is ready. The collection filter is applied here, in SQL: an index can never leak
        a chunk of a collection the asker may not read, even if it were stale or shared."""
        if not chunk_ids:
            return {}
        query = (
            select(Chunk, Document.filename, Collection.name)
            .join(Document, Document.id == Chunk.document_id)
            .join(Collection, Collection.id == Chunk.collection_id)
            .where(
                Chunk.id.in_(list(chunk_ids)),
                Chunk.collection_id.in_(list(collection_ids)),
                Document.status == DocumentStatus.ready,
            )
        )
        with self.database.session() as session:
            return {chunk.id: _candidate(chunk, filename, name) for chunk, filename, name in session.execute(query).tuples()}

    def load(self, query: Query, chunk_ids: Sequence[int]) -> list[Candidate]:
        """The readable chunks of `chunk_ids` in that order, each scored with its exact query
        cosine from the stored embedding (also those only BM25 found), on the default embedder's
        scale: the reranker's prior and the refusal floor stay calibrated whichever embedder the
        collection uses."""
        found = self.fetch(chunk_ids, query.collection_ids)
        vectors, embedder_of = query.scoring_vectors(), query.embedder_of()
        candidates = []
        for chunk_id in chunk_ids:
            candidate = found.get(chunk_id)
            if candidate is None:
                continue
            name = embedder_of[candidate.collection_id]
            vector = np.frombuffer(candidate.embedding, dtype=np.float32) if candidate.embedding else None
            prior = 0.0
            if vector is not None and vector.shape == vectors[name].shape:
                cross_lingual = text_language(candidate.text) != query.language
                prior = self.score_map(name).apply(float(vector @ vectors[name]), cross_lingual)
            candidates.append(replace(candidate, score=prior))
        return candidates


def _candidate(chunk: Chunk, filename: str, collection_name: str) -> Candidate:
    return Candidate(
        chunk_id=chunk.id,
        text=chunk.text or "",
        score=0.0,
        collection_id=chunk.collection_id,
        collection_name=collection_name,
        document_id=chunk.document_id,
        filename=filename,
        page=chunk.page,
        kind=chunk.kind.value,
        heading_path=chunk.heading_path or "",
        image_path=chunk.image_path,
        vector_space=chunk.vector_space,
        embedding=chunk.embedding,
    )
