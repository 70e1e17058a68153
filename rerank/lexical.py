"""Reranking without a cross-encoder: dense similarity fused with BM25 over the candidates.

No cross-encoder weights are published as an installable package, so this is the default
until an admin points MMKB_RERANKER_PATH at one. It fixes the dense model's known blind
spot: exact identifiers, codes and numbers ("E-214", "HX-FAN-77") that a 384-d sentence
embedding blurs but a term match sees.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from rank_bm25 import BM25Okapi

from rerank.cross_encoder import Scored

Item = TypeVar("Item")

_TOKEN_RE = re.compile(r"[\u4e00-\u9fff]|[^\W_]+(?:[-.][^\W_]+)*", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased words (keeping codes like e-214 and 2.5 whole, plus their parts); each CJK character is a token."""
    tokens = []
    for match in _TOKEN_RE.finditer(text.lower()):
        token = match.group(0)
        tokens.append(token)
        if "-" in token or "." in token:
            tokens.extend(part for part in re.split(r"[-.]", token) if part)
    return tokens


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
        lexical = BM25Okapi(corpus).get_scores(tokenize(query))
        best = max(float(lexical.max()), 1e-9)
        fused = [float(prior) + self.lexical_weight * float(score) / best for prior, score in zip(prior_scores, lexical)]
        ranked = sorted((Scored(item, score) for item, score in zip(items, fused)), key=lambda scored: -scored.score)
        return ranked[:top_n] if top_n is not None else ranked
