"""The query pipeline (retrieval.pipeline) with fake retrievers, loaders and post-processors:
no model is loaded, so these run in the fast tier. The SQL loader's permission filter runs on
a real (SQLite) database."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from app.db import Database
from app.models import Chunk, ChunkKind, Collection, Document, DocumentStatus
from app.registry import ScoreMap
from app.retrievers import SqlCandidateLoader
from rerank.base import Reranking
from rerank.lexical import LexicalFusionReranker
from retrieval.fusion import reciprocal_rank_fusion
from retrieval.mmr import MaximalMarginalRelevance
from retrieval.pipeline import Candidate, Prepare, Process, Query, QueryPipeline, Retrieve


def fake_candidate(chunk_id: int, score: float = 0.0, text: str = "", embedding: np.ndarray | None = None) -> Candidate:
    return Candidate(
        chunk_id=chunk_id,
        text=text or f"chunk {chunk_id}",
        score=score,
        collection_id=1,
        collection_name="fake",
        document_id=1,
        filename="fake.pdf",
        page=1,
        kind="text",
        heading_path="",
        image_path=None,
        vector_space="text",
        embedding=None if embedding is None else np.asarray(embedding, dtype=np.float32).tobytes(),
    )


class FakeRetriever:
    """Returns a fixed list of chunk ids; records the k it was asked for."""

    def __init__(self, name: str, ids: list[int]) -> None:
        self.name = name
        self.ids = ids
        self.asked: list[int] = []

    def retrieve(self, query: Query, k: int) -> list[int]:
        self.asked.append(k)
        return self.ids[:k]


class FakeLoader:
    """Every id becomes a candidate scored by its position; records the ids it was given."""

    def __init__(self) -> None:
        self.given: list[int] = []

    def load(self, query: Query, chunk_ids) -> list[Candidate]:
        self.given = list(chunk_ids)
        return [fake_candidate(chunk_id, score=1.0 / (i + 1)) for i, chunk_id in enumerate(chunk_ids)]


class FakeProcessor:
    """Reverses the candidates and notes its name in `log`, so the processors' order shows."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def process(self, query: Query, candidates: list[Candidate]) -> list[Candidate]:
        self.log.append(self.name)
        return list(reversed(candidates))


class FakeVectorStep:
    """A query step: one fixed vector for the embedder "fake"."""

    def prepare(self, query: Query) -> None:
        query.vectors = {"fake": np.ones(2, dtype=np.float32) / np.sqrt(2)}


def fake_query(depth: int = 10, **fields) -> Query:
    return Query(text="what is E-214?", collection_ids=[1], groups={"fake": [1]}, language="en", depth=depth, **fields)


def test_several_lists_are_fused_by_reciprocal_rank():
    lists = {"dense": [1, 2, 3], "bm25": [3, 4]}
    steps = [
        Retrieve("dense", FakeRetriever("dense", lists["dense"]), 10),
        Retrieve("bm25", FakeRetriever("bm25", lists["bm25"]), 10),
    ]
    loader = FakeLoader()
    result = QueryPipeline(steps, loader).run(fake_query())
    assert result.lists == lists
    assert loader.given == [hit.chunk_id for hit in reciprocal_rank_fusion(lists)] == [3, 1, 2, 4]
    assert [c.chunk_id for c in result.candidates] == [3, 1, 2, 4]


def test_one_list_alone_keeps_its_own_order():
    loader = FakeLoader()
    QueryPipeline([Retrieve("dense", FakeRetriever("dense", [5, 9, 2]), 10)], loader).run(fake_query())
    assert loader.given == [5, 9, 2]


def test_the_fused_list_is_cut_to_the_query_depth_and_lists_are_at_least_that_deep():
    dense, clip = FakeRetriever("dense", list(range(1, 21))), FakeRetriever("clip", [30, 31, 32])
    loader = FakeLoader()
    steps = [Retrieve("dense", dense, 4), Retrieve("clip", clip, 2, deepen=False)]
    result = QueryPipeline(steps, loader).run(fake_query(depth=6))
    assert dense.asked == [6] and clip.asked == [2]  # max(top_k, depth); CLIP keeps its own count
    assert len(loader.given) == 6 and len(result.candidates) == 6


def test_post_processors_run_in_order_and_stages_are_timed_under_their_names():
    log: list[str] = []
    steps = [Prepare("embed", FakeVectorStep()), Retrieve("dense", FakeRetriever("dense", [1, 2, 3]), 10)]
    processors = [Process("rerank", FakeProcessor("rerank", log)), Process("mmr", FakeProcessor("mmr", log))]
    result = QueryPipeline(steps, FakeLoader(), processors).run(fake_query())
    assert log == ["rerank", "mmr"]
    assert [c.chunk_id for c in result.candidates] == [1, 2, 3]  # reversed twice
    assert list(result.timings) == ["embed", "dense", "fusion", "load", "rerank", "mmr"]


def test_a_processor_needing_more_candidates_is_skipped_and_not_timed():
    log: list[str] = []
    processors = [Process("rerank", FakeProcessor("rerank", log)), Process("mmr", FakeProcessor("mmr", log), min_candidates=2)]
    result = QueryPipeline([Retrieve("dense", FakeRetriever("dense", [7]), 10)], FakeLoader(), processors).run(fake_query())
    assert log == ["rerank"] and "mmr" not in result.timings


def test_a_retriever_is_added_by_one_line():
    def steps():
        return [Retrieve("dense", FakeRetriever("dense", [1, 2, 3]), 10), Retrieve("bm25", FakeRetriever("bm25", [2, 3]), 10)]

    before = QueryPipeline(steps(), FakeLoader()).run(fake_query())
    extended = steps() + [Retrieve("extra", FakeRetriever("extra", [3, 8]), 10)]  # the one line
    after = QueryPipeline(extended, FakeLoader()).run(fake_query())
    assert "extra" not in before.lists and after.lists["extra"] == [3, 8]
    assert [c.chunk_id for c in before.candidates] == [2, 3, 1]
    assert [c.chunk_id for c in after.candidates] == [3, 2, 1, 8]  # 3 is in every list now


def test_a_translated_list_shares_its_stage_timing():
    steps = [
        Retrieve("dense", FakeRetriever("dense", [1]), 10),
        Retrieve("translated", FakeRetriever("dense (translated)", [2]), 10),
        Retrieve("translated", FakeRetriever("bm25 (translated)", [3]), 10),
    ]
    result = QueryPipeline(steps, FakeLoader()).run(fake_query(also="E-214"))
    assert list(result.lists) == ["dense", "dense (translated)", "bm25 (translated)"]
    assert list(result.timings) == ["dense", "translated", "fusion", "load"]


def test_the_query_reads_its_other_wording_together():
    assert fake_query().search_text == "what is E-214?"
    query = fake_query(also="E-214 code", vectors={"fake": np.array([1.0, 0.0], dtype=np.float32)})
    query.also_vectors = {"fake": np.array([0.0, 1.0], dtype=np.float32)}
    assert query.search_text == "what is E-214? E-214 code"
    assert np.allclose(query.scoring_vectors()["fake"], np.array([1.0, 1.0]) / np.sqrt(2))


def test_the_rerank_post_processor_gives_the_reranker_texts_and_priors_and_keeps_its_scores():
    candidates = [
        fake_candidate(1, score=0.5, text="Hotels in Munich are reimbursed up to 180 EUR."),
        fake_candidate(2, score=0.4, text="Error E-214: the insulation resistance is too low."),
        fake_candidate(3, score=0.1, text="Tomatoes grow under glass."),
    ]
    ranked = Reranking(LexicalFusionReranker()).process(fake_query(), candidates)
    assert [c.chunk_id for c in ranked] == [2, 1, 3]
    assert [c.score for c in ranked] == pytest.approx([0.4 + 0.3, 0.5, 0.1])
    assert ranked[0] == replace(candidates[1], score=ranked[0].score)  # only the score changed


def test_mmr_as_a_post_processor_moves_a_near_duplicate_down():
    query = fake_query()
    FakeVectorStep().prepare(query)
    candidates = [
        fake_candidate(1, 3.0, embedding=np.array([1.0, 0.0])),
        fake_candidate(2, 2.9, embedding=np.array([1.0, 0.0])),  # the same passage again
        fake_candidate(3, 2.0, embedding=np.array([0.0, 1.0])),
    ]
    assert [c.chunk_id for c in MaximalMarginalRelevance(1.0).process(query, candidates)] == [1, 2, 3]
    diversified = MaximalMarginalRelevance(0.5).process(query, candidates)
    assert [c.chunk_id for c in diversified] == [1, 3, 2]
    assert [c.score for c in diversified] == [3.0, 2.0, 2.9]  # the reranker's scores, reordered


@pytest.fixture()
def two_collections(tmp_path):
    """Two collections, each with a ready document of one chunk; "mine" also has a pending one."""
    database = Database(f"sqlite:///{tmp_path / 'kb.db'}")
    vector = np.array([0.6, 0.8], dtype=np.float32)
    ids: dict[str, int] = {}
    with database.session() as session:
        for name in ("mine", "theirs"):
            collection = Collection(name=name)
            session.add(collection)
            session.flush()
            ids[name] = collection.id
            for status in (DocumentStatus.ready, DocumentStatus.pending) if name == "mine" else (DocumentStatus.ready,):
                document = Document(
                    collection_id=collection.id, sha256=f"{name}-{status.value}", filename=f"{name}.pdf", status=status
                )
                session.add(document)
                session.flush()
                chunk = Chunk(
                    document_id=document.id,
                    collection_id=collection.id,
                    page=2,
                    kind=ChunkKind.text,
                    text=f"{name} {status.value} passage",
                    vector_space="text",
                    embedding=vector.tobytes(),
                )
                session.add(chunk)
                session.flush()
                ids[f"{name}-{status.value}"] = chunk.id
    yield database, ids
    database.dispose()


def test_the_sql_loader_returns_none_of_another_collections_chunks(two_collections):
    database, ids = two_collections
    loader = SqlCandidateLoader(database, lambda name: ScoreMap())
    every_id = [ids["theirs-ready"], ids["mine-pending"], ids["mine-ready"]]
    query = Query(text="passage", collection_ids=[ids["mine"]], groups={"fake": [ids["mine"]]}, language="en", depth=10)
    query.vectors = {"fake": np.array([1.0, 0.0], dtype=np.float32)}
    loaded = loader.load(query, every_id)
    # Neither the other collection's chunk nor a document that is not ready comes back.
    assert [c.chunk_id for c in loaded] == [ids["mine-ready"]]
    mine = loaded[0]
    assert (mine.collection_name, mine.filename, mine.page, mine.kind, mine.text) == (
        "mine",
        "mine.pdf",
        2,
        "text",
        "mine ready passage",
    )
    assert mine.score == pytest.approx(0.6)  # the prior: stored vector · query vector, through the score map
    assert loader.fetch(every_id, []) == {}
    assert set(loader.fetch(every_id, [ids["mine"], ids["theirs"]])) == {ids["mine-ready"], ids["theirs-ready"]}


def test_the_sql_loader_scores_a_vector_of_another_size_zero(two_collections):
    database, ids = two_collections
    loader = SqlCandidateLoader(database, lambda name: ScoreMap(scale=2.0, offset=1.0))
    query = Query(text="passage", collection_ids=[ids["mine"]], groups={"fake": [ids["mine"]]}, language="en", depth=10)
    query.vectors = {"fake": np.array([1.0, 0.0, 0.0], dtype=np.float32)}
    assert [c.score for c in loader.load(query, [ids["mine-ready"]])] == [0.0]
    query.vectors = {"fake": np.array([0.0, 1.0], dtype=np.float32)}
    assert loader.load(query, [ids["mine-ready"]])[0].score == pytest.approx(2.0 * 0.8 + 1.0)
