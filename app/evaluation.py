"""Retrieval evaluation on a BEIR-format set: `kb eval retrieval --data DIR`.

The corpus is written straight into a temporary knowledge base as Document + Chunk rows
(chunked and embedded like ingested pages, no PDF parsing), then each query is ranked with
stages switched on and off. Metrics are per corpus document: a document's rank is that of
its best chunk. Relevance comes from qrels/test.tsv (score > 0 is relevant; nDCG uses the
score as the gain).

Rows: `default` is what a user gets, the options and depths the settings define (the same
`Answerer.default_options` a real question goes through); `BM25 only` is the standard
baseline; the others switch single stages on and off at depth 100, so that recall@100 means
something.
"""

from __future__ import annotations

import csv
import hashlib
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.answering import Answerer, RetrievalOptions, settings_options
from app.indexes import TEXT_SPACE, bump_index_version
from app.models import Chunk, ChunkKind, Document, DocumentStatus
from app.ranking_metrics import CUTOFFS, score_ranking
from app.settings import Settings
from ingest.chunking import chunk_pages
from ingest.types import PageText, TextChunk
from retrieval.keyword import search_keyword

EVAL_COLLECTION = "eval"


@dataclass(frozen=True)
class BeirSet:
    corpus: dict[str, tuple[str, str]]  # _id -> (title, text)
    queries: dict[str, str]  # _id -> text
    qrels: dict[str, dict[str, int]]  # query id -> {corpus id: relevance}


DEFAULT = "default"
BM25_ONLY = "BM25 only"


@dataclass(frozen=True)
class EvalConfig:
    name: str
    options: RetrievalOptions
    # "bm25": the collection's BM25 index alone, no embedding (options unused).
    retriever: str = "pipeline"
    # The settings this row runs with, depths included (the `default` row); None = the
    # evaluation's own, with every candidate list as deep as the deepest cutoff.
    settings: Settings | None = None


def shipped_options(settings: Settings) -> RetrievalOptions:
    """The options a real question gets under `settings`: what Answerer.default_options
    returns (settings_options, which reads settings only), not a copy of its rules."""
    return settings_options(settings)


def default_config(settings: Settings) -> EvalConfig:
    """The `default` row: exactly the shipped configuration as `settings` define it."""
    return EvalConfig(DEFAULT, shipped_options(settings), settings=settings)


CONFIGS = (
    EvalConfig(BM25_ONLY, RetrievalOptions(keyword=True, hyde=False, rerank=False), retriever="bm25"),
    EvalConfig("dense only", RetrievalOptions(keyword=False, hyde=False, rerank=False)),
    EvalConfig("+ BM25 fusion", RetrievalOptions(keyword=True, hyde=False, rerank=False)),
    EvalConfig("+ HyDE", RetrievalOptions(keyword=False, hyde=True, rerank=False)),
    EvalConfig("+ rerank", RetrievalOptions(keyword=False, hyde=False, rerank=True)),
    EvalConfig("all", RetrievalOptions(keyword=True, hyde=True, rerank=True)),
)


def select_configs(settings: Settings, names: str | list[str] | None = None, skip_hyde: bool = False) -> tuple[EvalConfig, ...]:
    """The rows to run, in the order given (comma-separated names, case-insensitive);
    None = `default` and every other row. An unknown name raises ValueError listing the known."""
    every = (default_config(settings),) + CONFIGS
    if names is None:
        chosen = list(every)
    else:
        wanted = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        by_name = {c.name.lower(): c for c in every}
        unknown = [n for n in wanted if n and n.lower() not in by_name]
        if unknown:
            raise ValueError(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(c.name for c in every)}")
        chosen = [by_name[n.lower()] for n in wanted if n]
    if skip_hyde:
        chosen = [c for c in chosen if not (c.retriever == "pipeline" and c.options.hyde)]
    return tuple(chosen)


@dataclass
class ConfigResult:
    name: str
    metrics: dict[str, float]
    stage_ms: dict[str, list[float]] = field(default_factory=dict)  # per query, per stage
    total_ms: list[float] = field(default_factory=list)


@dataclass
class EvalReport:
    dataset: str
    documents: int
    chunks: int
    queries: int
    index_seconds: float
    results: list[ConfigResult]


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_beir(directory: Path, split: str = "test") -> BeirSet:
    corpus = {str(row["_id"]): (row.get("title") or "", row.get("text") or "") for row in _read_jsonl(directory / "corpus.jsonl")}
    queries = {str(row["_id"]): row["text"] for row in _read_jsonl(directory / "queries.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    with (directory / "qrels" / f"{split}.tsv").open(encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader, None)  # header: query-id corpus-id score
        for row in reader:
            if len(row) >= 3 and int(row[2]) > 0:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    # Only queries with a judgement can be scored.
    return BeirSet(corpus, {qid: text for qid, text in queries.items() if qid in qrels}, qrels)


def _corpus_pieces(beir: BeirSet, embedder, settings: Settings) -> list[tuple[str, TextChunk]]:
    max_tokens = min(settings.chunk_tokens, embedder.max_tokens - 8)
    pieces: list[tuple[str, TextChunk]] = []
    for doc_id, (title, text) in beir.corpus.items():
        body = f"{title}\n{text}".strip() if title else text
        for piece in chunk_pages([PageText(1, body)], embedder.count_tokens, max_tokens, settings.chunk_overlap_tokens):
            pieces.append((doc_id, piece))
    return pieces


def _embeddings(embedder, texts: list[str], cache_dir: Path | None, batch: int) -> np.ndarray:
    """The texts' vectors, read from `cache_dir` when an earlier run of the same embedder
    wrote them for the same texts (keyed by the embedder's name and a hash of the texts)."""
    path = None
    if cache_dir is not None:
        digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
        name = "".join(
            ch if ch.isalnum() or ch in "-_." else "_" for ch in str(getattr(embedder, "name", type(embedder).__name__))
        )
        path = Path(cache_dir) / f"{name}-{digest}.npy"
        if path.exists():
            vectors = np.load(path)
            if vectors.shape == (len(texts), embedder.dim):
                return vectors
    parts = [embedder.embed(texts[start : start + batch]) for start in range(0, len(texts), batch)]
    vectors = np.vstack(parts).astype(np.float32) if parts else np.zeros((0, embedder.dim), dtype=np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors


def index_corpus(kb, beir: BeirSet, batch: int = 256, cache_dir: Path | None = None) -> int:
    """Documents and chunks straight into SQL (one Document per corpus entry, named by its
    _id), embedded in batches (or read from `cache_dir`), then the FAISS index synced.
    Returns the chunk count."""
    collection = kb.get_or_create_collection(EVAL_COLLECTION)
    embedder = kb.models.text_embedder
    pieces = _corpus_pieces(beir, embedder, kb.settings)
    vectors = _embeddings(embedder, [piece.text for _, piece in pieces], cache_dir, batch)
    items = list(beir.corpus.items())
    by_doc: dict[str, list[int]] = {}
    for row, (doc_id, _) in enumerate(pieces):
        by_doc.setdefault(doc_id, []).append(row)
    for start in range(0, len(items), batch):
        with kb.database.session() as session:
            documents = {}
            for doc_id, (_title, text) in items[start : start + batch]:
                document = Document(
                    collection_id=collection.id,
                    sha256=hashlib.sha256(doc_id.encode()).hexdigest(),
                    filename=doc_id,
                    mime="text/plain",
                    size_bytes=len(text.encode()),
                    status=DocumentStatus.ready,
                    page_count=1,
                )
                session.add(document)
                documents[doc_id] = document
            session.flush()
            session.add_all(
                Chunk(
                    document_id=documents[doc_id].id,
                    collection_id=collection.id,
                    page=1,
                    kind=ChunkKind.text,
                    ordinal=pieces[row][1].ordinal,
                    text=pieces[row][1].text,
                    char_start=pieces[row][1].char_start,
                    char_end=pieces[row][1].char_end,
                    vector_space=TEXT_SPACE,
                    embedding=np.asarray(vectors[row], dtype=np.float32).tobytes(),
                )
                for doc_id in documents
                for row in by_doc.get(doc_id, [])
            )
            bump_index_version(session, collection.id)
    kb.indexes.sync(collection.id, TEXT_SPACE)
    return len(pieces)


def _bm25_ranking(answerer: Answerer, question: str, collections, depth: int) -> tuple[list[str], dict[str, float]]:
    """Document names best first from the collections' BM25 indexes alone, and the stage timings."""
    started = time.perf_counter()
    hits = search_keyword(answerer.keyword_indexes.indexes([c.id for c in collections]), question, depth)
    searched = time.perf_counter()
    found = answerer.loader.fetch([hit.chunk_id for hit in hits], [c.id for c in collections])
    names = [found[hit.chunk_id].filename for hit in hits if hit.chunk_id in found]
    return names, {"bm25": searched - started, "load": time.perf_counter() - searched}


def run_retrieval_eval(
    data: Path,
    models,
    limit: int | None = None,
    configs: tuple[EvalConfig, ...] | None = None,
    depth: int = 100,
    settings: Settings | None = None,
    cache_dir: Path | None = None,
) -> EvalReport:
    """Every row of `configs` (default: `default` and the rest) over the set's judged queries.

    settings: what the user runs (chunking, depths, fusion; default Settings()); the corpus is
    indexed under them into a temporary directory. cache_dir: keep the corpus embeddings there
    and reuse them in a later run of the same embedder."""
    base = settings or Settings()
    configs = configs if configs is not None else select_configs(base)
    beir = load_beir(data)
    query_ids = sorted(beir.queries)[:limit] if limit else sorted(beir.queries)
    with tempfile.TemporaryDirectory(prefix="mmkb-eval-") as tmp:
        from app.service import KnowledgeBase

        # Candidate lists as deep as the deepest cutoff, so recall@100 means something.
        eval_settings = base.model_copy(
            update={
                "data_dir": Path(tmp),
                "database_url": None,
                "dense_top_k": depth,
                "keyword_top_k": depth,
                "rerank_top_n": depth,
            }
        )
        kb = KnowledgeBase(eval_settings, models=models)
        try:
            started = time.perf_counter()
            chunks = index_corpus(kb, beir, cache_dir=cache_dir)
            index_seconds = time.perf_counter() - started
            collections = kb.readable_collections(kb.system_user(), [EVAL_COLLECTION])
            answerer = kb._answerer()
            results = []
            for config in configs:
                result = ConfigResult(config.name, {})
                sums: dict[str, float] = {}
                # A row with its own settings (the shipped depths and fusion) gets an answerer of its own.
                ranker = answerer
                row_depth: int | None = depth
                if config.settings is not None:
                    ranker = Answerer(config.settings, kb.database, kb.indexes, kb.models, kb.keyword_indexes, kb.hyde)
                    row_depth = None  # the settings' rerank_top_n, as for a real question
                for qid in query_ids:
                    started = time.perf_counter()
                    if config.retriever == "bm25":
                        ranked, timings = _bm25_ranking(answerer, beir.queries[qid], collections, depth)
                    else:
                        ranking = ranker.rank(beir.queries[qid], collections, config.options, depth=row_depth)
                        timings = ranking.timings
                        ranked = [candidate.filename for candidate in ranking.chunks]
                    result.total_ms.append((time.perf_counter() - started) * 1000)
                    for stage, seconds in timings.items():
                        result.stage_ms.setdefault(stage, []).append(seconds * 1000)
                    ranked = list(dict.fromkeys(ranked))  # a document's rank is that of its best chunk
                    for metric, value in score_ranking(ranked, beir.qrels[qid]).items():
                        sums[metric] = sums.get(metric, 0.0) + value
                result.metrics = {metric: value / max(len(query_ids), 1) for metric, value in sums.items()}
                results.append(result)
        finally:
            kb.close()
    return EvalReport(str(data), len(beir.corpus), chunks, len(query_ids), index_seconds, results)


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def format_report(report: EvalReport) -> str:
    metric_names = [f"R@{k}" for k in CUTOFFS] + ["MRR@10", "nDCG@10"]
    lines = [
        f"{report.dataset}: {report.documents} documents, {report.chunks} chunks, {report.queries} queries "
        f"(indexed in {report.index_seconds:.1f} s)",
        "",
        "| config | " + " | ".join(metric_names) + " | p50 ms | p95 ms |",
        "| --- " * (len(metric_names) + 3) + "|",
    ]
    for result in report.results:
        cells = [f"{result.metrics.get(m, 0.0):.3f}" for m in metric_names]
        lines.append(
            f"| {result.name} | " + " | ".join(cells) + f" | {_p(result.total_ms, 50):.0f} | {_p(result.total_ms, 95):.0f} |"
        )
    if any(r.name == DEFAULT for r in report.results):
        lines += ["", "`default` runs the settings' own depths (MMKB_RERANK_TOP_N candidates), so its R@100 counts only those."]
    stages = ["embed", "hyde", "dense", "bm25", "translated", "clip", "fusion", "load", "rerank", "mmr"]
    present = [s for s in stages if any(s in r.stage_ms for r in report.results)]
    lines += [
        "",
        "latency per stage, p50 / p95 ms (HyDE: a cached passage costs ~0; the first config with HyDE pays)",
        "",
        "| config | " + " | ".join(present) + " |",
        "| --- " * (len(present) + 1) + "|",
    ]
    for result in report.results:
        cells = [
            f"{_p(result.stage_ms[s], 50):.1f} / {_p(result.stage_ms[s], 95):.1f}" if s in result.stage_ms else "–"
            for s in present
        ]
        lines.append(f"| {result.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
