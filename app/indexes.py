"""The FAISS indexes of every collection, kept in step with the chunk rows in SQL.

SQL is the source of truth. An index that lags behind it (a crash between the commit of
a document's chunks and the save of the index, say) is repaired from the stored
embeddings the next time it is opened, without re-embedding anything.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db import Database
from app.models import Chunk, Collection, Document, DocumentStatus
from retrieval.gpu import GpuResources
from retrieval.keyword import KeywordIndex
from retrieval.vector_store import VectorStore

TEXT_SPACE = "text"
IMAGE_SPACE = "image"


def bump_index_version(session: Session, collection_id: int) -> None:
    """Tell every process that the collection's searchable chunks changed: called in the
    transaction that changes them, so a process that sees the new version also sees the
    change. An atomic increment in SQL: concurrent writers never lose a bump."""
    session.execute(update(Collection).where(Collection.id == collection_id).values(index_version=Collection.index_version + 1))


def index_versions(database: Database, collection_ids: Sequence[int]) -> dict[int, int]:
    """The index version of each collection, in one query; a deleted collection is absent."""
    if not collection_ids:
        return {}
    query = select(Collection.id, Collection.index_version).where(Collection.id.in_(collection_ids))
    with database.session() as session:
        return {collection_id: version for collection_id, version in session.execute(query)}


def _ready(collection_id: int, space: str):
    return (Chunk.collection_id == collection_id, Chunk.vector_space == space, Document.status == DocumentStatus.ready)


def ready_chunk_ids(database: Database, collection_id: int, space: str) -> set[int]:
    """The ids of the collection's searchable chunks of `space`, as SQL has them now."""
    query = select(Chunk.id).join(Document, Document.id == Chunk.document_id).where(*_ready(collection_id, space))
    with database.session() as session:
        return set(session.scalars(query))


def chunk_column(database: Database, column, chunk_ids: set[int]) -> list[tuple[int, Any]]:
    """(id, value of `column`) of exactly these chunks, read in batches: a catch-up after one
    file must not read the whole collection back from SQL."""
    rows: list[tuple[int, Any]] = []
    wanted = sorted(chunk_ids)
    with database.session() as session:
        for start in range(0, len(wanted), 500):
            rows.extend(session.execute(select(Chunk.id, column).where(Chunk.id.in_(wanted[start : start + 500]))).tuples())
    return rows


class IndexManager:
    """dims: each space's dimension under the default models. text_dims, where given, tells a
    collection's text dimension from the embedder it chose (collections.text_embedder); the
    image space is the one CLIP model's everywhere.

    Several processes (server replicas, the CLI, re-index jobs) may share one database and
    one data directory. Each keeps its own indexes in memory and, before a search, compares
    the collection's index version in SQL with the version it caught up to; a newer one is
    caught up incrementally: the chunk ids SQL has and the index lacks are added from their
    stored embeddings, the ones it no longer has are removed. The index files are only where
    a process starts from. Writers of one collection's index take turns through a lock in the
    database (app.db_locks), and each saves an index equal to SQL at that moment."""

    def __init__(
        self,
        database: Database,
        index_dir: Path,
        dims: dict[str, int],
        hnsw_threshold: int | None = None,
        gpu: GpuResources | None = None,
        text_dims: Callable[[int], int] | None = None,
    ) -> None:
        self.database = database
        self.hnsw_threshold = hnsw_threshold
        self.gpu = gpu
        self.index_dir = index_dir
        self.dims = dims
        self.text_dims = text_dims
        self._stores: dict[tuple[int, str], VectorStore] = {}
        self._caught_up: dict[tuple[int, str], int] = {}  # the index version each open store holds
        # In-process: one thread changes a store at a time (searches read it meanwhile, as before).
        self._mutating = threading.RLock()

    def dim(self, collection_id: int, space: str) -> int:
        if space == TEXT_SPACE and self.text_dims is not None:
            return self.text_dims(collection_id)
        return self.dims[space]

    def path(self, collection_id: int, space: str) -> Path:
        return self.index_dir / f"collection-{collection_id}" / f"{space}.faiss"

    def writer_lock(self, collection_id: int, space: str):
        """Held while the collection's index of `space` is written, by any process on any machine."""
        return self.database.locks.hold(f"index:{collection_id}:{space}")

    def versions(self, collection_ids: list[int]) -> dict[int, int]:
        return index_versions(self.database, collection_ids)

    def store(self, collection_id: int, space: str, dim: int | None = None) -> VectorStore:
        """The collection's index of `space`, caught up with SQL. dim: the dimension the
        caller's query vector has (its collection's embedder); an open store of another
        dimension was left by an embedder change (a re-index, maybe in another process)
        and is opened afresh."""
        return self.stores([collection_id], space, dim)[0]

    def stores(self, collection_ids: list[int], space: str, dim: int | None = None) -> list[VectorStore]:
        """store() for several collections, with one query for their versions."""
        versions = self.versions(list(collection_ids))
        opened: list[VectorStore] = []
        for collection_id in collection_ids:
            key = (collection_id, space)
            current = self._stores.get(key)
            stale_dim = current is not None and dim is not None and current.dim != dim
            if current is None or stale_dim or self._caught_up.get(key) != versions.get(collection_id):
                with self._mutating:
                    # Looked at again under the lock: another thread's search may have just
                    # caught this store up.
                    current = self._stores.get(key)
                    if current is None or (dim is not None and current.dim != dim):
                        self._stores[key] = self._new_store(collection_id, space, dim)
                        self._caught_up.pop(key, None)
                    if self._caught_up.get(key) != versions.get(collection_id):
                        self._catch_up(collection_id, space)
            opened.append(self._stores[key])
        return opened

    def _new_store(self, collection_id: int, space: str, dim: int | None = None) -> VectorStore:
        dim = dim if dim is not None else self.dim(collection_id, space)
        return VectorStore(self.path(collection_id, space), dim, self.hnsw_threshold, gpu=self.gpu)

    def _vectors(self, dim: int, chunk_ids: set[int]) -> tuple[list[int], np.ndarray]:
        """Stored embeddings of exactly these chunks."""
        ids: list[int] = []
        vectors: list[np.ndarray] = []
        for chunk_id, blob in chunk_column(self.database, Chunk.embedding, chunk_ids):
            assert blob is not None  # every chunk with a vector space is stored with its embedding
            ids.append(chunk_id)
            vectors.append(np.frombuffer(blob, dtype=np.float32))
        matrix = np.vstack(vectors) if vectors else np.zeros((0, dim), dtype=np.float32)
        return ids, matrix

    def _ready_ids(self, collection_id: int, space: str) -> set[int]:
        return ready_chunk_ids(self.database, collection_id, space)

    def _catch_up(self, collection_id: int, space: str) -> tuple[VectorStore, int, int]:
        """Make the open store hold exactly the ready chunks, in memory; returns the store and
        (added, removed). The version is read first: a change committed while this runs
        bumps it again, and the next search catches that up too."""
        key = (collection_id, space)
        version = self.versions([collection_id]).get(collection_id)
        store = self._stores.get(key)
        dim = self.dim(collection_id, space)
        if store is None or store.dim != dim:
            # First use, or the collection's embedder changed since this store was opened.
            store = self._stores[key] = self._new_store(collection_id, space, dim)
        try:
            indexed = store.ids()
        except ValueError:
            # The file holds another dimension (a new model): its vectors are useless here.
            store.path.unlink(missing_ok=True)
            indexed = set()
        wanted = self._ready_ids(collection_id, space)
        missing, extra = wanted - indexed, indexed - wanted
        if missing:
            ids, vectors = self._vectors(store.dim, missing)
            store.add(ids, vectors)
        if extra:
            store.remove(sorted(extra))
        if version is not None:
            self._caught_up[key] = version
        return store, len(missing), len(extra)

    def sync(self, collection_id: int, space: str) -> tuple[int, int]:
        """A writer's step after its commit: catch the index up with SQL and save it, as the
        one writer of this index at the time; returns (added, removed)."""
        with self.writer_lock(collection_id, space), self._mutating:
            store, added, removed = self._catch_up(collection_id, space)
            if added or removed or not store.path.exists():
                store.save()
        return added, removed

    def build_replacement(self, session: Session, collection_id: int, space: str, dim: int | None = None) -> Path:
        """Write a complete new index of the collection's ready chunks, as `session` sees them
        (a re-index's swap transaction, before its commit), next to the live one. The live
        index keeps serving until install_replacement renames this file over it.
        dim: the new vectors' dimension (a re-index onto another embedder), default the current one."""
        query = (
            select(Chunk.id, Chunk.embedding)
            .join(Document, Document.id == Chunk.document_id)
            .where(*_ready(collection_id, space))
            .order_by(Chunk.id)
        )
        ids: list[int] = []
        vectors: list[np.ndarray] = []
        for chunk_id, blob in session.execute(query):
            assert blob is not None  # every chunk with a vector space is stored with its embedding
            ids.append(chunk_id)
            vectors.append(np.frombuffer(blob, dtype=np.float32))
        path = self.path(collection_id, space)
        dim = dim if dim is not None else self.dim(collection_id, space)
        replacement = VectorStore(path.with_name(path.name + ".next"), dim, self.hnsw_threshold)
        replacement.replace_all(ids, np.vstack(vectors) if vectors else np.zeros((0, dim), dtype=np.float32))
        replacement.save()
        return replacement.path

    def install_replacement(self, collection_id: int, space: str, replacement: Path) -> None:
        """Rename a built replacement over the live index file. This process reopens it on
        next use; the others catch up from SQL by the version the swap bumped."""
        live = self.path(collection_id, space)
        with self.writer_lock(collection_id, space), self._mutating:
            os.replace(replacement, live)
            # The old index's deletion marks (HNSW) mean nothing to the new one.
            Path(str(live) + ".deleted.npy").unlink(missing_ok=True)
            # A re-index onto another embedder may change the dimension: the next use opens the
            # new file with the dimension its collection now has.
            self._stores.pop((collection_id, space), None)
            self._caught_up.pop((collection_id, space), None)

    def drop_collection(self, collection_id: int) -> None:
        for space in self.dims:
            with self._mutating:
                self._stores.pop((collection_id, space), None)
                self._caught_up.pop((collection_id, space), None)
            path = self.path(collection_id, space)
            path.unlink(missing_ok=True)
            Path(str(path) + ".lock").unlink(missing_ok=True)
            Path(str(path) + ".deleted.npy").unlink(missing_ok=True)


# More segments than this are merged into one: each search visits every segment's postings.
MAX_KEYWORD_SEGMENTS = 8


@dataclass(frozen=True)
class _KeywordState:
    version: int | None
    segments: tuple[KeywordIndex, ...]


class KeywordIndexManager:
    """BM25 indexes of the text chunks of each collection, built from SQL and kept in memory.

    Not persisted: building one is a pass over the chunk texts with no model involved, and
    one more on-disk format would be one more thing to keep in step with SQL (the source of
    truth) after a crash. Before each search the collection's index version is read; when it
    moved (a document added, removed or re-indexed, in this process or another) the index
    catches up as the FAISS one does: the chunk ids SQL has are compared with those held, the
    texts of the new ones alone are read and indexed as one more segment, and gone ones are
    dropped from the segments' postings. Scores are those of one index over the union
    (retrieval.keyword sums statistics across segments).
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._states: dict[int, _KeywordState] = {}
        self._lock = threading.Lock()

    def version(self, collection_id: int) -> int | None:
        return index_versions(self.database, [collection_id]).get(collection_id)

    def _texts(self, chunk_ids: set[int]) -> list[tuple[int, str]]:
        return [(chunk_id, text or "") for chunk_id, text in chunk_column(self.database, Chunk.text, chunk_ids)]

    def segments(self, collection_id: int) -> list[KeywordIndex]:
        """The collection's BM25 segments, caught up with SQL."""
        version = self.version(collection_id)
        with self._lock:
            state = self._states.get(collection_id)
            if state is not None and state.version == version:
                return list(state.segments)
            segments = list(state.segments) if state is not None else []
            held = {int(i) for segment in segments for i in segment.chunk_ids}
            wanted = ready_chunk_ids(self.database, collection_id, TEXT_SPACE)
            gone, new = held - wanted, wanted - held
            if gone:
                segments = [kept for segment in segments if len(kept := segment.without(gone))]
            if new:
                segments.append(KeywordIndex(self._texts(new)))
            if len(segments) > MAX_KEYWORD_SEGMENTS:
                # The small segments (recent uploads) merge into one; into the largest only once
                # they add up to a quarter of it, so a big collection is not rewritten per upload.
                largest, *rest = sorted(segments, key=len, reverse=True)
                tail = KeywordIndex.merged(rest)
                segments = [largest, tail] if 4 * len(tail) < len(largest) else [KeywordIndex.merged([largest, tail])]
            self._states[collection_id] = _KeywordState(version, tuple(segments))
            return segments

    def indexes(self, collection_ids: Sequence[int]) -> list[KeywordIndex]:
        """Every segment of these collections, for retrieval.keyword.search_keyword."""
        return [segment for collection_id in collection_ids for segment in self.segments(collection_id)]

    def drop_collection(self, collection_id: int) -> None:
        with self._lock:
            self._states.pop(collection_id, None)
