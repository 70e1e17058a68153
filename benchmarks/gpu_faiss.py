"""FAISS search on CPU versus GPU at 100k and 1M vectors (384-d, MiniLM's size).

    python benchmarks/gpu_faiss.py [--sizes 100000,1000000] [--queries 200] [--k 50]

Random unit vectors, inner product, the store's real index types: CPU exact flat, CPU HNSW
(the store's choice above MMKB_HNSW_THRESHOLD; its build is slow, so only with --hnsw), and
GPU exact flat (``index_cpu_to_gpu``; the GPU has no HNSW). Queries go one at a time, as the
query path sends them, and also as one batch. Without GPU FAISS it says so and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.gpu import GpuResources, gpu_faiss_available, why_no_gpu  # noqa: E402
from retrieval.vector_store import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M  # noqa: E402


def _unit(rows: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.standard_normal((rows, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def _time(index, queries: np.ndarray, k: int) -> tuple[float, float, float]:
    """p50 / p95 ms of single-query searches and ms per query of one batched search."""
    index.search(queries[:1], k)  # warm-up (GPU kernels, caches)
    single = []
    for query in queries:
        started = time.perf_counter()
        index.search(query[None, :], k)
        single.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    index.search(queries, k)
    batched = (time.perf_counter() - started) * 1000 / len(queries)
    return float(np.percentile(single, 50)), float(np.percentile(single, 95)), batched


def main() -> int:
    import faiss

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--hnsw", action="store_true", help="also build and time CPU HNSW (minutes at 1M)")
    args = parser.parse_args()

    if not gpu_faiss_available():
        print(f"No GPU present for FAISS: {why_no_gpu()}. Nothing to compare; run this on a machine with a GPU and faiss-gpu.")
        return 0

    gpu = GpuResources()
    rng = np.random.default_rng(0)
    queries = _unit(args.queries, args.dim, rng)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        vectors = _unit(size, args.dim, rng)
        ids = np.arange(size, dtype=np.int64)
        indexes = []
        started = time.perf_counter()
        flat = faiss.IndexIDMap2(faiss.IndexFlatIP(args.dim))
        flat.add_with_ids(vectors, ids)
        indexes.append(("CPU flat (exact)", flat, time.perf_counter() - started))
        if args.hnsw:
            started = time.perf_counter()
            inner = faiss.IndexHNSWFlat(args.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = HNSW_EF_SEARCH
            hnsw = faiss.IndexIDMap2(inner)
            hnsw.add_with_ids(vectors, ids)
            indexes.append(("CPU HNSW", hnsw, time.perf_counter() - started))
        started = time.perf_counter()
        on_gpu = gpu.to_gpu(flat)
        indexes.append(("GPU flat (exact)", on_gpu, time.perf_counter() - started))
        for name, index, build_s in indexes:
            rows.append((size, name, build_s, *_time(index, queries, args.k)))
        del on_gpu, indexes, flat

    print(f"{args.dim}-d vectors, {args.queries} queries, k={args.k}; GPU: {faiss.get_num_gpus()} visible\n")
    print("| vectors | index | build / copy to GPU (s) | single query p50 ms | p95 ms | batched ms/query |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size, name, build_s, p50, p95, batched in rows:
        print(f"| {size:,} | {name} | {build_s:.2f} | {p50:.2f} | {p95:.2f} | {batched:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
