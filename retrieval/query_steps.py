"""The query steps before retrieval: the question's vectors, HyDE's passage, the other wording's.

Each step reads and fills a retrieval.pipeline.Query. Embedders are passed in by name (the
collections' own, app.model_set), so a step never loads a model itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ingest.embedders import embed_query
from retrieval.hyde import HydeWriter, combine
from retrieval.pipeline import Query

# A text embedder (ingest.embedders): embed(texts) and, for e5, embed_queries(texts).
Embedder = Any


class QueryEmbedding:
    """The question's vector under each embedder of the searched collections."""

    def __init__(self, embedders: Mapping[str, Embedder]) -> None:
        self.embedders = embedders

    def prepare(self, query: Query) -> None:
        query.vectors = {name: embed_query(embedder, query.text) for name, embedder in self.embedders.items()}


class HydeExpansion:
    """HyDE: each embedder's question vector averaged with its vector of a hypothetical answer
    (retrieval.hyde); the passage is kept on the query for the caller to show."""

    def __init__(self, writer: HydeWriter, embedders: Mapping[str, Embedder]) -> None:
        self.writer = writer
        self.embedders = embedders

    def prepare(self, query: Query) -> None:
        for name, embedder in self.embedders.items():
            passage, vector = self.writer.passage_vector(query.text, lambda text: embedder.embed([text])[0], name)  # noqa: B023 - called here
            query.hypothetical_passage = passage
            if vector is not None:
                query.vectors[name] = combine(query.vectors[name], vector)


class AlsoEmbedding:
    """The other wording's vector under each embedder, for the translated dense list (and, with
    the question's, for the priors: Query.scoring_vectors)."""

    def __init__(self, embedders: Mapping[str, Embedder]) -> None:
        self.embedders = embedders

    def prepare(self, query: Query) -> None:
        also = query.also or ""
        query.also_vectors = {name: embed_query(embedder, also) for name, embedder in self.embedders.items()}
