"""Cross-encoder reranking: score (query, passage) pairs jointly and order by that score."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from rerank.base import Scored

Item = TypeVar("Item")


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder from a local folder (MMKB_RERANKER_PATH)."""

    relevance_floor = -4.0  # ms-marco-style logits: below this the passage is off-topic

    def __init__(self, model_dir: Path, device: str | None = None, batch_size: int = 32) -> None:
        from sentence_transformers import CrossEncoder

        from ingest.embedders import best_device

        self.model = CrossEncoder(str(model_dir), device=device or best_device(), max_length=512)
        self.batch_size = batch_size
        self.name = f"cross-encoder:{model_dir.name}"

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        scores = self.model.predict(
            [(query, passage) for passage in passages],
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [float(s) for s in scores]

    def rerank(
        self, query: str, items: Sequence[Item], texts: Sequence[str], prior_scores: Sequence[float], top_n: int | None = None
    ) -> list[Scored[Item]]:
        scores = self.score(query, texts)
        ranked = sorted((Scored(item, s) for item, s in zip(items, scores)), key=lambda scored: -scored.score)
        return ranked[:top_n] if top_n is not None else ranked
