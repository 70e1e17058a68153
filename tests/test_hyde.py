"""HyDE with the real packaged generator: one generation per new question, then the cache."""

from __future__ import annotations

import numpy as np

from retrieval.hyde import HYDE_PROMPT, combine
from tests.helpers import RecordingEmbedder, recording_kb


def test_combined_vector_is_the_normalised_mean():
    q, h = np.array([1.0, 0.0], dtype=np.float32), np.array([0.0, 1.0], dtype=np.float32)
    combined = combine(q, h)
    assert np.allclose(combined, [2**-0.5, 2**-0.5]) and np.isclose(np.linalg.norm(combined), 1.0)


def test_hyde_writes_one_passage_per_question_and_caches_it(sample_kb, sample_questions):
    kb = recording_kb(sample_kb.settings, sample_kb.models)
    generator = kb.models.generator
    embedded = RecordingEmbedder(kb.models.text_embedder)
    kb.models.text_embedder = embedded
    user = kb.system_user()
    q = next(q for q in sample_questions if q["file"] == "employee-travel-policy.pdf" and q["page"] == 3)

    kb.search(user, q["question"], ["samples"], hyde=False)
    assert generator.calls == []  # off: no generation during retrieval

    sources = kb.search(user, q["question"], ["samples"], hyde=True)
    assert len(generator.calls) == 1 and generator.calls[0][0]["content"] == HYDE_PROMPT
    assert len(embedded.texts) == 3  # the question (off), then the question and the passage (on)
    assert (q["file"], q["page"]) in [(s.filename, s.page) for s in sources[:3]]

    again = kb.search(user, "  " + q["question"].upper(), ["samples"], hyde=True)
    assert len(generator.calls) == 1  # same question (case and spacing aside): cached passage
    assert len(embedded.texts) == 4  # ...and its cached embedding: only the question is embedded again
    assert [s.chunk_id for s in again] == [s.chunk_id for s in sources]

    ranking = kb._answerer().rank(q["question"], kb.readable_collections(user, ["samples"]))
    assert ranking.hypothetical_passage is None  # MMKB_HYDE defaults to off
    assert len(generator.calls) == 1
    kb.close()


def test_hyde_on_in_settings_is_switched_off_per_request(sample_kb):
    kb = recording_kb(sample_kb.settings.model_copy(update={"hyde": True}), sample_kb.models)
    try:
        sources = kb.search(kb.system_user(), "Which fan does the inverter use?", ["samples"], hyde=False)
        assert sources and kb.models.generator.calls == []  # MMKB_HYDE=true, but this request said no
        assert kb._answerer().default_options().hyde is True  # ...and it applies when a request says nothing
    finally:
        kb.close()
