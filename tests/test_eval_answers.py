"""`kb eval answers`: metric functions on hand-written cases, QA-set reading, and one real
run of the command (real embedder, real packaged generator) on a three-question subset."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from app.answer_eval import (
    GoldPage,
    QaItem,
    QaSetError,
    QuestionResult,
    citation_precision,
    citation_recall,
    contains_gold,
    exact_match,
    load_qa_set,
    normalize_answer,
    score_answer,
    summarize,
    token_f1,
)
from app.generation.prompting import NOT_IN_SOURCES
from app.schemas import Answer, Source
from tests.conftest import ROOT, SAMPLES

P = GoldPage


def test_normalisation_drops_case_punctuation_articles_and_citation_markers():
    assert normalize_answer("The  Standard warranty is 10 years [1][2].") == "standard warranty is 10 years"
    assert normalize_answer("An answer [1, 3]!") == "answer"


def test_token_f1_and_exact_match_on_known_pairs():
    # prediction tokens: standard warranty is 10 years (5); gold: 10 years (2); overlap 2
    assert token_f1("The standard warranty is 10 years [1].", "10 years") == pytest.approx(2 * 0.4 * 1 / 1.4)
    assert token_f1("10 years [1].", "10 years") == 1.0
    assert token_f1("It is E-214.", "E-215") == 0.0  # "e214" vs "e215" share no token ("it", "is" are not gold)
    assert token_f1("week 19 week", "week 19") == pytest.approx(
        2 * (2 / 3) * 1 / (2 / 3 + 1)
    )  # a repeated word matches as often as gold has it
    assert token_f1("", "10 years") == 0.0
    assert exact_match("10 Years [1].", "10 years") and not exact_match("About 10 years [1].", "10 years")


def test_gold_in_answer_respects_word_boundaries():
    assert contains_gold("It reached 48.6 kg per square metre [3].", "48.6 kg per square metre")
    assert not contains_gold("It is 148 kg [1].", "48 kg")
    assert contains_gold("Use HX-FAN-77 [5].", "hx-fan-77")


def test_citation_precision_and_recall():
    gold = frozenset({P("a.pdf", 2), P("a.pdf", 3)})
    assert citation_precision({P("a.pdf", 2), P("b.pdf", 2)}, gold) == 0.5
    assert citation_recall({P("a.pdf", 2), P("b.pdf", 2)}, gold) == 0.5
    assert citation_precision({P("a.pdf", 2), P("a.pdf", 3)}, gold) == 1.0 and citation_recall({P("a.pdf", 3)}, gold) == 0.5
    assert citation_precision(set(), gold) is None and citation_recall(set(), gold) == 0.0


def _source(number, filename, page):
    return Source(number=number, chunk_id=number, collection="c", filename=filename, page=page, kind="text", text="x", score=1.0)


def test_scoring_an_answer_uses_its_cited_sources_not_all_sources():
    item = QaItem("q1", "Max DC voltage?", "600 V", frozenset({P("manual.pdf", 2)}))
    answer = Answer(
        question=item.question,
        text="The maximum DC input is 600 V [2].",
        sources=[_source(1, "manual.pdf", 1), _source(2, "manual.pdf", 2), _source(3, "policy.pdf", 2)],
        cited=[2],
    )
    result = score_answer(item, answer, 1.5)
    assert result.cited == [("manual.pdf", 2)] and not result.refused
    assert result.precision == 1.0 and result.recall == 1.0 and result.contains and not result.exact
    assert result.f1 == pytest.approx(token_f1("maximum dc input is 600 v", "600 v"))

    wrong_page = score_answer(item, answer.model_copy(update={"cited": [1, 3]}), 1.0)
    assert wrong_page.precision == 0.0 and wrong_page.recall == 0.0

    refused = score_answer(item, Answer(question=item.question, text=NOT_IN_SOURCES, supported=False), 0.2)
    assert refused.refused and refused.f1 == 0.0 and refused.precision is None and refused.recall == 0.0

    unanswerable = QaItem("q2", "Battery size?", None)
    assert score_answer(unanswerable, Answer(question="?", text=NOT_IN_SOURCES, supported=False), 0.1).refused
    made_up = score_answer(unanswerable, answer, 2.0)
    assert not made_up.refused and made_up.f1 is None and made_up.recall is None


def test_summary_averages_only_where_a_metric_is_defined():
    def result(gold, refused, f1=None, exact=None, contains=None, precision=None, recall=None, latency=1.0):
        return QuestionResult("q", "?", gold, "a", refused, [], latency, f1, exact, contains, precision, recall)

    summary = summarize(
        "full",
        [
            result("x", False, 1.0, True, True, 1.0, 1.0, latency=2.0),
            result("y", False, 0.5, False, True, 0.5, 1.0, latency=4.0),
            result("z", True, 0.0, False, False, None, 0.0, latency=0.5),  # a false refusal: no citations
            result(None, True, latency=0.1),
            result(None, False, latency=3.0),
        ],
    )
    assert (summary.answerable, summary.unanswerable, summary.false_refusals) == (3, 2, 1)
    assert summary.f1 == pytest.approx(0.5) and summary.exact == pytest.approx(1 / 3) and summary.contains == pytest.approx(2 / 3)
    assert summary.citation_precision == pytest.approx(0.75)  # the refusal has no precision
    assert summary.citation_recall == pytest.approx(2 / 3)  # ...but counts 0 for recall
    assert summary.refusal_accuracy == 0.5 and summary.p50_s == 2.0


def test_reads_jsonl_and_the_samples_question_list(tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        "\n".join(
            json.dumps(row)
            for row in [
                {"id": "a", "question": "Cap?", "answer": "180 EUR", "file": "p.pdf", "page": 3},
                {"question": "Where?", "answer": "TripDesk", "file": "p.pdf", "pages": [1, 2]},
                {
                    "question": "Both?",
                    "answer": "yes",
                    "sources": [{"file": "p.pdf", "pages": [1]}, {"file": "q.pdf", "page": 4}],
                },
                {"question": "Tokyo meals?", "answerable": False},
            ]
        )
        + "\n\n"
    )
    items = load_qa_set(qa).items
    assert [i.id for i in items] == ["a", "q2", "q3", "q4"]
    assert items[0].gold_pages == {P("p.pdf", 3)} and items[1].gold_pages == {P("p.pdf", 1), P("p.pdf", 2)}
    assert items[2].gold_pages == {P("p.pdf", 1), P("q.pdf", 4)} and not items[3].answerable
    samples = load_qa_set(ROOT / "samples")
    assert len(samples.items) == 16 and sum(not i.answerable for i in samples.items) == 2
    assert samples.documents == ROOT / "samples" / "collection"


@pytest.mark.parametrize(
    "line, reason",
    [
        ('{"question": "Cap?", "answer": "180 EUR"}', "gold 'file'"),
        ('{"question": "Cap?", "answer": "180 EUR", "file": "p.pdf", "page": 0}', "pages must be whole numbers"),
        ('{"question": "", "answerable": false}', "'question' is missing"),
        ('{"question": "Cap?", "file": "p.pdf", "page": 2}', "non-empty 'answer'"),
        ("not json", "not valid JSON"),
    ],
)
def test_bad_lines_are_reported_with_file_and_line(tmp_path, line, reason):
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "ok?", "answerable": false}\n' + line + "\n")
    with pytest.raises(QaSetError, match=rf"qa.jsonl line 2: .*{reason}"):
        load_qa_set(qa)


def test_a_folder_without_a_qa_file_is_refused_clearly(tmp_path):
    with pytest.raises(QaSetError, match="no QA file; expected one of qa.jsonl"):
        load_qa_set(tmp_path)


@pytest.mark.slow  # the CLI in a process of its own: real models, or the app's start
def test_the_command_answers_a_small_set_and_prints_both_configurations(tmp_path, monkeypatch):
    """One real run: the solar manual, two questions it answers and one it does not."""
    from app.cli import cli
    from app.settings import get_settings

    data = tmp_path / "set"
    (data / "docs").mkdir(parents=True)
    shutil.copy(SAMPLES / "solar-inverter-manual.pdf", data / "docs")
    questions = json.loads((ROOT / "samples" / "questions.json").read_text())
    chosen = [q for q in questions if q["answer"] in ("600 V", "HX-FAN-77")] + [q for q in questions if q["file"] is None][-1:]
    assert len(chosen) == 3 and "battery" in chosen[2]["question"]
    (data / "qa.jsonl").write_text("".join(json.dumps(q) + "\n" for q in chosen))
    monkeypatch.setenv("MMKB_DATA_DIR", str(tmp_path / "kb"))
    get_settings.cache_clear()
    out = tmp_path / "answers.jsonl"
    result = CliRunner().invoke(cli, ["eval", "answers", "--data", str(data), "--output", str(out)])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "3 questions (2 answerable, 1 unanswerable)" in result.output and "generator: llama-cpp:" in result.output
    assert "| full pipeline |" in result.output and "| naive (dense top-k) |" in result.output
    assert not (tmp_path / "kb" / "mmkb.sqlite3").exists()  # the set went into a temporary knowledge base

    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 6
    for record in records:
        # Every stored score is the metric of the answer text actually produced.
        assert record["refused"] == (record["answer"] == NOT_IN_SOURCES)
        assert all(file == "solar-inverter-manual.pdf" and 1 <= page <= 5 for file, page in record["cited"])
        if record["gold_answer"] is not None and not record["refused"]:
            assert record["f1"] == pytest.approx(token_f1(record["answer"], record["gold_answer"]))
    full = {r["id"]: r for r in records if r["config"] == "full pipeline"}
    # The full pipeline finds the part number and its page. Whether the 0.5B model refuses the
    # battery question over this one manual varies with chunking (it stopped refusing when
    # chunks began to follow headings); tests/test_end_to_end.py holds refusals on the samples.
    fan = next(r for r in full.values() if r["gold_answer"] == "HX-FAN-77")
    assert fan["contains"] and ["solar-inverter-manual.pdf", 5] in fan["cited"] and fan["recall"] == 1.0
    battery = next(r for r in full.values() if r["gold_answer"] is None)
    full_row = next(line for line in result.output.splitlines() if line.startswith("| full pipeline |"))
    cells = [c.strip() for c in full_row.strip("|").split("|")]
    recall = sum(r["recall"] for r in full.values() if r["gold_answer"] is not None) / 2
    assert cells[5] == f"{recall:.3f}" and cells[6] == f"{float(battery['refused']):.3f}"


def test_an_unknown_collection_fails_before_any_model_loads(tmp_path, monkeypatch):
    from app.cli import cli
    from app.settings import get_settings

    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "Cap?", "answer": "180 EUR", "file": "p.pdf", "page": 3}\n')
    monkeypatch.setenv("MMKB_DATA_DIR", str(tmp_path / "kb"))
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["eval", "answers", "--data", str(qa), "--collection", "handbooks"])
    get_settings.cache_clear()
    assert result.exit_code == 1 and "no readable collection named handbooks" in result.output
    assert not (tmp_path / "kb" / "models").exists()  # the generator was never joined or loaded
