"""The loaded models of one process, each loaded on first use from the offline registry."""

from __future__ import annotations

import threading
from functools import cached_property

from app import registry
from app.settings import Settings


class ModelSet:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()

    def _limit_torch_threads(self) -> None:
        """torch's intra-op threads are per process; set before the first torch model runs.
        On a 2-core machine shared with other work, 2 threads made MiniLM 2.5-5.6x slower
        than 1 (OpenMP threads spin waiting for a core): see benchmarks/RESULTS.md."""
        if self.settings.model_threads > 0:
            import torch

            torch.set_num_threads(self.settings.model_threads)

    @cached_property
    def text_embedder(self):
        from ingest.embedders import TextEmbedder

        self._limit_torch_threads()
        with self._lock:
            return TextEmbedder(registry.resolve("text_embedder", self.settings), batch_size=self.settings.embed_batch_size)

    @cached_property
    def image_embedder(self):
        """A CLIP model when one is configured, else None (images are found by their text)."""
        if self.settings.image_embedder == "none" and self.settings.image_embedder_path is None:
            return None
        from ingest.embedders import ClipEmbedder

        self._limit_torch_threads()
        with self._lock:
            return ClipEmbedder(registry.resolve("image_embedder", self.settings))

    @cached_property
    def reranker(self):
        if self.settings.reranker == "lexical" and self.settings.reranker_path is None:
            from rerank.lexical import LexicalFusionReranker

            return LexicalFusionReranker()
        from rerank.cross_encoder import CrossEncoderReranker

        self._limit_torch_threads()
        with self._lock:
            return CrossEncoderReranker(registry.resolve("reranker", self.settings))

    @cached_property
    def ocr(self):
        from ingest.ocr import load_ocr

        with self._lock:
            return load_ocr(self.settings.ocr_engine, threads=self.settings.model_threads)

    @cached_property
    def generator(self):
        from app.llm import load_generator

        with self._lock:
            return load_generator(self.settings)

    def dims(self) -> dict[str, int]:
        from app.indexes import IMAGE_SPACE, TEXT_SPACE

        dims = {TEXT_SPACE: self.text_embedder.dim}
        if self.image_embedder is not None:
            dims[IMAGE_SPACE] = self.image_embedder.dim
        return dims
