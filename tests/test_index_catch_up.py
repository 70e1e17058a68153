"""Two processes' view of one collection, without models: the writer's changes reach a
reader's open index through the index version in SQL (added and removed chunks, from their
stored embeddings, never by reading the index file again), and the named locks that make
writers take turns hold across processes and die with their holder."""

from __future__ import annotations

import multiprocessing
import time

import numpy as np
import pytest
from sqlalchemy import select

from app.db import Database
from app.db_locks import Timeout
from app.indexes import TEXT_SPACE, IndexManager, KeywordIndexManager, bump_index_version
from app.models import Chunk, ChunkKind, Collection, Document, DocumentStatus
from app.removal import remove_in_session
from retrieval.keyword import search_keyword

DIM = 8


def _vector(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _add_document(database: Database, collection_id: int, name: str, seeds: list[int]) -> list[int]:
    with database.session() as session:
        document = Document(
            collection_id=collection_id, sha256=name.ljust(64, "0"), filename=name, status=DocumentStatus.ready, page_count=1
        )
        session.add(document)
        session.flush()
        chunks = [
            Chunk(
                document_id=document.id,
                collection_id=collection_id,
                page=1,
                kind=ChunkKind.text,
                ordinal=n,
                text=f"{name} {n}",
                vector_space=TEXT_SPACE,
                embedding=_vector(seed).tobytes(),
            )
            for n, seed in enumerate(seeds)
        ]
        session.add_all(chunks)
        session.flush()
        bump_index_version(session, collection_id)
        return [c.id for c in chunks]


@pytest.fixture()
def site(tmp_path):
    url = f"sqlite:///{tmp_path / 'kb.sqlite3'}"
    database = Database(url)
    with database.session() as session:
        collection = Collection(name="shared")
        session.add(collection)
        session.flush()
        collection_id = collection.id
    yield url, database, collection_id, tmp_path / "indexes"
    database.dispose()


def test_a_readers_open_index_catches_up_with_a_writers_adds_and_deletes_without_reading_the_file(site):
    url, database, collection_id, index_dir = site
    writer = IndexManager(database, index_dir, {TEXT_SPACE: DIM})
    first = _add_document(database, collection_id, "first.md", [1, 2])
    writer.sync(collection_id, TEXT_SPACE)

    other_process = Database(url)  # a second engine, as a replica has
    reader = IndexManager(other_process, index_dir, {TEXT_SPACE: DIM})
    assert reader.store(collection_id, TEXT_SPACE).ids() == set(first)

    second = _add_document(database, collection_id, "second.md", [3])
    writer.sync(collection_id, TEXT_SPACE)
    # The saved file is gone: a reader that caught up reads SQL, never the file.
    writer.path(collection_id, TEXT_SPACE).unlink()
    store = reader.store(collection_id, TEXT_SPACE)
    assert store.ids() == set(first + second)
    assert store.search(_vector(3), 1)[0].chunk_id == second[0]

    with database.session() as session:
        remove_in_session(session, list(session.scalars(select(Document).where(Document.filename == "first.md"))))
    assert reader.store(collection_id, TEXT_SPACE).ids() == set(second)
    other_process.dispose()


def test_bm25_catches_up_with_only_the_new_chunks_texts(site):
    url, database, collection_id, _index_dir = site
    keywords = KeywordIndexManager(Database(url))
    _add_document(database, collection_id, "first.md", [1, 2])
    assert len(keywords.segments(collection_id)) == 1
    read: list[int] = []
    original = keywords._texts
    keywords._texts = lambda ids: read.extend(ids) or original(ids)  # type: ignore[method-assign]
    second = _add_document(database, collection_id, "second.md", [3])
    hits = search_keyword(keywords.indexes([collection_id]), "second.md", k=5)
    assert read == second  # the new chunk's text alone was read
    assert hits[0].chunk_id == second[0]
    with database.session() as session:
        remove_in_session(session, list(session.scalars(select(Document).where(Document.filename == "second.md"))))
    assert second[0] not in {h.chunk_id for h in search_keyword(keywords.indexes([collection_id]), "second.md", k=5)}
    assert read == second  # a delete reads no text


def test_an_unchanged_version_costs_no_catch_up(site):
    _url, database, collection_id, index_dir = site
    manager = IndexManager(database, index_dir, {TEXT_SPACE: DIM})
    _add_document(database, collection_id, "first.md", [1])
    manager.sync(collection_id, TEXT_SPACE)
    calls = []
    original = manager._ready_ids
    manager._ready_ids = lambda *args: calls.append(args) or original(*args)  # type: ignore[method-assign]
    for _ in range(3):
        manager.store(collection_id, TEXT_SPACE)
    assert calls == []
    _add_document(database, collection_id, "second.md", [2])
    manager.store(collection_id, TEXT_SPACE)
    assert len(calls) == 1


def _hold_and_wait(url: str, name: str, held, release) -> None:
    database = Database(url)
    with database.locks.hold(name):
        held.set()
        release.wait(30)


def _hold_until_killed(url: str, name: str, held) -> None:
    database = Database(url)
    with database.locks.hold(name):
        held.set()
        time.sleep(600)


def test_a_named_lock_is_held_across_processes_and_dies_with_its_holder(site):
    url, database, _collection_id, _index_dir = site
    context = multiprocessing.get_context("spawn")
    held, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_and_wait, args=(url, "index:1:text", held, release))
    holder.start()
    assert held.wait(60)
    with pytest.raises(Timeout), database.locks.hold("index:1:text", timeout_s=0.3):
        pass
    with database.locks.hold("index:2:text", timeout_s=0.3):  # another name is free
        pass
    release.set()
    holder.join(30)
    with database.locks.hold("index:1:text", timeout_s=5):
        pass

    held = context.Event()
    killed = context.Process(target=_hold_until_killed, args=(url, "folder-sync:1", held))
    killed.start()
    assert held.wait(60)
    with pytest.raises(Timeout), database.locks.hold("folder-sync:1", timeout_s=0):
        pass
    killed.kill()
    killed.join(30)
    with database.locks.hold("folder-sync:1", timeout_s=0):  # free once its holder is gone
        pass


def test_a_lock_is_reentrant_within_a_thread(site):
    _url, database, _collection_id, _index_dir = site
    with database.locks.hold("collection-write:1"), database.locks.hold("collection-write:1", timeout_s=0):
        pass
