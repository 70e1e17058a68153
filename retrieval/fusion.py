"""Reciprocal-rank fusion: merge ranked lists whose scores are not comparable (cosine, BM25).

score(chunk) = sum over lists of 1 / (k + rank), rank starting at 1 (Cormack et al., 2009);
k = 60 damps the head so that one list's top hit cannot outvote agreement between lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

RRF_K = 60


@dataclass(frozen=True)
class FusedHit:
    chunk_id: int
    score: float
    # Rank (1-based) of the chunk in each list that returned it, e.g. {"dense": 3, "bm25": 1}.
    ranks: Mapping[str, int] = field(default_factory=dict)


def reciprocal_rank_fusion(ranked: Mapping[str, Sequence[int]], k: int = RRF_K) -> list[FusedHit]:
    """Fuse lists of chunk ids, each best first; a chunk listed twice in one list counts once."""
    scores: dict[int, float] = {}
    ranks: dict[int, dict[str, int]] = {}
    for name, chunk_ids in ranked.items():
        seen: set[int] = set()
        for rank, chunk_id in enumerate(chunk_ids, start=1):
            if chunk_id in seen:
                continue
            seen.add(chunk_id)
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (k + rank)
            ranks.setdefault(chunk_id, {})[name] = rank
    order = sorted(scores, key=lambda chunk_id: (-scores[chunk_id], min(ranks[chunk_id].values()), chunk_id))
    return [FusedHit(chunk_id, scores[chunk_id], ranks[chunk_id]) for chunk_id in order]
