"""HyDE with the real packaged generator: one generation per new question, then the cache."""

from __future__ import annotations

import numpy as np

from retrieval.hyde import HYDE_PROMPT, combine
from tests.helpers import recording_kb


def test_combined_vector_is_the_normalised_mean():
    q, h = np.array([1.0, 0.0], dtype=np.float32), np.array([0.0, 1.0], dtype=np.float32)
    combined = combine(q, h)
    assert np.allclose(combined, [2**-0.5, 2**-0.5]) and np.isclose(np.linalg.norm(combined), 1.0)


def test_hyde_writes_one_passage_per_question_and_caches_it(sample_kb, sample_questions):
    kb = recording_kb(sample_kb.settings, sample_kb.models)
    generator = kb.models.generator
    user = kb.system_user()
    q = next(q for q in sample_questions if q["file"] == "employee-travel-policy.pdf" and q["page"] == 3)

    kb.search(user, q["question"], ["samples"], hyde=False)
    assert generator.calls == []  # off: no generation during retrieval

    sources = kb.search(user, q["question"], ["samples"], hyde=True)
    assert len(generator.calls) == 1 and generator.calls[0][0]["content"] == HYDE_PROMPT
    assert (q["file"], q["page"]) in [(s.filename, s.page) for s in sources[:3]]

    again = kb.search(user, "  " + q["question"].upper(), ["samples"], hyde=True)
    assert len(generator.calls) == 1  # same question (case and spacing aside): cached passage
    assert [s.chunk_id for s in again] == [s.chunk_id for s in sources]

    ranking = kb._answerer().rank(q["question"], kb.readable_collections(user, ["samples"]))
    assert ranking.hypothetical_passage is None  # MMKB_HYDE defaults to off
    kb.close()
