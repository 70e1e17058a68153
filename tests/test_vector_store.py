"""The FAISS store: exact search, HNSW above its threshold (CPU), deletes that stay deleted,
persistence, on real FAISS files. The same suite runs for each device: "cpu" always, "gpu"
when the installed faiss has GPU support and sees a GPU (skipped otherwise, never faked)."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.gpu import GpuResources, GpuUnavailable, gpu_faiss_available, resolve_faiss_device, why_no_gpu
from retrieval.vector_store import VectorStore


@pytest.fixture(params=["cpu", "gpu"])
def device(request) -> str:
    if request.param == "gpu" and not gpu_faiss_available():
        pytest.skip(f"no GPU FAISS here: {why_no_gpu()}")
    return request.param


@pytest.fixture()
def gpu(device) -> GpuResources | None:
    return GpuResources() if device == "gpu" else None


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_store_grows_and_deleted_ids_never_come_back(tmp_path, device, gpu):
    dim = 32
    vectors = _unit(400, dim, seed=1)
    store = VectorStore(tmp_path / "text.faiss", dim, hnsw_threshold=300, gpu=gpu)
    assert store.device == device
    store.add(list(range(1, 201)), vectors[:200])
    assert not store.is_hnsw
    store.add(list(range(201, 401)), vectors[200:])
    # Past the threshold the CPU store turns HNSW; the GPU has no HNSW and stays exact.
    assert store.is_hnsw == (device == "cpu") and len(store) == 400
    assert store.search(vectors[10], 1)[0].chunk_id == 11  # its own vector is its nearest neighbour

    store.remove([11, 12])
    assert 11 not in store.ids() and len(store) == 398
    assert all(hit.chunk_id not in (11, 12) for hit in store.search(vectors[10], 50))
    store.save()

    reopened = VectorStore(tmp_path / "text.faiss", dim, hnsw_threshold=300, gpu=gpu)
    assert reopened.is_hnsw == (device == "cpu") and 11 not in reopened.ids()
    assert all(hit.chunk_id != 11 for hit in reopened.search(vectors[10], 10))

    # SQLite may hand a deleted id out again: the new vector is found, the dead one is gone.
    fresh = _unit(1, dim, seed=7)
    reopened.add([11], fresh)
    hits = reopened.search(fresh[0], 3)
    assert hits[0].chunk_id == 11 and hits[0].score > 0.99
    assert [h.chunk_id for h in hits].count(11) == 1

    # Deleting more than a tenth: the dead entries are really dropped (HNSW compacts its graph).
    reopened.remove(list(range(100, 160)))
    assert reopened.index.ntotal == len(reopened) == 339
    assert reopened.is_hnsw == (device == "cpu")
    assert all(not 100 <= hit.chunk_id < 160 for hit in reopened.search(vectors[120], 20))


def test_search_finds_the_same_neighbours_as_exact_cpu_search(tmp_path, device, gpu):
    dim, n = 64, 3000
    vectors = _unit(n, dim, seed=3)
    exact = VectorStore(tmp_path / "flat.faiss", dim, hnsw_threshold=None)
    store = VectorStore(tmp_path / "store.faiss", dim, hnsw_threshold=1000, gpu=gpu)
    for each in (exact, store):
        each.add(list(range(n)), vectors)
    queries = _unit(50, dim, seed=4)
    overlap = np.mean(
        [len({h.chunk_id for h in exact.search(q, 10)} & {h.chunk_id for h in store.search(q, 10)}) / 10 for q in queries]
    )
    assert not exact.is_hnsw and store.is_hnsw == (device == "cpu")
    # HNSW is approximate; the GPU's flat search is exact, so it must agree completely.
    assert overlap >= (0.9 if device == "cpu" else 1.0), overlap


def test_an_index_written_on_the_cpu_opens_on_this_device(tmp_path, device, gpu):
    """A data directory moves between machines: an HNSW file written by a CPU process is
    searchable on either device (on a GPU it becomes exact flat)."""
    dim, n = 16, 120
    vectors = _unit(n, dim, seed=5)
    written = VectorStore(tmp_path / "text.faiss", dim, hnsw_threshold=50)
    written.add(list(range(1000, 1000 + n)), vectors)
    written.remove([1003])
    written.save()
    assert written.is_hnsw

    opened = VectorStore(tmp_path / "text.faiss", dim, hnsw_threshold=50, gpu=gpu)
    assert opened.is_hnsw == (device == "cpu")
    assert opened.ids() == set(range(1000, 1000 + n)) - {1003}
    assert opened.search(vectors[7], 1)[0].chunk_id == 1007
    assert all(hit.chunk_id != 1003 for hit in opened.search(vectors[3], 10))
    opened.save()
    assert VectorStore(tmp_path / "text.faiss", dim).ids() == opened.ids()  # the file stays readable on a CPU


def test_gpu_setting_says_why_when_a_gpu_is_required_but_missing():
    assert resolve_faiss_device("off") == "cpu"
    if gpu_faiss_available():
        assert resolve_faiss_device("auto") == resolve_faiss_device("on") == "gpu"
        return
    assert resolve_faiss_device("auto") == "cpu"
    with pytest.raises(GpuUnavailable, match="MMKB_FAISS_GPU=on but .*faiss"):
        resolve_faiss_device("on")
    with pytest.raises(ValueError, match="MMKB_FAISS_GPU must be one of"):
        resolve_faiss_device("maybe")


def test_knowledge_base_follows_mmkb_faiss_gpu(tmp_path, monkeypatch):
    import pydantic

    from app.service import KnowledgeBase
    from app.settings import Settings

    with pytest.raises(pydantic.ValidationError, match="faiss_gpu"):
        Settings(data_dir=tmp_path, database_url=None, faiss_gpu="maybe")
    import faiss

    faiss.omp_set_num_threads(2)
    threaded = KnowledgeBase(Settings(data_dir=tmp_path / "threads", database_url=None, faiss_gpu="off", faiss_threads=1))
    try:
        threaded.indexes  # noqa: B018 - opening the indexes applies MMKB_FAISS_THREADS
        assert faiss.omp_get_max_threads() == 1
    finally:
        threaded.close()

    monkeypatch.setenv("MMKB_FAISS_GPU", "on")
    kb = KnowledgeBase(Settings(data_dir=tmp_path, database_url=None))
    try:
        if gpu_faiss_available():
            assert kb.indexes.gpu is not None
        else:
            # Told to use a GPU it does not have: it says so rather than silently searching on the CPU.
            with pytest.raises(GpuUnavailable, match="MMKB_FAISS_GPU=on"):
                kb.indexes  # noqa: B018
    finally:
        kb.close()
