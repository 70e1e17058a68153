"""FAISS vectors of one collection and one embedding space, persisted to a file.

The FAISS id of a vector is the id of its chunk row, so the SQL database stays the
source of truth: an index that is missing or out of step is rebuilt from the stored
embeddings (see ``app.service``). Writes go to a temporary file that replaces the old one
atomically, so a crash never leaves a half-written index behind, and readers in other
processes pick up the new file by its modification time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from filelock import FileLock


@dataclass(frozen=True)
class VectorHit:
    chunk_id: int
    score: float


class VectorStore:
    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self.lock = FileLock(str(path) + ".lock")
        self._index: faiss.IndexIDMap2 | None = None
        self._loaded_mtime: float | None = None

    def _empty(self) -> faiss.IndexIDMap2:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _file_mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return None

    @property
    def index(self) -> faiss.IndexIDMap2:
        mtime = self._file_mtime()
        if self._index is None or mtime != self._loaded_mtime:
            if mtime is None:
                self._index = self._empty()
            else:
                index = faiss.read_index(str(self.path))
                if index.d != self.dim:
                    raise ValueError(
                        f"{self.path} holds {index.d}-d vectors but the configured model makes {self.dim}-d ones; "
                        "run `kb reindex` after changing models"
                    )
                self._index = index
            self._loaded_mtime = mtime
        return self._index

    def __len__(self) -> int:
        return self.index.ntotal

    def ids(self) -> set[int]:
        index = self.index
        return set(faiss.vector_to_array(index.id_map).tolist()) if index.ntotal else set()

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        if not ids:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        self.index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: list[int]) -> None:
        if ids:
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def replace_all(self, ids: list[int], vectors: np.ndarray) -> None:
        self._index = self._empty()
        self.add(ids, vectors)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, self.path)
        self._loaded_mtime = self._file_mtime()

    def search(self, query: np.ndarray, k: int) -> list[VectorHit]:
        index = self.index
        if index.ntotal == 0 or k <= 0:
            return []
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
        scores, ids = index.search(query, min(k, index.ntotal))
        return [VectorHit(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]
