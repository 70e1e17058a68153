"""Dense candidate search over the vector stores of several collections."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.vector_store import VectorHit, VectorStore


def search_stores(stores: Sequence[VectorStore], query: np.ndarray, k: int) -> list[VectorHit]:
    """The k best hits over all stores; scores are comparable because every store of a
    space holds vectors from the same model, L2-normalised, searched by inner product."""
    hits: list[VectorHit] = []
    for store in stores:
        hits.extend(store.search(query, k))
    hits.sort(key=lambda hit: -hit.score)
    return hits[:k]
