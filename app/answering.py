"""The query path: dense + BM25 (+ CLIP) candidates fused by rank, reranked, grounded generation."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select

from app.admission import Admission, WaitedTooLong
from app.citations import check_citations
from app.db import Database
from app.evidence import Evidence, find_evidence, gives_wanted_value, key_terms, quote_answer
from app.indexes import IMAGE_SPACE, TEXT_SPACE, IndexManager, KeywordIndexManager
from app.llm import sources_that_fit
from app.models import Chunk, Collection, Document, DocumentStatus
from app.prompting import build_messages, question_language, refusal
from app.schemas import Answer, Source
from app.settings import Settings
from ingest.embedders import embed_query
from ingest.sentences import has_chinese, text_language
from retrieval.dense import search_stores
from retrieval.fusion import reciprocal_rank_fusion
from retrieval.hyde import HydeWriter, combine
from retrieval.keyword import search_keyword
from retrieval.mmr import mmr_order
from retrieval.vector_store import VectorHit

_CITATION_MARKS_RE = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
TRANSLATE_PROMPT = "Translate the user's question into English. Reply with the English question only."
TRANSLATION_PROMPTS = {
    "zh": "把用户给出的文字翻译成简体中文。数字、名称和代码照原文写。只回复译文。",
    "en": "Translate the user's text into English. Copy numbers, names and codes exactly. Reply with the translation only.",
}


@dataclass(frozen=True)
class _Candidate:
    chunk: Chunk
    document: Document
    collection: Collection
    score: float


@dataclass(frozen=True)
class RetrievalOptions:
    """Which stages run; the defaults come from settings, the evaluation turns them on and off."""

    keyword: bool = True
    hyde: bool = False
    rerank: bool = True
    # CLIP text-to-image candidates join the fusion (when a CLIP model is configured).
    image: bool = True
    # Maximal marginal relevance over the final list; None = off, 1.0 = reranker order.
    mmr_lambda: float | None = None
    # A question in Chinese is also searched in the generator's English translation (the
    # default embedder reads English only, so Chinese finds English pages only this way).
    translate: bool = True


@dataclass(frozen=True)
class RankedChunk:
    candidate: _Candidate
    score: float  # reranker score, or the query cosine when the reranker is off

    def source(self, number: int) -> Source:
        return _source(number, self.candidate, self.score)


@dataclass
class Ranking:
    """Every candidate, best first, and how long each stage took (seconds)."""

    chunks: list[RankedChunk]
    timings: dict[str, float] = field(default_factory=dict)
    hypothetical_passage: str | None = None
    # The candidate chunk ids each source found before fusion, best first ("dense", "bm25", "clip").
    lists: dict[str, list[int]] = field(default_factory=dict)
    # CLIP's image-space hits for the question (None: CLIP not run), reused for the figures shown.
    image_hits: list[VectorHit] | None = None


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def stage(self, name: str):
        timer = self

        class _Stage:
            def __enter__(self):
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                timer.timings[name] = timer.timings.get(name, 0.0) + time.perf_counter() - self.start

        return _Stage()


class Answerer:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        indexes: IndexManager,
        models,
        keyword_indexes: KeywordIndexManager | None = None,
        hyde: HydeWriter | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.settings = settings
        # Turns at the generator, shared by every question of the knowledge base; None (an
        # evaluation, a script) writes as soon as the generator's own lock allows.
        self.admission = admission
        self.database = database
        self.indexes = indexes
        self.models = models
        self.keyword_indexes = keyword_indexes or KeywordIndexManager(database)
        self.hyde = hyde or HydeWriter(self._write)

    def _write(self, messages) -> str:
        from app.llm import generate

        return generate(self.models.generator, messages, self.settings.hyde_max_new_tokens)

    def default_options(self, hyde: bool | None = None, mmr_lambda: float | None = None) -> RetrievalOptions:
        """Settings, with per-request overrides: hyde True/False, mmr_lambda in [0, 1] (1 = off)."""
        return RetrievalOptions(
            keyword=self.settings.hybrid_search,
            hyde=self.settings.hyde if hyde is None else hyde,
            rerank=True,
            mmr_lambda=self.settings.mmr_lambda if mmr_lambda is None else mmr_lambda,
        )

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

    def _translation(self, question: str) -> str | None:
        """The question in English when it is written in Chinese (one short generation), else None."""
        if not has_chinese(question):
            return None
        text = self._rewritten(TRANSLATE_PROMPT, question, 64)
        return text if text and not has_chinese(text) else None

    def _rewritten(self, instruction: str, text: str, max_new_tokens: int) -> str:
        """``text`` as the generator rewrites it under ``instruction`` (one short generation), on one line."""
        from app.llm import generate

        messages = [{"role": "system", "content": instruction}, {"role": "user", "content": text}]
        return " ".join(generate(self.models.generator, messages, max_new_tokens).split())

    def _translated(self, language: str, text: str) -> str | None:
        """``text`` (a verified quote or a checked answer) in ``language`` by one short
        generation, or None where the translation loses one of its numbers or codes."""
        translated = self._rewritten(TRANSLATION_PROMPTS[language], text, 160)
        if not translated or text_language(translated) != language:
            return None
        original, kept = key_terms(text), key_terms(translated)
        if not (original.numbers <= kept.numbers and original.codes <= kept.codes):
            return None
        return translated

    def _documents_text(self, sources: list[Source], max_chunks: int = 5000) -> dict[str, str] | None:
        """File name -> whole text of each document the sources come from (None past
        max_chunks in all): a question's name that none of them contains is evidence that they
        do not answer it."""
        chunk_ids = [s.chunk_id for s in sources]
        if not chunk_ids:
            return None
        with self.database.session() as session:
            documents = select(Chunk.document_id).where(Chunk.id.in_(chunk_ids)).scalar_subquery()
            rows = session.execute(
                select(Document.filename, Chunk.text)
                .join(Document, Document.id == Chunk.document_id)
                .where(Chunk.document_id.in_(documents))
                .order_by(Chunk.id)
                .limit(max_chunks + 1)
            ).all()
        if len(rows) > max_chunks:
            return None
        texts: dict[str, list[str]] = {}
        for filename, text in rows:
            texts.setdefault(filename, []).append(text)
        return {filename: "\n".join(parts) for filename, parts in texts.items()}

    def _clip_hits(self, question: str, collection_ids: list[int]) -> list[VectorHit]:
        """Figures CLIP finds by what they show (image-space hits), best first."""
        stores = [self.indexes.store(cid, IMAGE_SPACE) for cid in collection_ids]
        return search_stores(stores, self.models.image_embedder.embed_texts([question])[0], self.settings.image_top_k)

    def _clip_text_siblings(self, hits: list[VectorHit], collection_ids: list[int]) -> list[int]:
        """CLIP's figures as the ids of their text-space chunks (the same figure's caption/OCR
        row), so that they can join the fused text candidates."""
        hits = [hit for hit in hits if hit.score >= self.settings.min_image_score]
        if not hits:
            return []
        with self.database.session() as session:
            paths = dict(
                session.execute(select(Chunk.id, Chunk.image_path).where(Chunk.id.in_([h.chunk_id for h in hits]))).all()
            )
            siblings = dict(
                session.execute(
                    select(Chunk.image_path, Chunk.id).where(
                        Chunk.image_path.in_([p for p in paths.values() if p]),
                        Chunk.vector_space == TEXT_SPACE,
                        Chunk.collection_id.in_(collection_ids),
                    )
                ).all()
            )
        return [siblings[paths[h.chunk_id]] for h in hits if paths.get(h.chunk_id) in siblings]

    def _dense(self, groups: dict[str, list[int]], query_vectors: dict[str, np.ndarray], k: int) -> list[VectorHit]:
        """The k best dense hits over every collection, each searched with its own embedder's
        query vector; scores are calibrated onto one scale before they are merged (raw e5
        cosines sit near 0.85 where MiniLM's sit near 0.4). The cross-lingual part of the map
        needs the passage's text, read only for the candidates (rank's priors)."""
        hits: list[VectorHit] = []
        for name, collection_ids in groups.items():
            vector, score_map = query_vectors[name], self.models.score_map(name)
            stores = [self.indexes.store(cid, TEXT_SPACE, dim=vector.shape[-1]) for cid in collection_ids]
            hits.extend(VectorHit(hit.chunk_id, score_map.apply(hit.score)) for hit in search_stores(stores, vector, k))
        hits.sort(key=lambda hit: -hit.score)
        return hits[:k]

    def rank(
        self,
        question: str,
        collections: list[Collection],
        options: RetrievalOptions | None = None,
        depth: int | None = None,
        also: str | None = None,
    ) -> Ranking:
        """All candidates for a question, best first (at most `depth`, default rerank_top_n).
        also: another wording of the question (its English translation), searched as well;
        its lists join the fusion and its words the reranker's query."""
        options = options or self.default_options()
        by_id = {c.id: c for c in collections}
        timer = _Timer()
        if not by_id:
            return Ranking([], timer.timings)
        settings = self.settings
        language = text_language(question)
        depth = depth or settings.rerank_top_n
        # Collections by the embedder their vectors come from: the question is embedded once
        # per embedder, and each collection is searched with its own embedder's vector.
        groups: dict[str, list[int]] = {}
        for collection in collections:
            groups.setdefault(self.models.embedder_name(collection.text_embedder), []).append(collection.id)
        embedders = {name: self.models.text_embedder_for(name) for name in groups}
        with timer.stage("embed"):
            query_vectors = {name: embed_query(embedder, question) for name, embedder in embedders.items()}
        passage = None
        if options.hyde:
            with timer.stage("hyde"):
                for name, embedder in embedders.items():
                    passage, passage_vector = self.hyde.passage_vector(question, lambda text: embedder.embed([text])[0], name)  # noqa: B023 - called here
                    if passage_vector is not None:
                        query_vectors[name] = combine(query_vectors[name], passage_vector)
        with timer.stage("dense"):
            dense = self._dense(groups, query_vectors, max(settings.dense_top_k, depth))
        ranked_lists = {"dense": [hit.chunk_id for hit in dense]}
        if options.keyword:
            # BM25 gets the question alone: a code the HyDE passage made up must not match.
            with timer.stage("bm25"):
                keyword = search_keyword(
                    [self.keyword_indexes.index(cid) for cid in by_id], question, max(settings.keyword_top_k, depth)
                )
            ranked_lists["bm25"] = [hit.chunk_id for hit in keyword]
        if also:
            with timer.stage("translated"):
                also_vectors = {name: embed_query(embedder, also) for name, embedder in embedders.items()}
                also_dense = self._dense(groups, also_vectors, max(settings.dense_top_k, depth))
                ranked_lists["dense (translated)"] = [hit.chunk_id for hit in also_dense]
                if options.keyword:
                    indexes = [self.keyword_indexes.index(cid) for cid in by_id]
                    ranked_lists["bm25 (translated)"] = [
                        hit.chunk_id for hit in search_keyword(indexes, also, max(settings.keyword_top_k, depth))
                    ]
                query_vectors = {name: combine(query_vectors[name], also_vectors[name]) for name in query_vectors}
            question = f"{question} {also}"
        image_hits = None
        if options.image and self.models.image_embedder is not None:
            with timer.stage("clip"):
                image_hits = self._clip_hits(question, list(by_id))
                ranked_lists["clip"] = self._clip_text_siblings(image_hits, list(by_id))
        with timer.stage("fusion"):
            if len(ranked_lists) > 1:
                order = [hit.chunk_id for hit in reciprocal_rank_fusion(ranked_lists, k=settings.rrf_k)]
            else:
                order = ranked_lists["dense"]
            order = order[:depth]
        with timer.stage("load"):
            rows = self._load(order, by_id)
            name_of = {cid: name for name, ids in groups.items() for cid in ids}
            candidates = []
            for chunk_id in order:
                if chunk_id not in rows:
                    continue
                chunk, document = rows[chunk_id]
                # Every candidate gets its exact query cosine from the stored embedding, also
                # those only BM25 found, on the default embedder's scale: the reranker's prior
                # and the refusal floor stay calibrated whichever embedder the collection uses.
                name = name_of[chunk.collection_id]
                vector = np.frombuffer(chunk.embedding, dtype=np.float32) if chunk.embedding else None
                prior = 0.0
                if vector is not None and vector.shape == query_vectors[name].shape:
                    cross_lingual = text_language(chunk.text or "") != language
                    prior = self.models.score_map(name).apply(float(vector @ query_vectors[name]), cross_lingual)
                candidates.append(_Candidate(chunk, document, by_id[chunk.collection_id], prior))
        if options.rerank:
            with timer.stage("rerank"):
                reranked = self.models.reranker.rerank(
                    question, candidates, [c.chunk.text for c in candidates], [c.score for c in candidates]
                )
            ranked = [RankedChunk(scored.item, scored.score) for scored in reranked]
        else:
            ranked = [RankedChunk(candidate, candidate.score) for candidate in candidates]
        if options.mmr_lambda is not None and options.mmr_lambda < 1.0 and len(ranked) > 1:
            with timer.stage("mmr"):
                slots, width = {}, 0
                for name, vector in query_vectors.items():
                    slots[name], width = (width, vector.shape[-1]), width + vector.shape[-1]
                ranked = _diversify(ranked, options.mmr_lambda, width, lambda item: slots[name_of[item.candidate.collection.id]])
        return Ranking(ranked, timer.timings, hypothetical_passage=passage, lists=ranked_lists, image_hits=image_hits)

    def retrieve(
        self, question: str, collections: list[Collection], options: RetrievalOptions | None = None, also: str | None = None
    ) -> tuple[list[Source], list[Source]]:
        """Text sources (reranked, best first) and figure sources for a question (see rank for `also`)."""
        by_id = {c.id: c for c in collections}
        if not by_id:
            return [], []
        settings = self.settings
        ranking = self.rank(question, collections, options, also=also)
        text_sources = [ranked.source(number) for number, ranked in enumerate(ranking.chunks[: settings.context_chunks], start=1)]
        # Figures among the best text matches are shown; CLIP adds figures found by what they show.
        image_sources = [s for s in text_sources if s.kind == "image" and s.image_path]
        clip = self.models.image_embedder
        if clip is not None:
            # The CLIP search rank() already ran for the fusion: its query is not embedded twice.
            image_hits = ranking.image_hits if ranking.image_hits is not None else self._clip_hits(question, list(by_id))
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
                image_sources.append(
                    _source(number, _Candidate(chunk, document, by_id[chunk.collection_id], hit.score), hit.score)
                )
        return text_sources, image_sources

    def answer(
        self, question: str, collections: list[Collection], options: RetrievalOptions | None = None, history=None
    ) -> Answer:
        events = list(self.stream(question, collections, options, history))
        return events[-1].answer

    def stream(
        self, question: str, collections: list[Collection], options: RetrievalOptions | None = None, history=None
    ) -> Iterator[AnswerEvent]:
        """Yields partial answers while the model writes, then the checked final answer.

        history: earlier (question, answer) turns; a follow-up is first rewritten into a
        standalone question, which is what retrieval and the prompt then see."""
        asked = question
        # The answer, the refusal and a translated quote are in the language the user asked in,
        # whatever the language of the sources (or of a standalone rewrite of a follow-up).
        language = question_language(asked)
        standalone = None
        if history:
            from app.followup import standalone_question

            standalone = standalone_question(self.models.generator, question, history)
            question = standalone
        options = options or self.default_options()
        translation = self._translation(question) if options.translate and self.settings.translate_questions else None
        text_sources, image_sources = self.retrieve(question, collections, options, also=translation)
        best = text_sources[0].score if text_sources else None
        floor = self.settings.min_relevance if self.settings.min_relevance is not None else self.models.reranker.relevance_floor
        if best is None or best < floor:
            # Nothing relevant came back: say so rather than let the model improvise.
            yield AnswerEvent(
                done=True,
                answer=Answer(
                    question=asked,
                    standalone_question=standalone,
                    text=refusal(language),
                    sources=text_sources,
                    images=image_sources,
                    supported=False,
                ),
            )
            return
        generator = self.models.generator
        reads_images = bool(getattr(generator, "supports_images", False))
        # A figure with no text (found by CLIP alone) only means something to a model that sees it.
        extra = [s for s in image_sources if s not in text_sources and (s.text or (reads_images and s.image_path))]
        sources = text_sources + extra
        evidence = find_evidence(question, sources, self._documents_text(sources), also=translation)

        def answer(text: str, **fields) -> Answer:
            # A refusal carries no quote: a passage shown above "the documents do not contain an
            # answer" would read as the answer the check just turned down.
            quote = evidence.quote if fields.get("supported", True) and not evidence.absent else None
            return Answer(
                question=asked,
                standalone_question=standalone,
                text=text,
                sources=sources,
                images=image_sources,
                quote=quote,
                **fields,
            )

        # The verified quote goes out at once, before the model has read anything.
        yield AnswerEvent(done=False, answer=answer(""))
        if evidence.absent:
            # The question names something no source mentions ("Canadian registry", "December"):
            # whatever the model wrote would not come from the documents.
            yield AnswerEvent(done=True, answer=answer(refusal(language), supported=False))
            return
        # Sources past the context window's budget are left out of the prompt (the last first),
        # rather than letting llama.cpp cut the prompt's start, where the rules are.
        shown = sources_that_fit(generator, question, sources, self.settings.max_new_tokens, images=reads_images, asked=asked)
        messages = build_messages(question, shown, images=reads_images, asked=asked)
        if self.admission is not None:
            try:
                with closing(self.admission.turn()) as waiting:
                    for ahead in waiting:
                        yield AnswerEvent(done=False, answer=answer(""), ahead=ahead)
            except WaitedTooLong:
                if not evidence.extractable:
                    raise
                # The model never got to it, but the sources clearly answer: the quote is the answer.
                yield AnswerEvent(done=True, answer=settle(question, "", sources, evidence, answer, language))
                return
        try:
            partial = ""
            for piece in generator.stream(messages, max_new_tokens=self.settings.max_new_tokens):
                partial += piece
                yield AnswerEvent(done=False, answer=answer(partial))
            final = settle(question, partial, sources, evidence, answer, language, lambda text: self._translated(language, text))
            focus = self._focus(evidence, sources, final)
            if focus is not None:
                # Refused (or not supported) while one source holds a sentence covering the
                # question: a small model reading five sources often refuses what it answers
                # from that one alone. The second answer goes through the same checks. Streamed
                # below the first draft: every client appends what follows the text it has.
                first_draft, partial = partial.rstrip() + "\n\n", ""
                for piece in generator.stream(
                    build_messages(question, [focus], asked=asked), max_new_tokens=self.settings.max_new_tokens
                ):
                    partial += piece
                    yield AnswerEvent(done=False, answer=answer(first_draft + partial))
                final = settle(
                    question, partial, sources, evidence, answer, language, lambda text: self._translated(language, text)
                )
        finally:
            if self.admission is not None:
                self.admission.done()
        yield AnswerEvent(done=True, answer=final)

    def _focus(self, evidence: Evidence, sources: list[Source], final: Answer) -> Source | None:
        """The source to ask again from alone: the quote's, when the answer was refused and the
        quote (not strong enough to stand as the answer) covers the question."""
        if final.supported or not self.settings.focused_retry or evidence.quote is None or evidence.absent:
            return None
        if evidence.cross_lingual:
            return None
        return next((s for s in sources if s.number == evidence.quote.source_number and s.text), None)


def settle(
    question: str,
    generated: str,
    sources: list[Source],
    evidence: Evidence,
    answer,
    language: str = "en",
    translate=None,
) -> Answer:
    """The final answer from the generated text and the evidence: the model's answer where the
    sources support it and it gives what was asked; else the quote when the sources clearly
    answer (translated into the question's language by ``translate`` where it is in another,
    and the translation keeps its figures); else the refusal in the question's language."""
    checked = check_citations(generated, sources, question, evidence.documents)
    if checked.supported and gives_wanted_value(question, checked.text):
        text = checked.text
        if translate is not None and text_language(text) != language:
            # A checked answer in the sources' language rather than the asker's.
            translated = translate(_CITATION_MARKS_RE.sub("", text).strip())
            if translated:
                text = f"{translated} " + "".join(f"[{n}]" for n in checked.cited)
        return answer(text, cited=checked.cited, supported=True)
    if evidence.extractable:
        quote = evidence.quote
        text = quote_answer(quote)
        if translate is not None and text_language(quote.text) != language:
            translated = translate(" ".join(quote.text.split()))
            if translated:
                text = f"{translated} [{quote.source_number}]"
        return answer(text, cited=[quote.source_number], supported=True, extractive=True)
    return answer(refusal(language), supported=False)


@dataclass(frozen=True)
class AnswerEvent:
    done: bool
    answer: Answer
    # While waiting for the generator: how many answers are ahead of this one (None otherwise).
    ahead: int | None = None


def _diversify(ranked: list[RankedChunk], mmr_lambda: float, width: int, slot) -> list[RankedChunk]:
    """MMR over the ranked list by the chunks' stored text embeddings; scores stay the
    reranker's, so the refusal floor (on the first, always the best-ranked) is unchanged.
    slot(item) -> (offset, dim): each embedder's vectors fill their own columns of a `width`-wide
    row, so chunks of two embedders count as unrelated (their cosine would mean nothing)."""
    vectors = np.zeros((len(ranked), width), dtype=np.float32)
    for row, item in enumerate(ranked):
        if item.candidate.chunk.embedding:
            vector = np.frombuffer(item.candidate.chunk.embedding, dtype=np.float32)
            offset, dim = slot(item)
            if vector.shape[0] == dim:
                vectors[row, offset : offset + dim] = vector
    order = mmr_order([item.score for item in ranked], vectors, mmr_lambda)
    return [ranked[i] for i in order]


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
        heading_path=chunk.heading_path or "",
    )
