"""Maximal marginal relevance (Carbonell & Goldstein, 1998) over an already ranked list.

Each next pick maximises  lambda * relevance - (1 - lambda) * (max cosine to the picks so far),
so a chunk that nearly repeats one already chosen (the same paragraph in two versions of a
file, overlapping chunks) gives way to the next distinct one. Relevance is the list's own
score (reranker or cosine) min-max scaled to [0, 1] so that it weighs against cosine
similarity on the same scale whatever the reranker's units. lambda = 1 keeps the order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.pipeline import Candidate, Query


def mmr_order(relevance: Sequence[float], vectors: np.ndarray, lambda_: float, k: int | None = None) -> list[int]:
    """Positions into `relevance` in MMR order (the first `k`, default all).

    vectors: one L2-normalised row per item (its embedding); a zero row never counts as similar.
    """
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"the MMR lambda must be between 0 and 1, not {lambda_}")
    n = len(relevance)
    k = n if k is None else min(k, n)
    if n == 0 or k <= 0:
        return []
    scores = np.asarray(relevance, dtype=np.float64)
    spread = scores.max() - scores.min()
    scaled = (scores - scores.min()) / spread if spread > 0 else np.ones(n)
    similarity = np.asarray(vectors, dtype=np.float32) @ np.asarray(vectors, dtype=np.float32).T
    picked: list[int] = []
    closest = np.full(n, -np.inf)  # max similarity of each item to the picks so far
    available = np.ones(n, dtype=bool)
    for _ in range(k):
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        value = np.where(available, lambda_ * scaled - (1.0 - lambda_) * penalty, -np.inf)
        best = int(np.argmax(value))  # ties go to the better-ranked item (lowest position)
        picked.append(best)
        available[best] = False
        closest = np.maximum(closest, similarity[best])
    return picked


class MaximalMarginalRelevance:
    """MMR as the pipeline's last post-processor, over the candidates' stored text embeddings.

    Scores stay the reranker's (only the order changes), so the refusal floor, compared with
    the first candidate's score, still reads a reranker score. Each embedder's vectors fill
    their own columns of one wide row, so chunks of two embedders count as unrelated (their
    cosine would mean nothing)."""

    def __init__(self, lambda_: float) -> None:
        self.lambda_ = lambda_  # checked by mmr_order, when there is something to reorder

    def process(self, query: Query, candidates: list[Candidate]) -> list[Candidate]:
        slots: dict[str, tuple[int, int]] = {}  # embedder name -> (first column, dimension)
        width = 0
        for name, vector in query.vectors.items():
            slots[name], width = (width, vector.shape[-1]), width + vector.shape[-1]
        embedder_of = query.embedder_of()
        vectors = np.zeros((len(candidates), width), dtype=np.float32)
        for row, candidate in enumerate(candidates):
            if candidate.embedding:
                vector = np.frombuffer(candidate.embedding, dtype=np.float32)
                offset, dim = slots[embedder_of[candidate.collection_id]]
                if vector.shape[0] == dim:
                    vectors[row, offset : offset + dim] = vector
        order = mmr_order([candidate.score for candidate in candidates], vectors, self.lambda_)
        return [candidates[i] for i in order]
