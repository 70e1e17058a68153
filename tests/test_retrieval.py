"""Collection-wide BM25 and reciprocal-rank fusion, on the real sample collection."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.answering import Answerer, RetrievalOptions
from app.models import Chunk, Document
from retrieval.fusion import reciprocal_rank_fusion
from retrieval.keyword import KeywordIndex, search_keyword
from retrieval.tokenize import tokenize
from tests.conftest import SAMPLES


def _page_of(kb, chunk_id: int) -> tuple[str, int]:
    with kb.database.session() as session:
        chunk, document = session.execute(
            select(Chunk, Document).join(Document, Document.id == Chunk.document_id).where(Chunk.id == chunk_id)
        ).one()
        return document.filename, chunk.page


def _samples(kb):
    return kb.readable_collections(kb.system_user(), ["samples"])


@pytest.mark.parametrize(
    "query, expected",
    [("HX-FAN-77", ("solar-inverter-manual.pdf", 5)), ("E-214", ("solar-inverter-manual.pdf", 4))],
)
def test_bm25_puts_the_page_with_an_exact_code_first(sample_kb, query, expected):
    (collection,) = _samples(sample_kb)
    hits = search_keyword(sample_kb.keyword_indexes.indexes([collection.id]), query, k=5)
    assert _page_of(sample_kb, hits[0].chunk_id) == expected
    # The code is rare: every strong match is on its page (the page's text and, since tables
    # became chunks of their own, its table may both hold it); the rest match parts at most.
    strong = [hit for hit in hits if hit.score > hits[0].score / 2]
    assert all(_page_of(sample_kb, hit.chunk_id) == expected for hit in strong)


def test_fusion_finds_a_code_the_dense_candidates_miss(sample_kb):
    # A collection far larger than the candidate list is what a small top-k simulates here:
    # "800 ppm" (the CO2 set point in the greenhouse report) is ~20th for the embedding.
    settings = sample_kb.settings.model_copy(update={"dense_top_k": 10, "keyword_top_k": 10, "rerank_top_n": 10})
    answerer = Answerer(settings, sample_kb.database, sample_kb.indexes, sample_kb.models, sample_kb.keyword_indexes)
    target = ("greenhouse-report-2025.pdf", 2)
    query = "800 ppm"

    dense_only = answerer.rank(query, _samples(sample_kb), RetrievalOptions(keyword=False))
    assert target not in [(c.filename, c.page) for c in dense_only.chunks]

    fused = answerer.rank(query, _samples(sample_kb), RetrievalOptions(keyword=True))
    best = fused.chunks[0]
    assert (best.filename, best.page) == target
    assert "800 ppm" in best.text
    assert {"embed", "dense", "bm25", "fusion", "rerank"} <= set(fused.timings)


def test_reciprocal_rank_fusion_rewards_agreement_between_lists():
    fused = reciprocal_rank_fusion({"dense": [1, 2, 3], "bm25": [3, 4]}, k=60)
    order = [hit.chunk_id for hit in fused]
    # 3 is only third for dense but first for BM25: agreement beats one list's top hit.
    assert order == [3, 1, 2, 4]
    assert fused[0].score == pytest.approx(1 / 63 + 1 / 61)
    assert fused[0].ranks == {"dense": 3, "bm25": 1}
    assert fused[1].score == pytest.approx(1 / 61)


def test_bm25_scores_are_exact_over_the_union_of_collections():
    # Two collections searched together score like one index holding both.
    left = KeywordIndex([(1, "inverter fan replacement HX-FAN-77"), (2, "travel policy hotel cap")])
    right = KeywordIndex([(3, "fan speed curve"), (4, "hotel booking through TripDesk")])
    union = KeywordIndex(
        [
            (1, "inverter fan replacement HX-FAN-77"),
            (2, "travel policy hotel cap"),
            (3, "fan speed curve"),
            (4, "hotel booking through TripDesk"),
        ]
    )
    split = search_keyword([left, right], "fan hotel", k=10)
    joined = search_keyword([union], "fan hotel", k=10)
    assert [(h.chunk_id, round(h.score, 5)) for h in split] == [(h.chunk_id, round(h.score, 5)) for h in joined]


def test_bm25_segments_changed_without_reading_text_score_like_an_index_built_afresh():
    texts = {
        1: "inverter fan replacement HX-FAN-77",
        2: "travel policy hotel cap",
        3: "fan speed curve",
        4: "hotel booking through TripDesk",
        5: "hotel fan in the lobby",
    }
    base = KeywordIndex([(i, texts[i]) for i in (1, 2, 3)])
    added = KeywordIndex([(i, texts[i]) for i in (4, 5)])
    # Chunk 2 deleted, 4 and 5 added, then the segments merged: each step scores exactly as a
    # fresh index of the chunks that remain.
    for segments in ([base.without({2}), added], [KeywordIndex.merged([base.without({2}), added])]):
        changed = search_keyword(segments, "fan hotel", k=10)
        fresh = search_keyword([KeywordIndex([(i, texts[i]) for i in (1, 3, 4, 5)])], "fan hotel", k=10)
        assert [(h.chunk_id, round(h.score, 5)) for h in changed] == [(h.chunk_id, round(h.score, 5)) for h in fresh]
    assert base.without({99}) is base


def test_chinese_text_is_searchable_by_words_without_spaces():
    tokens = tokenize("逆变器显示故障代码E-214")
    assert {"逆变", "变器", "故障", "e-214", "214"} <= set(tokens)
    index = KeywordIndex(
        [
            (1, "逆变器显示故障代码E-214时，请检查绝缘电阻。"),
            (2, "差旅政策：酒店每晚上限180欧元。"),
            (3, "变压器的维护周期为一年。"),
        ]
    )
    hits = search_keyword([index], "逆变器故障", k=3)
    assert hits[0].chunk_id == 1


def test_keyword_index_follows_new_documents(kb, tmp_path):
    user = kb.system_user()
    kb.ingest(user, "docs", paths=[SAMPLES / "solar-inverter-manual.pdf"])
    (collection,) = kb.readable_collections(user, ["docs"])
    assert search_keyword(kb.keyword_indexes.indexes([collection.id]), "E-07rev", k=3) == []
    note = tmp_path / "pump-wiring-notes.md"
    note.write_text("# Pump wiring\nThe control cabinet follows drawing E-07rev for the pump starter.")
    kb.ingest(user, "docs", paths=[note])
    hits = search_keyword(kb.keyword_indexes.indexes([collection.id]), "E-07rev", k=3)
    assert hits and _page_of(kb, hits[0].chunk_id)[0] == "pump-wiring-notes.md"
