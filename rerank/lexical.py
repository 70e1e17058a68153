"""Reranking without a cross-encoder: dense similarity fused with BM25 over the candidates.

No cross-encoder weights are published as an installable package, so this is the default
until an admin points MMKB_RERANKER_PATH at one. It fixes the dense model's known blind
spot: exact identifiers, codes and numbers ("E-214", "HX-FAN-77") that a 384-d sentence
embedding blurs but a term match sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from rank_bm25 import BM25Okapi

from rerank.base import Scored
from retrieval.tokenize import tokenize  # noqa: F401 - re-exported: one tokenizer for BM25 everywhere

Item = TypeVar("Item")


class LexicalFusionReranker:
    name = "lexical-fusion"
    # Below this fused score nothing retrieved is about the question (calibrated on the samples).
    relevance_floor = 0.3

    def __init__(self, lexical_weight: float = 0.3) -> None:
        self.lexical_weight = lexical_weight

    def rerank(
        self, query: str, items: Sequence[Item], texts: Sequence[str], prior_scores: Sequence[float], top_n: int | None = None
    ) -> list[Scored[Item]]:
        if not items:
            return []
        corpus = [tokenize(text) or ["∅"] for text in texts]
        # With few candidates BM25's idf can go negative (a term in most of them); such a term
        # says nothing about relevance, so scores are floored at 0 before normalising.
        lexical = np.maximum(BM25Okapi(corpus).get_scores(tokenize(query)), 0.0)
        best = max(float(lexical.max()), 1e-9)
        fused = [float(prior) + self.lexical_weight * float(score) / best for prior, score in zip(prior_scores, lexical)]
        ranked = sorted((Scored(item, score) for item, score in zip(items, fused)), key=lambda scored: -scored.score)
        return ranked[:top_n] if top_n is not None else ranked
