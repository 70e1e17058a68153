"""What a reranker is, and how one runs as the query pipeline's rerank post-processor.

A reranker scores (question, passage) pairs, given the candidates' texts and their priors
(the calibrated query cosine); it never sees a database row. Adding one is a file with a class
that has `name`, `relevance_floor` and `rerank`, and the line in app.model_set that builds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Generic, Protocol, TypeVar

from retrieval.pipeline import Candidate, Query

Item = TypeVar("Item")


@dataclass(frozen=True)
class Scored(Generic[Item]):
    item: Item
    score: float


class Reranker(Protocol):
    name: str
    # Best score below which nothing retrieved is about the question (the refusal), in the
    # reranker's own units (a logit, a fused cosine).
    relevance_floor: float

    def rerank(
        self, query: str, items: Sequence[Item], texts: Sequence[str], prior_scores: Sequence[float], top_n: int | None = None
    ) -> list[Scored[Item]]:
        """`items` best first by the reranker's score (the first `top_n`, default all);
        texts[i] and prior_scores[i] are items[i]'s."""
        ...


class Reranking:
    """A Reranker as a pipeline post-processor: the candidates in its order, each with its score."""

    def __init__(self, reranker: Reranker) -> None:
        self.reranker = reranker

    def process(self, query: Query, candidates: list[Candidate]) -> list[Candidate]:
        # The question with its other wording: the reranker's words may match either.
        scored = self.reranker.rerank(query.search_text, candidates, [c.text for c in candidates], [c.score for c in candidates])
        return [replace(s.item, score=s.score) for s in scored]
