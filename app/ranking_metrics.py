"""Ranking metrics (recall@k, MRR@10, nDCG@10): pure functions shared by `kb eval retrieval`
(app.evaluation) and the collections' own evaluation sets (app.collection_eval)."""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import TypeVar

CUTOFFS = (1, 5, 10, 100)
# What a ranking ranks: corpus ids in app.evaluation, files or (file, page) places in app.collection_eval.
Place = TypeVar("Place", bound=Hashable)


def _ndcg(ranked: list[Place], relevant: dict[Place, int], k: int) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sum(gain / math.log2(i + 2) for i, gain in enumerate(sorted(relevant.values(), reverse=True)[:k]))
    return dcg / ideal if ideal else 0.0


def score_ranking(ranked: list[Place], relevant: dict[Place, int]) -> dict[str, float]:
    metrics = {f"R@{k}": len(set(ranked[:k]) & set(relevant)) / len(relevant) for k in CUTOFFS}
    metrics["MRR@10"] = next((1.0 / (i + 1) for i, doc in enumerate(ranked[:10]) if doc in relevant), 0.0)
    metrics["nDCG@10"] = _ndcg(ranked, relevant, 10)
    return metrics
