"""A million chunks: ingest into PostgreSQL, FAISS index types, filtered queries, a replica's catch-up.

    PYTHONPATH=. python benchmarks/scale.py --parts embedder,indexes,ingest,query,replica \
        [--chunks 1000000] [--sizes 10000,100000,1000000] [--hnsw-max 1000000] [--queries 200]

Parts (each prints a markdown table):

- ingest: --chunks synthetic chunks written through mmkb's row format (one ready Document per 100
  Chunk rows, the float32 embedding bytes in the row, the collection's index version bumped in
  the transaction) into a private PostgreSQL (tests/postgres.py), 10 collections of uneven size
  (40/20/10/10/5/5/4/3/2/1 %), one transaction per 10,000 chunks.
- embedder: the app's own text embedder (ModelSet.text_embedder, MMKB_TEXT_EMBEDDER) embedding
  chunk-sized texts in bfloat16 and float32, interleaved: the rate that ingest at scale would
  really be bound by (1M chunks are not embedded for real here).
- indexes: build time, RSS growth and serialized bytes per index type and size: flat and HNSW
  through VectorStore itself (the store's M/efConstruction/efSearch), IVF-PQ through
  faiss.index_factory; single-query latency (FAISS threads as the app sets them) interleaved
  across the types, and recall@10 against the exact flat search.
- query: a reader who may read 3 of the 10 collections (the largest, a 100k and a 30k one),
  searched through mmkb's own IndexManager + DenseRetriever (version check in SQL included),
  then KnowledgeBase.search (retrieval only, HyDE off) with the real query embedder.
- replica: two KnowledgeBase objects on one database and data directory, as two processes
  would have: the writer built and saved every index from SQL, the replica opened the files;
  then the writer adds 10,000 chunks to the largest collection and the replica's next search
  catches up (timed, with its RSS growth), compared with reading the whole index file again.

Vectors are synthetic but not uniform: a mixture of 2,000 random unit "topics", each vector
its topic plus Gaussian noise of about the same norm, normalised (cosine ~0.7 to its topic,
~0.5 between two of one topic). Uniform random vectors have no neighbourhoods, so an ANN
index's recall on them means nothing. Queries are held-out draws from the same mixture.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import faiss
import numpy as np
import psutil
from sqlalchemy import insert, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import registry  # noqa: E402,F401 - hub libraries offline before any model import
from app.indexes import TEXT_SPACE, bump_index_version  # noqa: E402
from app.models import Chunk, ChunkKind, Document, DocumentStatus, Role  # noqa: E402
from app.registry import IDENTITY  # noqa: E402
from app.retrievers import DenseRetriever  # noqa: E402
from app.service import KnowledgeBase  # noqa: E402
from app.settings import Settings, get_settings  # noqa: E402
from retrieval.dense import search_stores  # noqa: E402
from retrieval.pipeline import Query  # noqa: E402
from retrieval.vector_store import VectorHit, VectorStore  # noqa: E402

T = TypeVar("T")

DIM = 384  # all-MiniLM-L6-v2
TOPICS = 2000
SHARES = (0.40, 0.20, 0.10, 0.10, 0.05, 0.05, 0.04, 0.03, 0.02, 0.01)
CHUNKS_PER_DOCUMENT = 100
BATCH_CHUNKS = 10_000
WORDS_PER_CHUNK = 90  # about MMKB_CHUNK_TOKENS (128) word pieces
EMBEDDER = "all-MiniLM-L6-v2"


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _centers() -> np.ndarray:
    centers = np.random.default_rng(12345).normal(size=(TOPICS, DIM)).astype(np.float32)
    return centers / np.linalg.norm(centers, axis=1, keepdims=True)


CENTERS = _centers()


def mixture(n: int, seed: int) -> np.ndarray:
    """n unit vectors from the topic mixture (see the module's docstring), float32."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        topics = rng.integers(TOPICS, size=stop - start)
        block = CENTERS[topics] + rng.standard_normal((stop - start, DIM), dtype=np.float32) / np.sqrt(DIM)
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def vocabulary() -> list[str]:
    import re

    import pymupdf

    words: list[str] = []
    for pdf in sorted((ROOT / "samples" / "collection").glob("*.pdf")):
        with pymupdf.open(pdf) as document:
            words.extend(re.findall(r"[A-Za-z]{3,}", " ".join(page.get_text() for page in document)))
    return sorted(set(w.lower() for w in words))


def synthetic_texts(n: int, rng: np.random.Generator, words: list[str], offset: int) -> list[str]:
    weights = 1.0 / np.arange(1, len(words) + 1)
    picks = rng.choice(len(words), size=(n, WORDS_PER_CHUNK), p=weights / weights.sum())
    table = np.asarray(words, dtype=object)
    return [" ".join(table[row]) + f" part P-{offset + i:07d}" for i, row in enumerate(picks)]


def md_table(title: str, header: list[str], rows: list[list[str]]) -> str:
    lines = [f"\n{title}\n", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    out = "\n".join(lines)
    print(out, flush=True)
    return out


def log(message: str) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"[{time.strftime('%H:%M:%S')} load {load}] {message}", file=sys.stderr, flush=True)


@contextmanager
def faiss_threads(n: int) -> Iterator[None]:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


# --- the embedder ------------------------------------------------------------------------------


def part_embedder(base: Settings, texts: list[str], rounds: int) -> str:
    from app.model_set import ModelSet

    embedders = {}
    for precision in ("bfloat16", "float32"):
        models = ModelSet(base.model_copy(update={"embed_precision": precision, "text_embedder": EMBEDDER}))
        embedders[precision] = models.text_embedder
        embedders[precision].embed(texts[:32])  # warm-up
    auto = ModelSet(base.model_copy(update={"embed_precision": "auto", "text_embedder": EMBEDDER})).text_embedder
    tokens = embedders["float32"].count_tokens(texts)
    seconds: dict[str, list[float]] = {p: [] for p in embedders}
    for r in range(rounds):
        for precision, embedder in embedders.items():
            started = time.perf_counter()
            embedder.embed(texts)
            seconds[precision].append(time.perf_counter() - started)
            log(f"embed round {r} {precision}: {len(texts) / seconds[precision][-1]:.0f} chunks/s")
    import torch

    rows = []
    for precision, values in seconds.items():
        rate = len(texts) / statistics.median(values)
        rows.append(
            [
                precision + (" (the app's `auto` here)" if auto.bf16 == (precision == "bfloat16") else ""),
                f"{torch.get_num_threads()}",
                f"{rate:.0f}",
                f"{1_000_000 / rate / 3600:.1f}",
                " / ".join(f"{len(texts) / v:.0f}" for v in values),
            ]
        )
    return md_table(
        f"Embedder {EMBEDDER}: {len(texts)} chunk texts of {np.mean(tokens):.0f} tokens on average, "
        f"batch {base.embed_batch_size}, {rounds} interleaved rounds",
        ["precision", "torch threads", "chunks/s (median)", "hours for 1M chunks", "each round"],
        rows,
    )


# --- index types -------------------------------------------------------------------------------


def _ivf_spec(n: int, lists: int, sample: int) -> tuple[str, int] | None:
    """IVF-PQ where it can pay (50k vectors and up): `lists` inverted lists (0: 1024 up to 200k
    vectors, else 4096), trained on `sample` vectors (0: 50 per list)."""
    if n < 50_000:
        return None
    nlist = lists or (1024 if n <= 200_000 else 4096)
    return f"IVF{nlist},PQ48", min(n, sample or 50 * nlist)


def part_indexes(
    sizes: list[int], n_queries: int, hnsw_max: int, build_threads: int, query_threads: int, k: int, ivf_shape: tuple[int, int]
) -> str:
    data = mixture(max(sizes), seed=1)
    queries = mixture(n_queries, seed=2)
    rows: list[list[str]] = []
    latency_rows: list[list[str]] = []
    for n in sizes:
        x = data[:n]
        log(f"indexes at {n}")
        truth = None
        searchers: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        built: dict[str, dict[str, float]] = {}
        keep: list[object] = []
        with tempfile.TemporaryDirectory(prefix="mmkb-scale-") as tmp:
            for kind in ("flat", "HNSW"):
                if kind == "HNSW" and n > hnsw_max:
                    continue
                store = VectorStore(Path(tmp) / f"{kind}.faiss", DIM, hnsw_threshold=None if kind == "flat" else 0)
                before = rss_mb()
                started = time.perf_counter()
                with faiss_threads(build_threads):
                    store.add(list(range(n)), x)
                build_s = time.perf_counter() - started
                grew = rss_mb() - before
                store.save()
                size = store.path.stat().st_size
                started = time.perf_counter()
                faiss.read_index(str(store.path))
                read_s = time.perf_counter() - started
                store.path.unlink()
                assert store.is_hnsw == (kind == "HNSW")
                built[kind] = {"train": 0.0, "build": build_s, "rss": grew, "bytes": size, "read": read_s}
                searchers[kind] = partial(_store_ids, store, k)
                keep.append(store)
                log(f"{kind} {n}: {build_s:.1f} s, +{grew:.0f} MB RSS, {size / 2**20:.0f} MB file")
            spec = _ivf_spec(n, *ivf_shape)
            if spec is not None:
                factory, sample = spec
                before = rss_mb()
                index = faiss.index_factory(DIM, factory, faiss.METRIC_INNER_PRODUCT)
                started = time.perf_counter()
                with faiss_threads(build_threads):
                    index.train(x[np.random.default_rng(3).choice(n, size=sample, replace=False)])
                    train_s = time.perf_counter() - started
                    index.add_with_ids(x, np.arange(n, dtype=np.int64))  # IVF keeps ids in its lists: no IDMap
                build_s = time.perf_counter() - started
                grew = rss_mb() - before
                path = Path(tmp) / "ivfpq.faiss"
                faiss.write_index(index, str(path))
                size = path.stat().st_size
                started = time.perf_counter()
                faiss.read_index(str(path))
                read_s = time.perf_counter() - started
                built[factory] = {"train": train_s, "build": build_s, "rss": grew, "bytes": size, "read": read_s}
                log(f"{factory} {n}: train {train_s:.1f} s, total {build_s:.1f} s, +{grew:.0f} MB RSS")
                keep.append(index)
                ivf = faiss.extract_index_ivf(index)
                for nprobe in (16, 64):

                    def ivf_search(q: np.ndarray, nprobe: int = nprobe, ivf=ivf, index=index) -> np.ndarray:
                        ivf.nprobe = nprobe
                        return index.search(q.reshape(1, DIM), k)[1][0]

                    searchers[f"{factory} nprobe {nprobe}"] = ivf_search

                def rescored(q: np.ndarray, ivf=ivf, index=index, x=x) -> np.ndarray:
                    # 100 PQ candidates re-scored with their exact vectors: what mmkb's candidate
                    # loader already does with the embeddings it reads from SQL.
                    ivf.nprobe = 64
                    ids = index.search(q.reshape(1, DIM), 100)[1][0]
                    ids = ids[ids >= 0]
                    return ids[np.argsort(-(x[ids] @ q))][:k]

                searchers[f"{factory} nprobe 64 + exact re-score of 100"] = rescored
            # Interleaved: every query against every index in turn, so load drift hits all alike.
            times: dict[str, list[float]] = {name: [] for name in searchers}
            found: dict[str, list[np.ndarray]] = {name: [] for name in searchers}
            with faiss_threads(query_threads):
                for q in queries:
                    for name, search in searchers.items():
                        started = time.perf_counter()
                        ids = search(q)
                        times[name].append((time.perf_counter() - started) * 1000)
                        found[name].append(ids)
            truth = found["flat"]
            for name in searchers:
                base = name.split(" nprobe")[0]
                b = built[base]
                recall = np.mean([len(set(f[:10].tolist()) & set(t[:10].tolist())) / 10 for f, t in zip(found[name], truth)])
                latency_rows.append(
                    [f"{n:,}", name, f"{pct(times[name], 50):.2f}", f"{pct(times[name], 95):.2f}", f"{recall:.3f}"]
                )
                log(" | ".join(latency_rows[-1]))
            for name, b in built.items():
                rows.append(
                    [
                        f"{n:,}",
                        name,
                        f"{b['train']:.1f}" if b["train"] else "-",
                        f"{b['build']:.1f}",
                        f"{n / b['build']:,.0f}",
                        f"{b['rss']:.0f}",
                        f"{b['bytes'] / 2**20:.0f}",
                        f"{b['bytes'] / n:.0f}",
                        f"{b['read']:.2f}",
                    ]
                )
        del keep, searchers
    out = md_table(
        f"Index build ({build_threads} FAISS threads), {DIM}-d topic-mixture vectors",
        [
            "vectors",
            "index",
            "train (s)",
            "build incl. train (s)",
            "vectors/s",
            "RSS growth (MB)",
            "file (MB)",
            "bytes/vector",
            "read file (s)",
        ],
        rows,
    )
    out += md_table(
        f"One query at a time ({query_threads} FAISS thread), k={k}, {n_queries} held-out queries, "
        "interleaved across indexes; recall@10 against flat",
        ["vectors", "index", "p50 ms", "p95 ms", "recall@10"],
        latency_rows,
    )
    return out


# --- PostgreSQL: ingest, query, replica ---------------------------------------------------------


def collection_sizes(total: int) -> list[int]:
    sizes = [int(round(total * s)) for s in SHARES]
    sizes[0] += total - sum(sizes)
    return sizes


def write_chunks(kb: KnowledgeBase, collection_id: int, vectors: np.ndarray, texts: list[str], serial: int) -> None:
    """One transaction: len(vectors)/100 ready Documents and their Chunk rows, and the version bump."""
    with kb.database.session() as session:
        documents = [
            Document(
                collection_id=collection_id,
                sha256=hashlib.sha256(f"{collection_id}-{serial}-{d}".encode()).hexdigest(),
                filename=f"doc-{serial:05d}-{d:03d}.pdf",
                mime="application/pdf",
                size_bytes=200_000,
                status=DocumentStatus.ready,
                page_count=10,
            )
            for d in range((len(vectors) + CHUNKS_PER_DOCUMENT - 1) // CHUNKS_PER_DOCUMENT)
        ]
        session.add_all(documents)
        session.flush()
        session.execute(
            insert(Chunk),
            [
                {
                    "document_id": documents[i // CHUNKS_PER_DOCUMENT].id,
                    "collection_id": collection_id,
                    "page": 1 + (i % CHUNKS_PER_DOCUMENT) // 10,
                    "kind": ChunkKind.text,
                    "ordinal": i % CHUNKS_PER_DOCUMENT,
                    "text": texts[i],
                    "heading_path": "",
                    "vector_space": TEXT_SPACE,
                    "embedding": vectors[i].tobytes(),
                }
                for i in range(len(vectors))
            ],
        )
        bump_index_version(session, collection_id)


def part_ingest(kb: KnowledgeBase, total: int, words: list[str]) -> tuple[str, list[int]]:
    sizes = collection_sizes(total)
    ids = []
    rng = np.random.default_rng(7)
    write_s = make_s = 0.0
    serial = 0
    per_collection: list[list[str]] = []
    for c, size in enumerate(sizes):
        collection = kb.get_or_create_collection(f"c{c}-{size // 1000}k")
        ids.append(collection.id)
        started_collection = write_s
        for start in range(0, size, BATCH_CHUNKS):
            count = min(BATCH_CHUNKS, size - start)
            started = time.perf_counter()
            vectors = mixture(count, seed=1000 + serial)
            texts = synthetic_texts(count, rng, words, serial * BATCH_CHUNKS)
            make_s += time.perf_counter() - started
            started = time.perf_counter()
            write_chunks(kb, collection.id, vectors, texts, serial)
            write_s += time.perf_counter() - started
            serial += 1
        log(f"ingested {size} into collection {collection.id} ({size / (write_s - started_collection):.0f} rows/s)")
        per_collection.append([collection.name, f"{size:,}", f"{size / (write_s - started_collection):,.0f}"])
    with kb.database.session() as session:
        chunk_bytes = session.scalar(text("select pg_total_relation_size('chunks')"))
        db_bytes = session.scalar(text("select pg_database_size(current_database())"))
    out = md_table(
        f"Ingest into PostgreSQL: {total:,} chunks in {len(sizes)} collections "
        f"({', '.join(f'{s // 1000}k' for s in sizes)}), {BATCH_CHUNKS:,} chunks "
        f"({BATCH_CHUNKS // CHUNKS_PER_DOCUMENT} documents) per transaction",
        ["rows written", "write time (s)", "chunks/s", "making the synthetic rows (s, not counted)", "chunks table", "database"],
        [
            [
                f"{total:,}",
                f"{write_s:.0f}",
                f"{total / write_s:,.0f}",
                f"{make_s:.0f}",
                f"{chunk_bytes / 2**30:.2f} GiB",
                f"{db_bytes / 2**30:.2f} GiB",
            ]
        ],
    )
    out += md_table("Per collection", ["collection", "chunks", "chunks/s"], per_collection)
    return out, ids


def _store_ids(store: VectorStore, k: int, q: np.ndarray) -> np.ndarray:
    return np.asarray([hit.chunk_id for hit in store.search(q, k)])


def timed(fn: Callable[..., T], *args: Any) -> tuple[float, T]:
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def part_build(writer: KnowledgeBase, replica: KnowledgeBase, ids: list[int], sizes: list[int], build_threads: int) -> str:
    rows = []
    for collection_id, size in zip(ids, sizes):
        before = rss_mb()
        with faiss_threads(build_threads):
            seconds, _ = timed(writer.indexes.sync, collection_id, TEXT_SPACE)
        grew = rss_mb() - before
        store = writer.indexes.store(collection_id, TEXT_SPACE)
        size_mb = store.path.stat().st_size / 2**20
        before = rss_mb()
        open_s, _ = timed(replica.indexes.store, collection_id, TEXT_SPACE)
        open_grew = rss_mb() - before
        kind = "HNSW" if store.is_hnsw else "flat"
        log(f"collection {collection_id}: {kind} built in {seconds:.1f} s, replica opened in {open_s:.1f} s")
        rows.append(
            [
                f"{size:,}",
                kind,
                f"{seconds:.1f}",
                f"{grew:.0f}",
                f"{size_mb:.0f}",
                f"{open_s:.2f}",
                f"{open_grew:.0f}",
            ]
        )
    return md_table(
        f"Every collection's index built from SQL by the writer (IndexManager.sync: read the stored "
        f"embeddings, build, save; {build_threads} FAISS threads), then opened by the replica "
        "(read the file, check it against SQL's chunk ids)",
        [
            "chunks",
            "index (shipped rule)",
            "writer: build from SQL + save (s)",
            "writer RSS growth (MB)",
            "file (MB)",
            "replica: open + check (s)",
            "replica RSS growth (MB)",
        ],
        rows,
    )


def part_query(kb: KnowledgeBase, reader_collections: list[int], n_queries: int, k: int, words: list[str]) -> str:
    user = kb.ensure_user("reader3")
    with kb.database.session() as session:
        from app.models import Collection, Membership

        for cid in reader_collections:
            session.add(Membership(user_id=user.id, collection_id=cid, role=Role.reader))
        names = {c.id: c.name for c in session.query(Collection).filter(Collection.id.in_(reader_collections))}
    queries = mixture(n_queries, seed=2)
    dense = DenseRetriever(kb.indexes, lambda name: IDENTITY)
    timings: dict[str, list[float]] = {"permission filter (readable collections, SQL)": []}
    timings["index versions (SQL)"] = []
    timings["FAISS search of the 3 stores + merge"] = []
    timings["DenseRetriever.retrieve (versions + search)"] = []
    per_store: dict[int, list[float]] = {cid: [] for cid in reader_collections}
    for q in queries:
        seconds, readable = timed(kb.access.readable_collections, user)
        timings["permission filter (readable collections, SQL)"].append(seconds * 1000)
        cids = sorted(c.id for c in readable)
        assert cids == sorted(reader_collections)
        seconds, _ = timed(kb.indexes.versions, cids)
        timings["index versions (SQL)"].append(seconds * 1000)
        stores = kb.indexes.stores(cids, TEXT_SPACE, dim=DIM)
        seconds, _ = timed(search_stores, stores, q, k)
        timings["FAISS search of the 3 stores + merge"].append(seconds * 1000)
        for cid, store in zip(cids, stores):
            seconds, _ = timed(store.search, q, k)
            per_store[cid].append(seconds * 1000)
        query = Query(text="", collection_ids=cids, groups={EMBEDDER: cids}, language="en", depth=k, vectors={EMBEDDER: q})
        seconds, _ = timed(dense.retrieve, query, k)
        timings["DenseRetriever.retrieve (versions + search)"].append(seconds * 1000)
    rows = [[name, f"{pct(v, 50):.2f}", f"{pct(v, 95):.2f}"] for name, v in timings.items()]
    for cid, values in per_store.items():
        store = kb.indexes.store(cid, TEXT_SPACE)
        rows.append(
            [
                f"one store: {names[cid]} ({len(store):,}, {'HNSW' if store.is_hnsw else 'flat'})",
                f"{pct(values, 50):.2f}",
                f"{pct(values, 95):.2f}",
            ]
        )
    out = md_table(
        f"Dense retrieval for a user who may read 3 of the 10 collections ({', '.join(names.values())}), "
        f"k={k}, {n_queries} held-out queries, {faiss.omp_get_max_threads()} FAISS thread",
        ["step", "p50 ms", "p95 ms"],
        rows,
    )
    # The whole retrieval (KnowledgeBase.search: permission filter, embedding, dense, BM25, fusion,
    # loading candidates from PostgreSQL, the shipped rerank), HyDE off, real query embedder.
    rng = np.random.default_rng(11)
    questions = [" ".join(rng.choice(words, size=6)) for _ in range(max(10, n_queries // 4))]
    first_s, _ = timed(kb.search, user, questions[0], None, False)
    log(f"first KnowledgeBase.search (builds BM25 of the 3 collections): {first_s:.1f} s")
    totals = []
    for question in questions[1:]:
        seconds, _ = timed(kb.search, user, question, None, False)
        totals.append(seconds * 1000)
    out += md_table(
        "KnowledgeBase.search (retrieval only, HyDE off, shipped options: dense + BM25 + lexical rerank), "
        f"real {EMBEDDER} query embedding",
        ["", "value"],
        [
            ["first search (builds the BM25 indexes of the 3 collections)", f"{first_s:.1f} s"],
            [f"next {len(totals)} searches p50 / p95", f"{pct(totals, 50):.0f} / {pct(totals, 95):.0f} ms"],
        ],
    )
    return out


def part_replica(
    writer: KnowledgeBase, replica: KnowledgeBase, collection_id: int, new: int, k: int, words: list[str], with_bm25: bool
) -> str:
    rows = []
    q = mixture(1, seed=99)[0]
    store = replica.indexes.store(collection_id, TEXT_SPACE)
    before_n = len(store)

    def replica_search() -> list[VectorHit]:
        return search_stores(replica.indexes.stores([collection_id], TEXT_SPACE, dim=DIM), q, k)

    if with_bm25:
        seconds, _ = timed(replica.keyword_indexes.segments, collection_id)
        rows.append(
            ["replica: BM25 of the collection before the change (built now unless the query part did)", f"{seconds:.1f} s", "-"]
        )
    steady = []
    for _ in range(20):
        seconds, _ = timed(replica_search)
        steady.append(seconds * 1000)
    rows.append(["replica: a search before the change (p50 of 20)", f"{pct(steady, 50):.1f} ms", "-"])
    rng = np.random.default_rng(21)
    started = time.perf_counter()
    for serial in range(0, new, BATCH_CHUNKS):
        count = min(BATCH_CHUNKS, new - serial)
        write_chunks(
            writer,
            collection_id,
            mixture(count, seed=5000 + serial),
            synthetic_texts(count, rng, words, 9_000_000 + serial),
            90_000 + serial,
        )
    rows.append([f"writer: {new:,} chunk rows committed (+ version bump)", f"{time.perf_counter() - started:.1f} s", "-"])
    before = rss_mb()
    seconds, _ = timed(replica_search)
    rows.append(
        [
            f"replica: next search = catch-up ({before_n:,} -> {len(replica.indexes.store(collection_id, TEXT_SPACE)):,}) + search",
            f"{seconds:.2f} s",
            f"{rss_mb() - before:+.0f}",
        ]
    )
    after = []
    for _ in range(20):
        seconds, _ = timed(replica_search)
        after.append(seconds * 1000)
    rows.append(["replica: a search after (p50 of 20)", f"{pct(after, 50):.1f} ms", "-"])
    # The catch-up's steps, timed again on their own (they only read).
    manager = replica.indexes
    seconds, ready = timed(manager._ready_ids, collection_id, TEXT_SPACE)
    rows.append([f"  step: SQL's ready chunk ids of the collection ({len(ready):,})", f"{seconds:.2f} s", "-"])
    seconds, indexed = timed(manager.store(collection_id, TEXT_SPACE).ids)
    rows.append(["  step: the index's ids as a set", f"{seconds:.2f} s", "-"])
    newest = sorted(ready)[-new:]
    seconds, _ = timed(manager._vectors, DIM, set(newest))
    rows.append([f"  step: read {new:,} stored embeddings from SQL", f"{seconds:.2f} s", "-"])
    ids, vectors = manager._vectors(DIM, set(newest))
    copy = faiss.clone_index(manager.store(collection_id, TEXT_SPACE).index)
    if manager.store(collection_id, TEXT_SPACE).is_hnsw:
        # the same vectors again under other ids, into a copy: the graph insertion alone
        shifted = np.asarray(ids, dtype=np.int64) + 10**12
        seconds, _ = timed(copy.add_with_ids, vectors, shifted)
        rows.append([f"  step: add {new:,} vectors to the HNSW graph (into a copy)", f"{seconds:.2f} s", "-"])
    # The writer saves its index (it catches up the same way first), then the alternative a
    # replica could take: read the whole file again.
    seconds, _ = timed(writer.indexes.sync, collection_id, TEXT_SPACE)
    path = writer.indexes.path(collection_id, TEXT_SPACE)
    rows.append([f"writer: IndexManager.sync (catch-up + save {path.stat().st_size / 2**20:.0f} MB)", f"{seconds:.2f} s", "-"])
    before = rss_mb()
    fresh = VectorStore(path, DIM, hnsw_threshold=writer.indexes.hnsw_threshold)
    seconds, _ = timed(lambda: fresh.index)
    rows.append(["alternative: read the whole index file again", f"{seconds:.2f} s", f"{rss_mb() - before:+.0f}"])
    assert fresh.ids() == replica.indexes.store(collection_id, TEXT_SPACE).ids()
    if with_bm25:
        before = rss_mb()
        seconds, segments = timed(replica.keyword_indexes.segments, collection_id)
        rows.append(
            [
                f"replica: BM25 catch-up (the {new:,} new chunks' texts read and indexed as a segment; {len(segments)} segments)",
                f"{seconds:.2f} s",
                f"{rss_mb() - before:+.0f}",
            ]
        )
        replica.keyword_indexes.drop_collection(collection_id)
        seconds, _ = timed(replica.keyword_indexes.segments, collection_id)
        rows.append(["alternative: BM25 of the whole collection rebuilt from SQL (the old catch-up)", f"{seconds:.1f} s", "-"])
    return md_table(
        f"A replica's catch-up after {new:,} new chunks in the largest collection ({faiss.omp_get_max_threads()} FAISS thread)",
        ["step", "time", "RSS change (MB)"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="embedder,indexes,ingest,query,replica")
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--hnsw-max", type=int, default=1_000_000, help="largest size to build a bare HNSW at (indexes part)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--new", type=int, default=10_000, help="chunks the writer adds for the replica part")
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--ivf-lists", type=int, default=0, help="IVF lists at every size (0: 1024 up to 200k, else 4096)")
    parser.add_argument("--ivf-sample", type=int, default=0, help="IVF-PQ training vectors (0: 50 per list)")
    parser.add_argument("--embed-texts", type=int, default=256)
    parser.add_argument("--out", type=Path, default=None, help="also append the tables to this file")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    base = get_settings()
    k = base.dense_top_k
    query_threads = max(1, (os.cpu_count() or 1) // 2) if base.faiss_threads is None else base.faiss_threads
    faiss.omp_set_num_threads(query_threads)
    outputs = [f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}"]
    words = vocabulary()

    def emit(table: str) -> None:
        outputs.append(table)
        if args.out:
            with args.out.open("a") as handle:
                handle.write(table + "\n")

    if "embedder" in parts:
        texts = synthetic_texts(args.embed_texts, np.random.default_rng(5), words, 0)
        emit(part_embedder(base, texts, rounds=3))
    if "indexes" in parts:
        sizes = [int(s) for s in args.sizes.split(",")]
        emit(
            part_indexes(
                sizes, args.queries, args.hnsw_max, args.build_threads, query_threads, k, (args.ivf_lists, args.ivf_sample)
            )
        )
    if parts & {"ingest", "query", "replica"}:
        from tests.postgres import running_postgres

        with running_postgres() as url, tempfile.TemporaryDirectory(prefix="mmkb-scale-") as tmp:
            update = {"database_url": url, "data_dir": Path(tmp), "text_embedder": EMBEDDER, "image_embedder": "none"}
            settings = base.model_copy(update=update)
            writer = KnowledgeBase(settings)
            table, ids = part_ingest(writer, args.chunks, words)
            emit(table)
            sizes = collection_sizes(args.chunks)
            replica = KnowledgeBase(settings, models=writer.models)  # another IndexManager, as another process has
            writer.indexes, replica.indexes  # noqa: B018 - opened (FAISS threads set) before the timed builds
            faiss.omp_set_num_threads(query_threads)
            if parts & {"query", "replica"}:
                emit(part_build(writer, replica, ids, sizes, args.build_threads))
            if "query" in parts:
                emit(part_query(replica, [ids[0], ids[2], ids[7]], args.queries, k, words))
            if "replica" in parts:
                emit(part_replica(writer, replica, ids[0], args.new, k, words, with_bm25=True))
            replica.close()
            writer.close()
    outputs.append(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n" + outputs[0] + "\n" + outputs[-1])
    print(json.dumps({"ok": True}), file=sys.stderr)


if __name__ == "__main__":
    main()
