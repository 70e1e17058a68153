"""Query-path latency at scale: synthetic chunks, real query embedder, real BM25/FAISS/SQL/rerank.

    python benchmarks/query.py [--chunks 100000] [--queries 200] [--rerank-top N] [--modes hnsw] [--embedders A,B]

Chunk texts are synthetic (words drawn Zipf-like from the sample documents' vocabulary,
plus one part code per chunk); their vectors are random unit vectors, because embedding
100k chunks would take most of an hour on 2 CPU cores and latency does not depend on the
values. Queries are embedded by the real model. HyDE is off (it would add one generator
call per new question). Each FAISS mode (exact flat, HNSW) is measured on the same data.

--threads 1,2 measures each query once per torch thread count, interleaved (query 1 with 1
thread, then with 2, query 2 ...), so that both counts see the same machine load; the
default is the app's own choice (MMKB_MODEL_THREADS, else half the cores).

--embedders A,B,C does the same across packaged text embedders: one knowledge base per
embedder over the same chunk texts (random vectors of that embedder's width), each query
asked of every embedder in turn. The reranker and the depths are the settings' own (the
shipped lexical fusion over the top 40) unless --rerank-top or MMKB_* say otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import registry  # noqa: E402,F401 - hub libraries offline before any model import
from app.answering import RetrievalOptions  # noqa: E402
from app.indexes import TEXT_SPACE  # noqa: E402
from app.model_set import ModelSet  # noqa: E402
from app.models import Chunk, ChunkKind, Document, DocumentStatus  # noqa: E402
from app.service import KnowledgeBase  # noqa: E402
from app.settings import Settings, get_settings  # noqa: E402

STAGES = ("embed", "dense", "bm25", "fusion", "load", "rerank")
CHUNKS_PER_DOCUMENT = 100


def _vocabulary() -> list[str]:
    import pymupdf

    words: list[str] = []
    for pdf in sorted((ROOT / "samples" / "collection").glob("*.pdf")):
        with pymupdf.open(pdf) as document:
            words.extend(re.findall(r"[A-Za-z]{3,}", " ".join(page.get_text() for page in document)))
    return sorted(set(w.lower() for w in words))


def synthetic_corpus(n: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    vocabulary = _vocabulary()
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)
    weights /= weights.sum()
    codes = [f"{chr(65 + i % 26)}{chr(65 + (i // 26) % 26)}-{i:06d}" for i in range(n)]
    texts = []
    for i in range(n):
        words = rng.choice(len(vocabulary), size=60, p=weights)
        texts.append(" ".join(vocabulary[w] for w in words) + f" part {codes[i]}")
    return texts, codes


def populate(kb: KnowledgeBase, texts: list[str], vectors: np.ndarray) -> None:
    collection = kb.get_or_create_collection("bench")
    with kb.database.session() as session:
        for start in range(0, len(texts), CHUNKS_PER_DOCUMENT):
            document = Document(
                collection_id=collection.id,
                sha256=hashlib.sha256(str(start).encode()).hexdigest(),
                filename=f"doc-{start // CHUNKS_PER_DOCUMENT:05d}.pdf",
                status=DocumentStatus.ready,
                page_count=10,
            )
            session.add(document)
            session.flush()
            session.execute(
                insert(Chunk),
                [
                    {
                        "document_id": document.id,
                        "collection_id": collection.id,
                        "page": 1 + (i - start) // 10,
                        "kind": ChunkKind.text,
                        "ordinal": i - start,
                        "text": texts[i],
                        "vector_space": TEXT_SPACE,
                        "embedding": vectors[i].tobytes(),
                    }
                    for i in range(start, min(start + CHUNKS_PER_DOCUMENT, len(texts)))
                ],
            )


Timings = dict[tuple[str, int], dict[str, list[float]]]  # (embedder, torch threads) -> stage -> ms per query


def measure(kbs: dict[str, KnowledgeBase], queries: list[str], thread_counts: list[int]) -> Timings:
    """Stage timings per (embedder, torch thread count), interleaved query by query: query 1 with
    every embedder and count, then query 2 ..., so load drifts on the shared machine hit all alike.
    Each embedder first answers one unmeasured query (first-call costs: lazy index loads, caches)."""
    import torch

    options = RetrievalOptions(keyword=True, hyde=False, rerank=True)
    runs = {name: (kb._answerer(), kb.readable_collections(kb.system_user(), ["bench"])) for name, kb in kbs.items()}
    for answerer, collections in runs.values():
        answerer.rank("warm-up question about the travel policy", collections, options)
    timings: Timings = {(n, t): {"end to end": []} for n in kbs for t in thread_counts}
    for query in queries:
        for name, (answerer, collections) in runs.items():
            for threads in thread_counts:
                torch.set_num_threads(threads)
                started = time.perf_counter()
                ranking = answerer.rank(query, collections, options)
                timings[(name, threads)]["end to end"].append((time.perf_counter() - started) * 1000)
                for stage, seconds in ranking.timings.items():
                    timings[(name, threads)].setdefault(stage, []).append(seconds * 1000)
    return timings


def build(models: ModelSet, settings: Settings, texts: list[str], vectors: np.ndarray) -> tuple[KnowledgeBase, dict[str, float]]:
    """A knowledge base holding the synthetic corpus with `vectors`, its indexes built; build seconds per step."""
    kb = KnowledgeBase(settings, models=models)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    populate(kb, texts, vectors)
    seconds["sql"] = time.perf_counter() - started
    (collection,) = kb.readable_collections(kb.system_user(), ["bench"])
    started = time.perf_counter()
    kb.indexes.sync(collection.id, TEXT_SPACE)
    seconds["faiss"] = time.perf_counter() - started
    started = time.perf_counter()
    kb.keyword_indexes.segments(collection.id)
    seconds["bm25"] = time.perf_counter() - started
    started = time.perf_counter()
    kb.keyword_indexes.version(collection.id)
    seconds["signature_ms"] = (time.perf_counter() - started) * 1000
    seconds["hnsw"] = float(kb.indexes.store(collection.id, TEXT_SPACE).is_hnsw)
    return kb, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--rerank-top",
        type=int,
        default=None,
        help="candidates per list and for the reranker; default: the settings' own (shipped: 40)",
    )
    parser.add_argument("--modes", default="flat,hnsw", help="FAISS modes to measure: flat, hnsw or both")
    parser.add_argument("--threads", default="", help="torch thread counts to compare, interleaved, e.g. 1,2")
    parser.add_argument(
        "--embedders",
        default="",
        help="packaged text embedders to compare in one run, interleaved per query, e.g. "
        "all-MiniLM-L6-v2,multilingual-e5-small-q4,use-multilingual-v3; default: the configured one",
    )
    args = parser.parse_args()

    base = get_settings()
    names = [n.strip() for n in args.embedders.split(",") if n.strip()] or [base.text_embedder]
    model_sets = {}
    for name in names:
        # Each embedder as an admin would configure it (MMKB_TEXT_EMBEDDER); the other models are
        # the settings' own (the shipped lexical reranker unless MMKB_RERANKER_PATH is set).
        own = {"text_embedder": name, "text_embedder_path": None}
        settings = base if name == base.text_embedder else base.model_copy(update=own)
        model_sets[name] = ModelSet(settings)
        model_sets[name].text_embedder  # loading a torch one applies the app's thread choice
    import torch

    thread_counts = [int(t) for t in args.threads.split(",") if t] or [torch.get_num_threads()]
    depth = dict.fromkeys(("dense_top_k", "keyword_top_k", "rerank_top_n"), args.rerank_top) if args.rerank_top else {}
    rerank_top = args.rerank_top or base.rerank_top_n

    rng = np.random.default_rng(0)
    texts, codes = synthetic_corpus(args.chunks, rng)
    # Half the queries name a part code plus a few of its chunk's words, half are the known sample questions.
    import json

    questions = [q["question"] for q in json.loads((ROOT / "samples" / "questions.json").read_text())]
    picks = rng.choice(args.chunks, size=args.queries, replace=False)
    queries = [
        f"{' '.join(texts[i].split()[:4])} {codes[i]}" if n % 2 == 0 else questions[n % len(questions)]
        for n, i in enumerate(picks)
    ]
    vectors_by_dim: dict[int, np.ndarray] = {}
    for models in model_sets.values():
        dim = models.text_embedder.dim
        if dim not in vectors_by_dim:
            vectors = np.random.default_rng(dim).normal(size=(args.chunks, dim)).astype(np.float32)
            vectors_by_dim[dim] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    rows = []
    modes = [m for m in (("flat (exact)", 0), ("HNSW", min(50_000, args.chunks // 2))) if m[0].split()[0].lower() in args.modes]
    for mode, threshold in modes:
        with tempfile.TemporaryDirectory(prefix="mmkb-bench-") as tmp:
            kbs, builds = {}, {}
            for name, models in model_sets.items():
                update = {"data_dir": Path(tmp) / name, "database_url": None, "hnsw_threshold": threshold, **depth}
                kbs[name], builds[name] = build(
                    models, models.settings.model_copy(update=update), texts, vectors_by_dim[models.text_embedder.dim]
                )
                built = ", ".join(f"{k} {v:.1f}" for k, v in builds[name].items())
                print(f"built {mode} for {name}: {built}", file=sys.stderr, flush=True)
            timings = measure(kbs, queries, thread_counts)
            for kb in kbs.values():
                kb.close()
        rows.append((mode, builds, timings))

    reranker = "cross-encoder" if base.reranker_path else "lexical fusion"
    print(f"{args.chunks} chunks, {args.queries} queries, rerank top {rerank_top} ({reranker}), HyDE off\n")
    print("| FAISS | embedder | build: SQL rows / FAISS / BM25 (s) | BM25 freshness check (ms) |")
    print("| --- | --- | --- | --- |")
    for mode, builds, _ in rows:
        for name, b in builds.items():
            flag = "" if bool(b["hnsw"]) == (mode == "HNSW") else " (!)"
            print(f"| {mode}{flag} | {name} | {b['sql']:.1f} / {b['faiss']:.1f} / {b['bm25']:.1f} | {b['signature_ms']:.0f} |")
    stages = [s for s in STAGES if any(s in t for r in rows for t in r[-1].values())] + ["end to end"]
    print("\np50 / p95 ms per stage\n")
    print("| FAISS | embedder | torch threads | " + " | ".join(stages) + " |")
    print("| --- " * (len(stages) + 3) + "|")
    for mode, _, by_run in rows:
        for (name, threads), timings in by_run.items():
            cells = [f"{np.percentile(timings[s], 50):.1f} / {np.percentile(timings[s], 95):.1f}" for s in stages]
            print(f"| {mode} | {name} | {threads} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
