"""BM25 over every text chunk of a collection, with exact statistics across collections.

Each collection holds its own inverted index (token -> chunk positions and term counts).
A search over several collections sums their document frequencies, sizes and lengths, so
the scores are those of one BM25 index over the union: comparable across collections, with
no index per combination of collections. Scoring touches only the postings of the query's
tokens (numpy), so it stays fast at 100k chunks where rank_bm25 loops over every document.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.tokenize import tokenize


@dataclass(frozen=True)
class KeywordHit:
    chunk_id: int
    score: float


@dataclass(frozen=True)
class _Postings:
    positions: np.ndarray  # int32 index into KeywordIndex.chunk_ids
    counts: np.ndarray  # float32 term frequency in that chunk


class KeywordIndex:
    """The BM25 postings of one collection's chunks, built in memory from their texts."""

    def __init__(self, chunks: Iterable[tuple[int, str]], signature: object = None) -> None:
        ids: list[int] = []
        lengths: list[int] = []
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for position, (chunk_id, text) in enumerate(chunks):
            counts = Counter(tokenize(text))
            ids.append(chunk_id)
            lengths.append(sum(counts.values()))
            for token, count in counts.items():
                entry = postings.setdefault(token, ([], []))
                entry[0].append(position)
                entry[1].append(count)
        self.signature = signature
        self.chunk_ids = np.asarray(ids, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.float32)
        self.postings = {
            token: _Postings(np.asarray(p, dtype=np.int32), np.asarray(c, dtype=np.float32)) for token, (p, c) in postings.items()
        }

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def document_frequency(self, token: str) -> int:
        entry = self.postings.get(token)
        return 0 if entry is None else len(entry.positions)


def search_keyword(indexes: Sequence[KeywordIndex], query: str, k: int, k1: float = 1.5, b: float = 0.75) -> list[KeywordHit]:
    """The k best BM25 hits over the union of `indexes` (Okapi BM25, Lucene's non-negative idf)."""
    terms = sorted(set(tokenize(query)))
    total_docs = sum(len(index) for index in indexes)
    if not terms or total_docs == 0 or k <= 0:
        return []
    average_length = max(float(sum(index.lengths.sum() for index in indexes)) / total_docs, 1e-9)
    idf = {}
    for term in terms:
        df = sum(index.document_frequency(term) for index in indexes)
        if df:
            idf[term] = math.log(1.0 + (total_docs - df + 0.5) / (df + 0.5))
    hits: list[KeywordHit] = []
    for index in indexes:
        if not len(index):
            continue
        scores = np.zeros(len(index), dtype=np.float32)
        norm = k1 * (1.0 - b + b * index.lengths / average_length)
        for term, weight in idf.items():
            entry = index.postings.get(term)
            if entry is None:
                continue
            tf = entry.counts
            scores[entry.positions] += weight * tf * (k1 + 1.0) / (tf + norm[entry.positions])
        matched = np.flatnonzero(scores > 0)
        if len(matched) > k:
            matched = matched[np.argpartition(-scores[matched], k - 1)[:k]]
        hits.extend(KeywordHit(int(index.chunk_ids[i]), float(scores[i])) for i in matched)
    # Ties broken by chunk id so that results are reproducible.
    hits.sort(key=lambda hit: (-hit.score, hit.chunk_id))
    return hits[:k]
