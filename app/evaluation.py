"""Retrieval evaluation on a BEIR-format set: `kb eval retrieval --data DIR`.

The corpus is written straight into a temporary knowledge base as Document + Chunk rows
(chunked and embedded like ingested pages, no PDF parsing), then each query is ranked with
stages switched on and off. Metrics are per corpus document: a document's rank is that of
its best chunk. Relevance comes from qrels/test.tsv (score > 0 is relevant; nDCG uses the
score as the gain).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.answering import RetrievalOptions
from app.indexes import TEXT_SPACE
from app.models import Chunk, ChunkKind, Document, DocumentStatus
from app.settings import Settings
from ingest.chunking import chunk_pages
from ingest.types import PageText

CUTOFFS = (1, 5, 10, 100)
EVAL_COLLECTION = "eval"


@dataclass(frozen=True)
class BeirSet:
    corpus: dict[str, tuple[str, str]]  # _id -> (title, text)
    queries: dict[str, str]  # _id -> text
    qrels: dict[str, dict[str, int]]  # query id -> {corpus id: relevance}


@dataclass(frozen=True)
class EvalConfig:
    name: str
    options: RetrievalOptions


CONFIGS = (
    EvalConfig("dense only", RetrievalOptions(keyword=False, hyde=False, rerank=False)),
    EvalConfig("+ BM25 fusion", RetrievalOptions(keyword=True, hyde=False, rerank=False)),
    EvalConfig("+ HyDE", RetrievalOptions(keyword=False, hyde=True, rerank=False)),
    EvalConfig("+ rerank", RetrievalOptions(keyword=False, hyde=False, rerank=True)),
    EvalConfig("all", RetrievalOptions(keyword=True, hyde=True, rerank=True)),
)


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


def index_corpus(kb, beir: BeirSet, batch: int = 256) -> int:
    """Documents and chunks straight into SQL (one Document per corpus entry, named by its
    _id), embedded in batches, then the FAISS index synced. Returns the chunk count."""
    collection = kb.get_or_create_collection(EVAL_COLLECTION)
    embedder = kb.models.text_embedder
    settings = kb.settings
    max_tokens = min(settings.chunk_tokens, embedder.max_tokens - 8)
    items = list(beir.corpus.items())
    total = 0
    for start in range(0, len(items), batch):
        pieces: list[tuple[str, object]] = []
        for doc_id, (title, text) in items[start : start + batch]:
            body = f"{title}\n{text}".strip() if title else text
            for piece in chunk_pages([PageText(1, body)], embedder.count_tokens, max_tokens, settings.chunk_overlap_tokens):
                pieces.append((doc_id, piece))
        vectors = embedder.embed([piece.text for _, piece in pieces])
        with kb.database.session() as session:
            documents = {}
            for doc_id, (title, text) in items[start : start + batch]:
                document = Document(
                    collection_id=collection.id, sha256=hashlib.sha256(doc_id.encode()).hexdigest(), filename=doc_id,
                    mime="text/plain", size_bytes=len(text.encode()), status=DocumentStatus.ready, page_count=1,
                )
                session.add(document)
                documents[doc_id] = document
            session.flush()
            session.add_all(
                Chunk(document_id=documents[doc_id].id, collection_id=collection.id, page=1, kind=ChunkKind.text,
                      ordinal=piece.ordinal, text=piece.text, char_start=piece.char_start, char_end=piece.char_end,
                      vector_space=TEXT_SPACE, embedding=np.asarray(vector, dtype=np.float32).tobytes())
                for (doc_id, piece), vector in zip(pieces, vectors)
            )
        total += len(pieces)
    kb.indexes.sync(collection.id, TEXT_SPACE)
    return total


def _ndcg(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sum(gain / math.log2(i + 2) for i, gain in enumerate(sorted(relevant.values(), reverse=True)[:k]))
    return dcg / ideal if ideal else 0.0


def score_ranking(ranked: list[str], relevant: dict[str, int]) -> dict[str, float]:
    metrics = {f"R@{k}": len(set(ranked[:k]) & set(relevant)) / len(relevant) for k in CUTOFFS}
    metrics["MRR@10"] = next((1.0 / (i + 1) for i, doc in enumerate(ranked[:10]) if doc in relevant), 0.0)
    metrics["nDCG@10"] = _ndcg(ranked, relevant, 10)
    return metrics


def run_retrieval_eval(
    data: Path, models, limit: int | None = None, configs: tuple[EvalConfig, ...] = CONFIGS, depth: int = 100
) -> EvalReport:
    beir = load_beir(data)
    query_ids = sorted(beir.queries)[:limit] if limit else sorted(beir.queries)
    with tempfile.TemporaryDirectory(prefix="mmkb-eval-") as tmp:
        from app.service import KnowledgeBase

        # Candidate lists as deep as the deepest cutoff, so recall@100 means something.
        settings = Settings(data_dir=Path(tmp), database_url=None, dense_top_k=depth, keyword_top_k=depth, rerank_top_n=depth)
        kb = KnowledgeBase(settings, models=models)
        try:
            started = time.perf_counter()
            chunks = index_corpus(kb, beir)
            index_seconds = time.perf_counter() - started
            collections = kb.readable_collections(kb.system_user(), [EVAL_COLLECTION])
            answerer = kb._answerer()
            results = []
            for config in configs:
                result = ConfigResult(config.name, {})
                sums: dict[str, float] = {}
                for qid in query_ids:
                    started = time.perf_counter()
                    ranking = answerer.rank(beir.queries[qid], collections, config.options, depth=depth)
                    result.total_ms.append((time.perf_counter() - started) * 1000)
                    for stage, seconds in ranking.timings.items():
                        result.stage_ms.setdefault(stage, []).append(seconds * 1000)
                    ranked: list[str] = []
                    for chunk in ranking.chunks:
                        name = chunk.candidate.document.filename
                        if name not in ranked:
                            ranked.append(name)
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
        lines.append(f"| {result.name} | " + " | ".join(cells) + f" | {_p(result.total_ms, 50):.0f} | {_p(result.total_ms, 95):.0f} |")
    stages = ["embed", "hyde", "dense", "bm25", "clip", "fusion", "load", "rerank"]
    present = [s for s in stages if any(s in r.stage_ms for r in report.results)]
    lines += ["", "latency per stage, p50 / p95 ms (HyDE: a cached passage costs ~0; the first config with HyDE pays)", "",
              "| config | " + " | ".join(present) + " |", "| --- " * (len(present) + 1) + "|"]
    for result in report.results:
        cells = [f"{_p(result.stage_ms[s], 50):.1f} / {_p(result.stage_ms[s], 95):.1f}" if s in result.stage_ms else "–" for s in present]
        lines.append(f"| {result.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
