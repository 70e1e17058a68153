"""HyDE (Gao et al., 2022): search with the embedding of a passage that *would* answer.

A question and its answer are phrased differently; a short hypothetical answer written by
the generator sits closer to the real passage in embedding space. Its vector is averaged
with the question's (so a hallucinated detail cannot steer the search alone) and
re-normalised for inner-product search.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

Messages = list[dict[str, str]]

HYDE_PROMPT = (
    "Write one short passage (two or three sentences) from a technical or business document that answers the question. "
    "State plausible specific facts; do not say that you do not know."
)


def hyde_messages(question: str) -> Messages:
    return [{"role": "system", "content": HYDE_PROMPT}, {"role": "user", "content": question.strip()}]


def combine(question_vector: np.ndarray, passage_vector: np.ndarray) -> np.ndarray:
    mean = (np.asarray(question_vector, dtype=np.float32) + np.asarray(passage_vector, dtype=np.float32)) / 2.0
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else np.asarray(question_vector, dtype=np.float32)


class HydeWriter:
    """Hypothetical passages, cached per question in an in-process LRU, with their embeddings.

    In-process because a passage costs one generator call (~5-10 s on 2 CPU cores) but is
    only worth keeping for repeated questions of the same server; the cache is lost on
    restart, which costs one generation per question again, nothing more. The passage's
    embedding is kept beside it, so a repeated question costs no second embedding either.
    """

    def __init__(self, write: Callable[[Messages], str], max_entries: int = 512) -> None:
        self._write = write
        self._cache: OrderedDict[str, str] = OrderedDict()
        # question key -> embedder name -> the passage's vector (collections may use different embedders)
        self._vectors: dict[str, dict[str, np.ndarray]] = {}
        self._max_entries = max_entries
        self._lock = threading.Lock()

    @staticmethod
    def _key(question: str) -> str:
        return " ".join(question.split()).lower()

    def passage(self, question: str) -> str:
        key = self._key(question)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        text = self._write(hyde_messages(question)).strip()
        with self._lock:
            self._cache[key] = text
            self._cache.move_to_end(key)
            while len(self._cache) > self._max_entries:
                evicted, _ = self._cache.popitem(last=False)
                self._vectors.pop(evicted, None)
        return text

    def passage_vector(
        self, question: str, embed: Callable[[str], np.ndarray], embedder: str = ""
    ) -> tuple[str, np.ndarray | None]:
        """The passage and its embedding by `embed` (None for an empty passage), both cached;
        `embedder` names the model `embed` uses, so each model's vector is cached apart."""
        text = self.passage(question)
        if not text:
            return text, None
        key = self._key(question)
        with self._lock:
            vector = self._vectors.get(key, {}).get(embedder)
        if vector is None:
            vector = np.asarray(embed(text), dtype=np.float32)
            with self._lock:
                if key in self._cache:
                    self._vectors.setdefault(key, {})[embedder] = vector
        return text, vector
