"""Maximal marginal relevance: near-duplicate chunks give way to distinct ones (real embedder, real index)."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.mmr import mmr_order

CLEANING = (
    "Cleaning the Helios SX-400 inverter: every six months switch the unit off, wipe the air intake grille, "
    "remove dust from the cooling fan HX-FAN-77 and check that the heat sink fins are free."
)
NEAR_DUPLICATES = {
    "cleaning-2024.txt": CLEANING,
    "cleaning-2025.txt": CLEANING.replace("every six months", "twice a year"),
    "cleaning-copy.txt": CLEANING.replace("wipe", "gently wipe"),
}
DISTINCT = {
    "insulation.txt": "Inverter maintenance also includes a yearly insulation resistance test of the DC strings; "
    "readings below 1 megaohm raise error E-214.",
    "firmware.txt": "Inverter maintenance: firmware updates are installed from a USB stick through the service port; "
    "the inverter restarts twice during an update.",
    "travel.txt": "Hotel costs are capped at 180 EUR per night in Munich; book through TripDesk.",
}
QUESTION = "How do I clean the dust from the inverter's cooling fan and air intake?"


def test_mmr_order_skips_a_near_copy_of_what_it_already_picked():
    vectors = np.array([[1.0, 0.0], [0.999, 0.045], [0.6, 0.8], [0.0, -1.0]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    relevance = [0.9, 0.89, 0.7, 0.1]
    assert mmr_order(relevance, vectors, 1.0) == [0, 1, 2, 3]  # lambda 1: relevance order
    assert mmr_order(relevance, vectors, 0.5, k=2) == [0, 2]  # the copy of item 0 gives way to item 2
    with pytest.raises(ValueError, match="between 0 and 1"):
        mmr_order(relevance, vectors, 1.5)


@pytest.fixture()
def duplicated_kb(kb, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in {**NEAR_DUPLICATES, **DISTINCT}.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
    report = kb.ingest(kb.system_user(), "maintenance", paths=[folder])
    assert not report.failed and len(report.ingested) == 6
    return kb


def test_near_duplicates_give_way_to_distinct_chunks_with_mmr_on(duplicated_kb):
    kb, user = duplicated_kb, duplicated_kb.system_user()
    plain = [s.filename for s in kb.search(user, QUESTION, ["maintenance"], limit=3)]
    # The premise: without MMR the three versions of one paragraph fill the top 3.
    assert set(plain) == set(NEAR_DUPLICATES), plain

    diverse = [s.filename for s in kb.search(user, QUESTION, ["maintenance"], limit=3, mmr_lambda=0.5)]
    assert diverse[0] == plain[0]  # the best chunk stays first
    assert len(set(diverse) & set(NEAR_DUPLICATES)) == 1, diverse
    assert set(diverse[1:]) <= set(DISTINCT), diverse


def test_mmr_from_settings_and_switched_off_per_request(duplicated_kb):
    from app.service import KnowledgeBase

    settings = duplicated_kb.settings.model_copy(update={"mmr_lambda": 0.5})
    kb = KnowledgeBase(settings, models=duplicated_kb.models)
    user = kb.system_user()
    try:
        on = [s.filename for s in kb.search(user, QUESTION, ["maintenance"], limit=3)]
        off = [s.filename for s in kb.search(user, QUESTION, ["maintenance"], limit=3, mmr_lambda=1.0)]
    finally:
        kb.close()
    assert len(set(on) & set(NEAR_DUPLICATES)) == 1
    assert set(off) == set(NEAR_DUPLICATES)
