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
    """The BM25 postings of some chunks (a collection's, or one segment of them), built in
    memory from their texts. Immutable: a change makes a new one (`without`, `merged`) from
    the postings already built, without tokenizing any text again."""

    def __init__(self, chunks: Iterable[tuple[int, str]]) -> None:
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
        self.chunk_ids = np.asarray(ids, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.float32)
        self.postings = {
            token: _Postings(np.asarray(p, dtype=np.int32), np.asarray(c, dtype=np.float32)) for token, (p, c) in postings.items()
        }

    @classmethod
    def _of(cls, chunk_ids: np.ndarray, lengths: np.ndarray, postings: dict[str, _Postings]) -> KeywordIndex:
        index = cls(())
        index.chunk_ids, index.lengths, index.postings = chunk_ids, lengths, postings
        return index

    def without(self, chunk_ids: set[int]) -> KeywordIndex:
        """These postings less the given chunks' (ids it does not hold are ignored)."""
        keep = ~np.isin(self.chunk_ids, np.fromiter(chunk_ids, dtype=np.int64, count=len(chunk_ids)))
        if keep.all():
            return self
        new_position = np.cumsum(keep, dtype=np.int64) - 1
        postings = {}
        for token, entry in self.postings.items():
            kept = keep[entry.positions]
            if kept.any():
                postings[token] = _Postings(new_position[entry.positions[kept]].astype(np.int32), entry.counts[kept])
        return self._of(self.chunk_ids[keep], self.lengths[keep], postings)

    @classmethod
    def merged(cls, segments: Sequence[KeywordIndex]) -> KeywordIndex:
        """One index of several segments' chunks: the same scores, fewer arrays to visit."""
        offsets = np.cumsum([0] + [len(segment) for segment in segments])
        parts: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        for offset, segment in zip(offsets, segments):
            for token, entry in segment.postings.items():
                positions, counts = parts.setdefault(token, ([], []))
                positions.append(entry.positions + np.int32(offset))
                counts.append(entry.counts)
        postings = {token: _Postings(np.concatenate(p).astype(np.int32), np.concatenate(c)) for token, (p, c) in parts.items()}
        chunk_ids = np.concatenate([s.chunk_ids for s in segments]) if segments else np.zeros(0, dtype=np.int64)
        lengths = np.concatenate([s.lengths for s in segments]) if segments else np.zeros(0, dtype=np.float32)
        return cls._of(chunk_ids, lengths, postings)

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
