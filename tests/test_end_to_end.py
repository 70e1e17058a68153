"""The whole path with the real default models: sample collection in, cited answers out."""

from __future__ import annotations

import os
import subprocess
import sys

from app.prompting import NOT_IN_SOURCES
from tests.conftest import ROOT, SAMPLES


def _answerable(questions):
    return [q for q in questions if q["file"]]


# The default generator (the packaged 1.5B since issue 11) on 2 CPU cores, with the evidence
# checks, answers most, not all, of the known questions; this floor is the measurement less
# a margin of one: 10 of 14 (2026-12-01; the 0.5B had reached 9 after heading-aware chunking,
# 12 before; benchmarks/RESULTS.md). Retrieval, which is deterministic, is held to every
# question below (top 3: 14 of 14).
MIN_CORRECTLY_CITED = 9


def test_retrieval_puts_the_answer_page_in_the_top_three_for_every_known_question(sample_kb, sample_questions):
    collections = sample_kb.readable_collections(sample_kb.system_user(), ["samples"])
    for q in _answerable(sample_questions):
        sources, _ = sample_kb._answerer().retrieve(q["question"], collections)
        top = [(s.filename, s.page) for s in sources[:3]]
        assert (q["file"], q["page"]) in top, (q["question"], top)


def test_known_questions_cite_the_right_file_and_page(sample_kb, sample_questions):
    misses = []
    answerable = _answerable(sample_questions)
    for q in answerable:
        answer = sample_kb.ask(sample_kb.system_user(), q["question"], ["samples"])
        assert answer.text.strip(), q["question"]
        cited = {(s.filename, s.page) for s in answer.cited_sources}
        if not answer.supported or (q["file"], q["page"]) not in cited:
            misses.append((q["question"], answer.text, sorted(cited)))
    correct = len(answerable) - len(misses)
    print(f"correctly cited: {correct}/{len(answerable)}")
    assert correct >= MIN_CORRECTLY_CITED, "\n".join(map(str, misses))


def test_every_cited_source_is_listed_with_file_and_page(sample_kb, sample_questions):
    q = _answerable(sample_questions)[1]
    answer = sample_kb.ask(sample_kb.system_user(), q["question"], ["samples"])
    assert answer.cited, answer.text
    numbers = {s.number for s in answer.sources}
    for n in answer.cited:
        assert n in numbers and f"[{n}]" in answer.text
    for source in answer.sources:
        assert source.filename and source.page >= 1


def test_questions_the_documents_cannot_answer_are_refused(sample_kb, sample_questions):
    unanswerable = [q for q in sample_questions if not q["file"]]
    assert unanswerable
    for q in unanswerable:
        answer = sample_kb.ask(sample_kb.system_user(), q["question"], ["samples"])
        assert not answer.supported and answer.text == NOT_IN_SOURCES, (q["question"], answer.text)


def test_figures_are_found_and_returned_with_the_answer(sample_kb):
    text_sources, images = sample_kb._answerer().retrieve("Show me the red danger high voltage warning sign", sample_kb.readable_collections(sample_kb.system_user()))
    assert images and images[0].filename == "danger-high-voltage-sign.jpg"
    assert os.path.isfile(images[0].image_path)


def test_cli_ingests_and_answers_with_citation(tmp_path):
    env = {**os.environ, "MMKB_DATA_DIR": str(tmp_path / "data")}
    kb = [sys.executable, "-m", "app.cli"]
    ingest = subprocess.run(kb + ["ingest", str(SAMPLES / "solar-inverter-manual.pdf"), "--collection", "manuals"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert ingest.returncode == 0, ingest.stderr
    assert "1 ingested" in ingest.stdout and "100%" in ingest.stderr  # tqdm progress bar
    ask = subprocess.run(kb + ["ask", "What is the maximum DC input voltage of the Helios SX-400?", "--collection", "manuals"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert ask.returncode == 0, ask.stderr
    assert "600" in ask.stdout
    assert "solar-inverter-manual.pdf, p. 2" in ask.stdout
    again = subprocess.run(kb + ["ingest", str(SAMPLES / "solar-inverter-manual.pdf"), "--collection", "manuals"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert "0 ingested, 1 unchanged" in again.stdout
