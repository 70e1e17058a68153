"""The whole path with the real default models: sample collection in, cited answers out."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.generation.citations import is_refusal
from app.generation.prompting import NOT_IN_SOURCES
from app.service import KnowledgeBase
from ingest.sentences import normalize_for_match
from tests.conftest import ROOT, SAMPLES, make_settings

SAMPLES_ZH = ROOT / "samples" / "collection-zh"


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
    text_sources, images = sample_kb._answerer().retrieve(
        "Show me the red danger high voltage warning sign", sample_kb.readable_collections(sample_kb.system_user())
    )
    assert images and images[0].filename == "danger-high-voltage-sign.jpg"
    assert os.path.isfile(images[0].image_path)


@pytest.mark.slow  # the CLI in a process of its own: real models, or the app's start
def test_cli_ingests_and_answers_with_citation(tmp_path):
    env = {**os.environ, "MMKB_DATA_DIR": str(tmp_path / "data")}
    kb = [sys.executable, "-m", "app.cli"]
    ingest = subprocess.run(
        kb + ["ingest", str(SAMPLES / "solar-inverter-manual.pdf"), "--collection", "manuals"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ingest.returncode == 0, ingest.stderr
    assert "1 ingested" in ingest.stdout and "100%" in ingest.stderr  # tqdm progress bar
    ask = subprocess.run(
        kb + ["ask", "What is the maximum DC input voltage of the Helios SX-400?", "--collection", "manuals"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ask.returncode == 0, ask.stderr
    assert "600" in ask.stdout
    assert "solar-inverter-manual.pdf, p. 2" in ask.stdout
    again = subprocess.run(
        kb + ["ingest", str(SAMPLES / "solar-inverter-manual.pdf"), "--collection", "manuals"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "0 ingested, 1 unchanged" in again.stdout


# ---------------------------------------------------------------- the Chinese samples
# samples/collection-zh (a born-digital PDF with a table, a scanned notice OCRed with
# chi_sim, a slide deck) and samples/questions-zh.json: Chinese questions and one English
# question about a Chinese page. Answer quality is held to its floor by the answer-language
# work; here every question must find its page, and an answer must carry the gold value or
# refuse (never a wrong value).
RETRIEVAL_TOP_K = 3


@pytest.fixture(scope="module")
def zh_kb(tmp_path_factory, models) -> KnowledgeBase:
    knowledge_base = KnowledgeBase(make_settings(tmp_path_factory.mktemp("samples-zh-data")), models=models)
    report = knowledge_base.ingest(knowledge_base.system_user(), "samples-zh", paths=[SAMPLES_ZH])
    assert not report.failed, report.failed
    yield knowledge_base
    knowledge_base.close()


@pytest.fixture(scope="module")
def zh_questions() -> list[dict]:
    return json.loads((ROOT / "samples" / "questions-zh.json").read_text(encoding="utf-8"))


def _compact(text: str) -> str:
    # "2,000小时" is "2000 小时" in an answer: compare without separators and spaces.
    return "".join(normalize_for_match(text).split())


def test_retrieval_finds_the_page_of_every_chinese_sample_question(zh_kb, zh_questions):
    collections = zh_kb.readable_collections(zh_kb.system_user(), ["samples-zh"])
    misses, ranks = [], []
    for q in _answerable(zh_questions):
        sources, _ = zh_kb._answerer().retrieve(q["question"], collections)
        found = [(s.filename, s.page) for s in sources]
        rank = found.index((q["file"], q["page"])) + 1 if (q["file"], q["page"]) in found else None
        ranks.append(rank)
        if rank is None or rank > RETRIEVAL_TOP_K:
            misses.append((q["question"], found[:RETRIEVAL_TOP_K]))
    hits = sum(r is not None and r <= RETRIEVAL_TOP_K for r in ranks)
    print(f"zh retrieval hit@{RETRIEVAL_TOP_K}: {hits}/{len(ranks)}, hit@1: {ranks.count(1)}/{len(ranks)}, ranks {ranks}")
    assert not misses, "\n".join(map(str, misses))


def test_chinese_sample_answers_carry_the_gold_value_or_refuse(zh_kb, zh_questions):
    wrong, correct = [], 0
    answerable = _answerable(zh_questions)
    for q in answerable:
        answer = zh_kb.ask(zh_kb.system_user(), q["question"], ["samples-zh"])
        assert answer.text.strip(), q["question"]
        if _compact(q["answer"]) in _compact(answer.text):
            correct += 1
        elif not is_refusal(answer.text):
            wrong.append((q["question"], q["answer"], answer.text))
    print(f"zh answers with the gold value: {correct}/{len(answerable)}, wrong: {len(wrong)}")
    assert not wrong, "\n".join(map(str, wrong))
