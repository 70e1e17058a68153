"""Small wrappers that record what the real models were given (the real models still run)."""

from __future__ import annotations

from app.model_set import ModelSet
from app.service import KnowledgeBase


class RecordingGenerator:
    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[list[dict[str, str]]] = []

    def stream(self, messages, max_new_tokens):
        self.calls.append(messages)
        yield from self.inner.stream(messages, max_new_tokens)


class RecordingEmbedder:
    """The real text embedder; records every text it was asked to embed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.max_tokens = inner.max_tokens
        self.texts: list[str] = []

    def count_tokens(self, texts):
        return self.inner.count_tokens(texts)

    def embed(self, texts):
        self.texts.extend(texts)
        return self.inner.embed(texts)


class RecordingReranker:
    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.relevance_floor = inner.relevance_floor
        self.seen_texts: list[str] = []

    def rerank(self, query, items, texts, prior_scores, top_n=None):
        self.seen_texts.extend(texts)
        return self.inner.rerank(query, items, texts, prior_scores, top_n)


def recording_kb(settings, models: ModelSet) -> KnowledgeBase:
    """A knowledge base over `settings`' data sharing the loaded models, with recorders around
    the generator and the reranker."""
    recorded = ModelSet(settings)
    recorded.text_embedder = models.text_embedder
    recorded.generator = RecordingGenerator(models.generator)
    recorded.reranker = RecordingReranker(models.reranker)
    return KnowledgeBase(settings, models=recorded)
