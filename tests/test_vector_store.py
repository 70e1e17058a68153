"""The FAISS store turns into HNSW above its threshold and keeps deletes working (real FAISS files)."""

from __future__ import annotations

import numpy as np

from retrieval.vector_store import VectorStore


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_store_switches_to_hnsw_and_deleted_ids_never_come_back(tmp_path):
    dim = 32
    vectors = _unit(400, dim, seed=1)
    store = VectorStore(tmp_path / "text.faiss", dim, hnsw_threshold=300)
    store.add(list(range(1, 201)), vectors[:200])
    assert not store.is_hnsw
    store.add(list(range(201, 401)), vectors[200:])
    assert store.is_hnsw and len(store) == 400
    assert store.search(vectors[10], 1)[0].chunk_id == 11  # its own vector is its nearest neighbour

    store.remove([11, 12])
    assert 11 not in store.ids() and len(store) == 398
    assert all(hit.chunk_id not in (11, 12) for hit in store.search(vectors[10], 50))
    store.save()

    reopened = VectorStore(tmp_path / "text.faiss", dim, hnsw_threshold=300)
    assert reopened.is_hnsw and 11 not in reopened.ids()
    assert all(hit.chunk_id != 11 for hit in reopened.search(vectors[10], 10))

    # SQLite may hand a deleted id out again: the new vector is found, the dead one is gone.
    fresh = _unit(1, dim, seed=7)
    reopened.add([11], fresh)
    hits = reopened.search(fresh[0], 3)
    assert hits[0].chunk_id == 11 and hits[0].score > 0.99
    assert [h.chunk_id for h in hits].count(11) == 1

    # Deleting more than a tenth compacts the graph: the dead entries are really dropped.
    reopened.remove(list(range(100, 160)))
    assert reopened.index.ntotal == len(reopened) == 339
    assert reopened.is_hnsw


def test_hnsw_finds_the_same_neighbours_as_exact_search(tmp_path):
    dim, n = 64, 3000
    vectors = _unit(n, dim, seed=3)
    exact = VectorStore(tmp_path / "flat.faiss", dim, hnsw_threshold=None)
    approximate = VectorStore(tmp_path / "hnsw.faiss", dim, hnsw_threshold=1000)
    for store in (exact, approximate):
        store.add(list(range(n)), vectors)
    queries = _unit(50, dim, seed=4)
    overlap = np.mean([
        len({h.chunk_id for h in exact.search(q, 10)} & {h.chunk_id for h in approximate.search(q, 10)}) / 10 for q in queries
    ])
    assert approximate.is_hnsw and not exact.is_hnsw
    assert overlap >= 0.9, overlap
