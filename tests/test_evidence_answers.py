"""Answers decided on evidence, end to end: real ingestion of fresh PDFs, real retrieval, and
the real packaged generator, except where a test must prove what happens when the model
invents or refuses: there a fake generator (named so) stands at the model boundary."""

from __future__ import annotations

import re
import time
from contextlib import contextmanager

import pymupdf as fitz
import pytest

from app.generation.prompting import NOT_IN_SOURCES
from app.model_set import ModelSet
from app.service import KnowledgeBase
from tests.conftest import make_settings

FACTS = [
    "Kestrel-9 turbine data sheet. The maximum operating temperature of the Kestrel-9 turbine is 742 degrees "
    "Celsius. The turbine is serviced every 4,000 hours by the plant's own staff.",
    "Wexford plant safety summary. The Wexford plant recorded 14 days without incident in March. Its safety "
    "officer reviews every incident report within two working days.",
    "Norrland office overview. The Norrland office opened in 2011 and employs 35 people in sales and support. "
    "It serves customers in Sweden and Finland from its building near the harbour.",
]


class FakeInventingGenerator:
    """Stands in for a model that makes up a confident, cited answer whatever the sources say."""

    name = "fake-inventing"
    supports_images = False

    def __init__(self, text: str) -> None:
        self.text = text
        self.started_at: float | None = None

    def stream(self, messages, max_new_tokens):
        self.started_at = time.perf_counter()
        for word in self.text.split(" "):
            yield word + " "


class FakeRefusingGenerator(FakeInventingGenerator):
    """Stands in for a small model that refuses although its sources answer."""

    def __init__(self) -> None:
        super().__init__(NOT_IN_SOURCES)


def _write_pdf(path, pages: list[str]) -> None:
    document = fitz.open()
    for text in pages:
        page = document.new_page()
        page.insert_textbox(fitz.Rect(56, 72, 540, 780), text, fontsize=11)
    document.save(path)


@pytest.fixture(scope="module")
def fresh_kb(tmp_path_factory, models):
    """Three one-fact PDFs nobody here wrote the questions for, ingested with the real models."""
    folder = tmp_path_factory.mktemp("fresh-docs")
    _write_pdf(folder / "kestrel.pdf", ["Introduction. This data sheet describes the turbine family.", FACTS[0]])
    _write_pdf(folder / "wexford.pdf", [FACTS[1]])
    _write_pdf(folder / "norrland.pdf", [FACTS[2]])
    kb = KnowledgeBase(make_settings(tmp_path_factory.mktemp("fresh-data")), models=models)
    report = kb.ingest(kb.system_user(), "fresh", paths=[folder])
    assert not report.failed, report.failed
    yield kb
    kb.close()


@contextmanager
def _with_generator(kb: KnowledgeBase, generator, **settings):
    """The same data and loaded models, another generator (and `settings` changed)."""
    models = ModelSet(kb.settings)
    models.text_embedder = kb.models.text_embedder
    models.reranker = kb.models.reranker
    models.generator = generator
    other = KnowledgeBase(kb.settings.model_copy(update=settings), models=models)
    try:
        yield other
    finally:
        other.close()


def test_an_answerable_question_over_a_fresh_pdf_is_answered_from_the_right_page(fresh_kb):
    answer = fresh_kb.ask(
        fresh_kb.system_user(), "What is the maximum operating temperature of the Kestrel-9 turbine?", ["fresh"]
    )
    assert answer.supported and "742" in answer.text, answer.text
    assert {(s.filename, s.page) for s in answer.cited_sources} == {("kestrel.pdf", 2)}
    assert answer.quote is not None and answer.quote.filename == "kestrel.pdf" and answer.quote.page == 2
    assert "742 degrees Celsius" in answer.quote.text


def test_an_invented_answer_to_an_unanswerable_question_is_refused(fresh_kb):
    """The issue's Norrland case: the model names a person and cites a source that has none."""
    inventing = FakeInventingGenerator("The chief executive of the Norrland office is Anna Lindqvist [1].")
    with _with_generator(fresh_kb, inventing) as kb:
        answer = kb.ask(kb.system_user(), "Who is the chief executive of the Norrland office?", ["fresh"])
    assert inventing.started_at is not None  # the model did write, and was overruled
    assert not answer.supported and answer.text == NOT_IN_SOURCES and not answer.cited


def test_a_question_naming_what_no_document_mentions_is_refused_without_asking_the_model(fresh_kb):
    inventing = FakeInventingGenerator("The Oslo plant recorded 14 days without incident [1].")
    with _with_generator(fresh_kb, inventing) as kb:
        answer = kb.ask(kb.system_user(), "How many days without incident did the Oslo plant record?", ["fresh"])
    assert answer.text == NOT_IN_SOURCES and not answer.supported
    assert inventing.started_at is None


def test_a_refusal_while_a_source_clearly_answers_becomes_the_quoted_sentence(fresh_kb):
    with _with_generator(fresh_kb, FakeRefusingGenerator()) as kb:
        answer = kb.ask(kb.system_user(), "How many days without incident did the Wexford plant record?", ["fresh"])
    assert answer.extractive and answer.supported
    assert "The Wexford plant recorded 14 days without incident in March." in answer.text
    assert [(s.filename, s.page) for s in answer.cited_sources] == [("wexford.pdf", 1)]


def test_the_quote_arrives_before_the_model_writes(fresh_kb):
    generator = FakeInventingGenerator("The Wexford plant recorded 14 days without incident [1].")
    with _with_generator(fresh_kb, generator) as kb:
        events = kb.ask_stream(kb.system_user(), "How many days without incident did the Wexford plant record?", ["fresh"])
        first = next(events)
        quoted_at = time.perf_counter()
        assert generator.started_at is None  # nothing generated yet
        assert first.answer.quote is not None and "14 days without incident" in first.answer.quote.text
        assert first.answer.text == ""
        final = list(events)[-1].answer
    assert generator.started_at is not None and generator.started_at >= quoted_at
    assert final.supported and "14 days" in final.text and final.quote == first.answer.quote


class FakeDistractedGenerator(FakeInventingGenerator):
    """Stands in for a small model that refuses when it reads several sources and answers
    when it reads the one that holds the answer alone (what the focused retry is for)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.source_counts: list[int] = []

    def stream(self, messages, max_new_tokens):
        prompt = messages[-1]["content"]
        numbers = re.findall(r'<source id="(\d+)"', prompt)
        self.source_counts.append(len(numbers))
        if len(numbers) > 1:
            yield from FakeRefusingGenerator().stream(messages, max_new_tokens)
        else:
            yield from FakeInventingGenerator(self.text.replace("[n]", f"[{numbers[0]}]")).stream(messages, max_new_tokens)


def test_a_refused_question_is_asked_again_from_the_quoted_source_alone(fresh_kb):
    # A yes/no question: no sentence can stand as its answer, so only the model can say "Yes".
    question = "Does the Norrland office serve customers in Finland?"
    distracted = FakeDistractedGenerator("Yes, the Norrland office serves customers in Finland [n].")
    with _with_generator(fresh_kb, distracted) as kb:
        answer = kb.ask(kb.system_user(), question, ["fresh"])
    assert distracted.source_counts[0] > 1 and distracted.source_counts[1:] == [1]
    assert answer.supported and not answer.extractive and answer.text.startswith("Yes"), answer.text
    assert [(s.filename, s.page) for s in answer.cited_sources] == [("norrland.pdf", 1)]

    # The setting turns it off: the same model's refusal stands.
    distracted = FakeDistractedGenerator("Yes, the Norrland office serves customers in Finland [n].")
    with _with_generator(fresh_kb, distracted, focused_retry=False) as kb:
        answer = kb.ask(kb.system_user(), question, ["fresh"])
    assert distracted.source_counts == [distracted.source_counts[0]]
    assert not answer.supported and answer.text == NOT_IN_SOURCES
