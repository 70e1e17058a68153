"""The query path: dense text + CLIP image candidates, cross-encoder rerank, grounded generation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select

from app.citations import check_citations
from app.db import Database
from app.indexes import IMAGE_SPACE, TEXT_SPACE, IndexManager
from app.models import Chunk, Collection, Document, DocumentStatus
from app.prompting import NOT_IN_SOURCES, build_messages
from app.schemas import Answer, Source
from app.settings import Settings
from retrieval.dense import search_stores


@dataclass(frozen=True)
class _Candidate:
    chunk: Chunk
    document: Document
    collection: Collection
    score: float


class Answerer:
    def __init__(self, settings: Settings, database: Database, indexes: IndexManager, models) -> None:
        self.settings = settings
        self.database = database
        self.indexes = indexes
        self.models = models

    def _load(self, chunk_ids: list[int], collections: dict[int, Collection]) -> dict[int, tuple[Chunk, Document]]:
        if not chunk_ids:
            return {}
        # The collection filter is applied again here, in SQL: an index can never leak a chunk
        # of a collection the asker may not read, even if it were stale or shared.
        query = (
            select(Chunk, Document)
            .join(Document, Document.id == Chunk.document_id)
            .where(
                Chunk.id.in_(chunk_ids),
                Chunk.collection_id.in_(list(collections)),
                Document.status == DocumentStatus.ready,
            )
        )
        with self.database.session() as session:
            return {chunk.id: (chunk, document) for chunk, document in session.execute(query)}

    def retrieve(self, question: str, collections: list[Collection]) -> tuple[list[Source], list[Source]]:
        """Text sources (reranked, best first) and figure sources for a question."""
        by_id = {c.id: c for c in collections}
        if not by_id:
            return [], []
        settings = self.settings
        query_vector = self.models.text_embedder.embed([question])[0]
        text_hits = search_stores([self.indexes.store(cid, TEXT_SPACE) for cid in by_id], query_vector, settings.dense_top_k)
        rows = self._load([hit.chunk_id for hit in text_hits], by_id)
        candidates = [
            _Candidate(rows[h.chunk_id][0], rows[h.chunk_id][1], by_id[rows[h.chunk_id][0].collection_id], h.score)
            for h in text_hits
            if h.chunk_id in rows
        ][: settings.rerank_top_n]
        reranked = self.models.reranker.rerank(
            question, candidates, [c.chunk.text for c in candidates], [c.score for c in candidates]
        )
        text_sources = [
            _source(number, scored.item, scored.score)
            for number, scored in enumerate(reranked[: settings.context_chunks], start=1)
        ]
        # Figures among the best text matches are shown; CLIP adds figures found by what they show.
        image_sources = [s for s in text_sources if s.kind == "image" and s.image_path]
        clip = self.models.image_embedder
        if clip is not None:
            image_stores = [self.indexes.store(cid, IMAGE_SPACE) for cid in by_id]
            clip_query = clip.embed_texts([question])[0]
            image_hits = search_stores(image_stores, clip_query, settings.image_top_k)
            image_rows = self._load([hit.chunk_id for hit in image_hits], by_id)
            shown = {s.image_path for s in image_sources}
            number = len(text_sources)
            for hit in image_hits:
                if hit.chunk_id not in image_rows or hit.score < settings.min_image_score:
                    continue
                chunk, document = image_rows[hit.chunk_id]
                if chunk.image_path in shown:
                    continue
                number += 1
                shown.add(chunk.image_path)
                image_sources.append(_source(number, _Candidate(chunk, document, by_id[chunk.collection_id], hit.score), hit.score))
        return text_sources, image_sources

    def answer(self, question: str, collections: list[Collection]) -> Answer:
        events = list(self.stream(question, collections))
        return events[-1].answer

    def stream(self, question: str, collections: list[Collection]) -> Iterator["AnswerEvent"]:
        """Yields partial answers while the model writes, then the checked final answer."""
        text_sources, image_sources = self.retrieve(question, collections)
        best = text_sources[0].score if text_sources else None
        floor = self.settings.min_relevance if self.settings.min_relevance is not None else self.models.reranker.relevance_floor
        if best is None or best < floor:
            # Nothing relevant came back: say so rather than let the model improvise.
            yield AnswerEvent(
                done=True,
                answer=Answer(question=question, text=NOT_IN_SOURCES, sources=text_sources, images=image_sources, supported=False),
            )
            return
        sources = text_sources + [s for s in image_sources if s.text and s not in text_sources]
        messages = build_messages(question, sources)
        partial = ""
        for piece in self.models.generator.stream(messages, max_new_tokens=self.settings.max_new_tokens):
            partial += piece
            yield AnswerEvent(done=False, answer=Answer(question=question, text=partial, sources=sources, images=image_sources))
        checked = check_citations(partial, sources)
        yield AnswerEvent(
            done=True,
            answer=Answer(
                question=question,
                text=checked.text,
                sources=sources,
                images=image_sources,
                cited=checked.cited,
                supported=checked.supported,
            ),
        )


@dataclass(frozen=True)
class AnswerEvent:
    done: bool
    answer: Answer


def _source(number: int, candidate: _Candidate, score: float) -> Source:
    chunk = candidate.chunk
    return Source(
        number=number,
        chunk_id=chunk.id,
        collection=candidate.collection.name,
        filename=candidate.document.filename,
        page=chunk.page,
        kind=chunk.kind.value,
        text=chunk.text,
        score=score,
        image_path=chunk.image_path,
    )
