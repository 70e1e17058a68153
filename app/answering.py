"""The query path: dense + BM25 (+ CLIP) candidates fused by rank, reranked, grounded generation.

Retrieval runs as a retrieval.pipeline.QueryPipeline whose stages Answerer._pipeline lists;
the stages that need the database and indexes are in app.retrievers."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace

from sqlalchemy import select

from app.admission import Admission, WaitedTooLong
from app.db import Database
from app.generation.citations import check_citations
from app.generation.evidence import Evidence, find_evidence, gives_wanted_value, key_terms, quote_answer
from app.generation.prompting import build_messages, question_language, refusal, sources_that_fit
from app.indexes import IndexManager, KeywordIndexManager
from app.models import Chunk, Collection, Document
from app.registry import ScoreMap
from app.retrievers import ClipRetriever, DenseRetriever, KeywordRetriever, SqlCandidateLoader
from app.schemas import Answer, Source
from app.settings import Settings
from ingest.sentences import has_chinese, text_language
from rerank.base import Reranking
from retrieval.hyde import HydeWriter
from retrieval.mmr import MaximalMarginalRelevance
from retrieval.pipeline import Candidate, Prepare, Process, Query, QueryPipeline, Retrieve
from retrieval.query_steps import AlsoEmbedding, HydeExpansion, QueryEmbedding
from retrieval.vector_store import VectorHit

_CITATION_MARKS_RE = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
TRANSLATE_PROMPT = "Translate the user's question into English. Reply with the English question only."
TRANSLATION_PROMPTS = {
    "zh": "把用户给出的文字翻译成简体中文。数字、名称和代码照原文写。只回复译文。",
    "en": "Translate the user's text into English. Copy numbers, names and codes exactly. Reply with the translation only.",
}


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


def settings_options(settings: Settings, hyde: bool | None = None, mmr_lambda: float | None = None) -> RetrievalOptions:
    """The options a question gets under `settings` (Answerer.default_options), with per-request
    overrides: hyde True/False, mmr_lambda in [0, 1] (1 = off). It reads settings only, so the
    evaluation gets them without a database or indexes."""
    return RetrievalOptions(
        keyword=settings.hybrid_search,
        hyde=settings.hyde if hyde is None else hyde,
        rerank=True,
        mmr_lambda=settings.mmr_lambda if mmr_lambda is None else mmr_lambda,
    )


@dataclass
class Ranking:
    """Every candidate, best first, and how long each stage took (seconds)."""

    # Each with the reranker's score, or its query cosine (the prior) when the reranker is off.
    chunks: list[Candidate]
    timings: dict[str, float] = field(default_factory=dict)
    hypothetical_passage: str | None = None
    # The candidate chunk ids each source found before fusion, best first ("dense", "bm25", "clip").
    lists: dict[str, list[int]] = field(default_factory=dict)
    # CLIP's image-space hits for the question (None: CLIP not run), reused for the figures shown.
    image_hits: list[VectorHit] | None = None

    def sources(self, limit: int) -> list[Source]:
        """The first `limit` chunks as sources numbered from 1."""
        return [source(number, candidate) for number, candidate in enumerate(self.chunks[:limit], start=1)]


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
        # Candidates through the permission filter (the asker's collections, ready documents).
        self.loader = SqlCandidateLoader(database, self._score_map)

    def _score_map(self, name: str) -> ScoreMap:
        # Through self.models at call time: an Answerer built without models (a script that
        # only reads its options) never touches them.
        return self.models.score_map(name)

    def _write(self, messages) -> str:
        from app.generation.base import generate

        return generate(self.models.generator, messages, self.settings.hyde_max_new_tokens)

    def default_options(self, hyde: bool | None = None, mmr_lambda: float | None = None) -> RetrievalOptions:
        """Settings, with per-request overrides: hyde True/False, mmr_lambda in [0, 1] (1 = off)."""
        return settings_options(self.settings, hyde, mmr_lambda)

    def _translation(self, question: str) -> str | None:
        """The question in English when it is written in Chinese (one short generation), else None."""
        if not has_chinese(question):
            return None
        text = self._rewritten(TRANSLATE_PROMPT, question, 64)
        if not text or has_chinese(text):
            return None
        # A small model sometimes answers instead of translating ("... is 0.05 hectares"): a
        # figure the question does not hold would be searched for as if the user had asked it.
        return text if key_terms(text).numbers <= key_terms(question).numbers else None

    def _rewritten(self, instruction: str, text: str, max_new_tokens: int) -> str:
        """``text`` as the generator rewrites it under ``instruction`` (one short generation), on one line."""
        from app.generation.base import generate

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

    def _query(self, question: str, collections: list[Collection], depth: int | None, also: str | None) -> Query:
        # Collections by the embedder their vectors come from: the question is embedded once
        # per embedder, and each collection is searched with its own embedder's vector.
        groups: dict[str, list[int]] = {}
        for collection in collections:
            groups.setdefault(self.models.embedder_name(collection.text_embedder), []).append(collection.id)
        return Query(
            text=question,
            collection_ids=list({c.id: c for c in collections}),
            groups=groups,
            language=text_language(question),
            depth=depth or self.settings.rerank_top_n,
            also=also or None,
        )

    def _clip(self) -> ClipRetriever:
        return ClipRetriever(self.indexes, self.database, self.models.image_embedder, self.settings.min_image_score)

    def _pipeline(self, query: Query, options: RetrievalOptions) -> QueryPipeline:
        """The stages a question goes through, in order; one the options turn off is not listed.
        A new retriever or post-processor is one more line here."""
        settings, models = self.settings, self.models
        embedders = {name: models.text_embedder_for(name) for name in query.groups}
        steps: list[Prepare | Retrieve] = [Prepare("embed", QueryEmbedding(embedders))]
        if options.hyde:
            steps.append(Prepare("hyde", HydeExpansion(self.hyde, embedders)))
        steps.append(Retrieve("dense", DenseRetriever(self.indexes, self._score_map), settings.dense_top_k))
        if options.keyword:
            steps.append(Retrieve("bm25", KeywordRetriever(self.keyword_indexes), settings.keyword_top_k))
        if query.also:
            # The other wording's lists join the fusion (timed together as "translated").
            steps.append(Prepare("translated", AlsoEmbedding(embedders)))
            steps.append(
                Retrieve("translated", DenseRetriever(self.indexes, self._score_map, translated=True), settings.dense_top_k)
            )
            if options.keyword:
                steps.append(
                    Retrieve("translated", KeywordRetriever(self.keyword_indexes, translated=True), settings.keyword_top_k)
                )
        if options.image and models.image_embedder is not None:
            steps.append(Retrieve("clip", self._clip(), settings.image_top_k, deepen=False))
        processors: list[Process] = []
        if options.rerank:
            processors.append(Process("rerank", Reranking(models.reranker)))
        if options.mmr_lambda is not None and options.mmr_lambda < 1.0:
            processors.append(Process("mmr", MaximalMarginalRelevance(options.mmr_lambda), min_candidates=2))
        return QueryPipeline(steps, self.loader, processors, rrf_k=settings.rrf_k)

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
        if not collections:
            return Ranking([])
        query = self._query(question, collections, depth, also)
        result = self._pipeline(query, options).run(query)
        return Ranking(
            result.candidates,
            result.timings,
            hypothetical_passage=query.hypothetical_passage,
            lists=result.lists,
            image_hits=query.image_hits,
        )

    def retrieve(
        self, question: str, collections: list[Collection], options: RetrievalOptions | None = None, also: str | None = None
    ) -> tuple[list[Source], list[Source]]:
        """Text sources (reranked, best first) and figure sources for a question (see rank for `also`)."""
        collection_ids = list({c.id: c for c in collections})
        if not collection_ids:
            return [], []
        settings = self.settings
        ranking = self.rank(question, collections, options, also=also)
        text_sources = ranking.sources(settings.context_chunks)
        # Figures among the best text matches are shown; CLIP adds figures found by what they show.
        image_sources = [s for s in text_sources if s.kind == "image" and s.image_path]
        if self.models.image_embedder is not None:
            # The CLIP search rank() already ran for the fusion: its query is not embedded twice.
            image_hits = ranking.image_hits
            if image_hits is None:
                image_hits = self._clip().hits(question, collection_ids, settings.image_top_k)
            figures = self.loader.fetch([hit.chunk_id for hit in image_hits], collection_ids)
            shown = {s.image_path for s in image_sources}
            number = len(text_sources)
            for hit in image_hits:
                figure = figures.get(hit.chunk_id)
                if figure is None or hit.score < settings.min_image_score or figure.image_path in shown:
                    continue
                number += 1
                shown.add(figure.image_path)
                image_sources.append(source(number, replace(figure, score=hit.score)))
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
            from app.generation.followup import standalone_question

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

        def written(prompt, before: str = "") -> Generator[AnswerEvent, None, str]:
            # Each piece as the model writes it, after `before` (an earlier draft): every client
            # appends what follows the text it has.
            text = ""
            for piece in generator.stream(prompt, max_new_tokens=self.settings.max_new_tokens):
                text += piece
                yield AnswerEvent(done=False, answer=answer(before + text))
            return text

        def translate(text: str) -> str | None:
            return self._translated(language, text)

        try:
            partial = yield from written(messages)
            final = settle(question, partial, sources, evidence, answer, language, translate)
            focus = self._focus(evidence, sources, final)
            if focus is not None:
                # Refused (or not supported) while one source holds a sentence covering the
                # question: a small model reading five sources often refuses what it answers
                # from that one alone. The second answer goes through the same checks and is
                # streamed below the first draft.
                partial = yield from written(build_messages(question, [focus], asked=asked), partial.rstrip() + "\n\n")
                final = settle(question, partial, sources, evidence, answer, language, translate)
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
        assert quote is not None  # extractable requires a quote
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


def source(number: int, candidate: Candidate) -> Source:
    """A candidate as the numbered source shown to the model and to the user (its score as it is)."""
    return Source(
        number=number,
        chunk_id=candidate.chunk_id,
        collection=candidate.collection_name,
        filename=candidate.filename,
        page=candidate.page,
        kind=candidate.kind,
        text=candidate.text,
        score=candidate.score,
        image_path=candidate.image_path,
        heading_path=candidate.heading_path,
    )
