"""A follow-up question is rewritten with the conversation before retrieval (real generator)."""

from __future__ import annotations

from tests.helpers import recording_kb


def test_follow_up_is_made_standalone_and_finds_the_right_page(sample_kb):
    kb = recording_kb(sample_kb.settings, sample_kb.models)
    history = [
        (
            "What is the highest DC voltage the Helios SX-400 can accept on its input?",
            "The Helios SX-400 accepts at most 600 V DC on its input [1].",
        )
    ]
    answer = kb.ask(kb.system_user(), "How long is its warranty?", ["samples"], hyde=False, history=history)

    assert answer.question == "How long is its warranty?"
    standalone = answer.standalone_question.lower()
    assert "warranty" in standalone and ("sx-400" in standalone or "helios" in standalone), standalone
    # Retrieval searched with the rewritten question and found the manual's warranty page.
    assert ("solar-inverter-manual.pdf", 1) in [(s.filename, s.page) for s in answer.sources[:3]]
    # One rewrite, one answer: the retrieval saw the standalone question, the prompt too.
    assert len(kb.models.generator.calls) == 2
    assert answer.standalone_question in kb.models.generator.calls[1][-1]["content"]

    kb.models.generator.calls.clear()
    kb.search(kb.system_user(), "How long is the warranty?", ["samples"], hyde=False)
    assert kb.models.generator.calls == []  # no history: nothing rewritten
    kb.close()
