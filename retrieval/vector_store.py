"""FAISS vectors of one collection and one embedding space, persisted to a file.

The FAISS id of a vector is the id of its chunk row, so the SQL database stays the
source of truth: an index that is missing or out of step is rebuilt from the stored
embeddings (see ``app.indexes``). Writes go to a temporary file that replaces the old one
atomically, so a crash never leaves a half-written index behind. The file is read once,
when the store is first used: other processes' changes reach an open store through
``app.indexes`` (caught up from SQL by the collection's index version), not by reading
the whole file again.

Exact search (flat inner product) up to ``hnsw_threshold`` vectors; above it the store
converts itself to HNSW (approximate, ~O(log n) per query). FAISS cannot remove ids from
an HNSW graph, so removal there *marks* ids deleted: searches over-fetch and drop them,
and once a tenth of the graph is dead (or a deleted id is added again, which SQLite's
reuse of the highest rowid makes possible) the graph is rebuilt from its own stored
vectors. The deleted ids live in a sidecar file; if it is ever lost, the deleted vectors
reappear in ``ids()`` and the SQL sync removes them again.

On a GPU (``gpu`` given, see ``retrieval.gpu``) FAISS has no HNSW, and needs none: an exact
flat search over a million 384-d vectors takes about a millisecond there. So a GPU store
stays flat at any size (an HNSW file written by a CPU process is turned back into a flat
index when opened). The CPU index remains the master copy that adds, deletes and saves work
on; searches go to a copy made with ``index_cpu_to_gpu`` on first search after a change.
Saving therefore needs no copy back from the GPU, and the file on disk is the same format
either way, so CPU and GPU processes can share a data directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import faiss
import numpy as np

from retrieval.gpu import GpuResources

DEFAULT_HNSW_THRESHOLD = 50_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96
COMPACT_FRACTION = 0.1
GPU_MAX_K = 1024  # FAISS GPU k-selection limit (2048 in recent builds, 1024 in older ones)


def configure_faiss_threads(configured: int | None) -> int:
    """FAISS's OpenMP threads: MMKB_FAISS_THREADS, else half the cores (at least 1).

    The query path searches one vector at a time; spread over all cores, an exact search waits
    for the slowest thread. On the loaded 2-core VM, 100k x 384 flat: 1 thread p50 42 ms,
    2 threads 103 ms (interleaved A/B, benchmarks/RESULTS.md). Bulk HNSW builds lose some
    parallelism on a quiet machine in exchange.
    """
    threads = configured if configured is not None and configured > 0 else max(1, (os.cpu_count() or 1) // 2)
    faiss.omp_set_num_threads(threads)
    return threads


@dataclass(frozen=True)
class VectorHit:
    chunk_id: int
    score: float


class VectorStore:
    def __init__(
        self, path: Path, dim: int, hnsw_threshold: int | None = DEFAULT_HNSW_THRESHOLD, gpu: GpuResources | None = None
    ) -> None:
        self.path = path
        self.dim = dim
        self.gpu = gpu
        # No HNSW on a GPU: a GPU store stays exact at any size.
        self.hnsw_threshold = None if gpu is not None else hnsw_threshold
        self._index: faiss.IndexIDMap2 | None = None
        self._gpu_index: faiss.Index | None = None  # search copy of _index, rebuilt after a change
        self._deleted: set[int] = set()

    @property
    def deleted_path(self) -> Path:
        return self.path.with_suffix(self.path.suffix + ".deleted.npy")

    def _empty(self) -> faiss.IndexIDMap2:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _hnsw(self) -> faiss.IndexIDMap2:
        inner = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        inner.hnsw.efSearch = HNSW_EF_SEARCH
        return faiss.IndexIDMap2(inner)

    @property
    def device(self) -> str:
        return "cpu" if self.gpu is None else "gpu"

    @property
    def is_hnsw(self) -> bool:
        return isinstance(faiss.downcast_index(self.index.index), faiss.IndexHNSW)

    @property
    def index(self) -> faiss.IndexIDMap2:
        if self._index is None:
            if not self.path.exists():
                self._index = self._empty()
                self._deleted = set()
            else:
                index = faiss.read_index(str(self.path))
                if index.d != self.dim:
                    raise ValueError(
                        f"{self.path} holds {index.d}-d vectors but the configured model makes {self.dim}-d ones; "
                        "run `kb reindex` after changing models"
                    )
                self._index = cast(faiss.IndexIDMap2, index)  # this store only ever writes IDMap2 files
                try:
                    self._deleted = set(np.load(self.deleted_path).tolist())
                except FileNotFoundError:
                    self._deleted = set()
            self._gpu_index = None
            if self.gpu is not None and self.is_hnsw:
                self._rebuild(hnsw=False)  # written by a CPU process; the GPU cannot search HNSW
        return self._index

    def __len__(self) -> int:
        return self.index.ntotal - len(self._deleted)

    def _all_ids(self) -> np.ndarray:
        index = self.index
        return faiss.vector_to_array(index.id_map) if index.ntotal else np.zeros(0, dtype=np.int64)

    def ids(self) -> set[int]:
        return set(self._all_ids().tolist()) - self._deleted

    def _live(self) -> tuple[np.ndarray, np.ndarray]:
        """Ids and vectors of every live entry, read back from the index's own storage."""
        index = self.index
        ids = self._all_ids()
        vectors = index.index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, self.dim), dtype=np.float32)
        keep = ~np.isin(ids, np.fromiter(self._deleted, dtype=np.int64, count=len(self._deleted)))
        return ids[keep], vectors[keep]

    def _rebuild(self, hnsw: bool) -> None:
        ids, vectors = self._live()
        self._index = self._hnsw() if hnsw else self._empty()
        self._gpu_index = None
        self._deleted = set()
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        if not ids:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        self.index  # noqa: B018 - load from disk first so the checks below see the current state
        if self._deleted & set(ids):
            self._rebuild(hnsw=self.is_hnsw)  # a dead copy of a re-used id must not survive
        grows_past = self.hnsw_threshold is not None and len(self) + len(ids) > self.hnsw_threshold
        if grows_past and not self.is_hnsw:
            self._rebuild(hnsw=True)
        self.index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
        self._gpu_index = None

    def remove(self, ids: list[int]) -> None:
        if not ids:
            return
        if not self.is_hnsw:
            # faiss wraps remove_ids to take an id array on every index; its stubs list that only on some
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))  # type: ignore[arg-type]
            self._gpu_index = None
            return
        self._deleted |= set(ids) & set(self._all_ids().tolist())
        if len(self._deleted) > COMPACT_FRACTION * max(self.index.ntotal, 1):
            self._rebuild(hnsw=self.hnsw_threshold is None or len(self) > self.hnsw_threshold)

    def replace_all(self, ids: list[int], vectors: np.ndarray) -> None:
        self._index = self._empty()
        self._gpu_index = None
        self._deleted = set()
        self.add(ids, vectors)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        index = self.index
        if self._deleted:
            tmp_deleted = self.deleted_path.with_suffix(".tmp.npy")
            np.save(tmp_deleted, np.fromiter(sorted(self._deleted), dtype=np.int64, count=len(self._deleted)))
            os.replace(tmp_deleted, self.deleted_path)
        else:
            self.deleted_path.unlink(missing_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        faiss.write_index(index, str(tmp))
        os.replace(tmp, self.path)

    def _searcher(self) -> faiss.Index:
        index = self.index
        if self.gpu is None:
            return index
        if self._gpu_index is None:
            self._gpu_index = self.gpu.to_gpu(index)
        return self._gpu_index

    def search(self, query: np.ndarray, k: int) -> list[VectorHit]:
        index = self.index
        if index.ntotal == 0 or k <= 0:
            return []
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
        # Over-fetch by the number of dead entries so that k live ones remain after filtering.
        fetch = min(k + len(self._deleted), index.ntotal)
        if self.gpu is not None:
            fetch = min(fetch, GPU_MAX_K)
        scores, ids = self._searcher().search(query, fetch)
        hits = [VectorHit(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1 and int(i) not in self._deleted]
        return hits[:k]
