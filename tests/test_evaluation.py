"""`kb eval retrieval` on a BEIR set made from the samples (real models, real metrics)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from app.answering import Answerer
from app.evaluation import BM25_ONLY, CONFIGS, DEFAULT, load_beir, run_retrieval_eval, score_ranking, select_configs
from app.settings import Settings
from samples.make_beir import write_beir


@pytest.fixture(scope="module")
def beir_dir(tmp_path_factory):
    return write_beir(tmp_path_factory.mktemp("beir"))


def test_metrics_of_a_ranking():
    metrics = score_ranking(["a", "b", "c"], {"b": 1, "z": 1})
    assert metrics["R@1"] == 0 and metrics["R@5"] == 0.5 and metrics["MRR@10"] == 0.5
    assert 0 < metrics["nDCG@10"] < 1


def test_sample_beir_set_matches_the_question_list(beir_dir, sample_questions):
    beir = load_beir(beir_dir)
    answerable = [q for q in sample_questions if q["file"]]
    assert len(beir.queries) == len(answerable)
    assert all(next(iter(rel)) in beir.corpus for rel in beir.qrels.values())


def test_bm25_fusion_ranks_the_answer_page_higher_than_dense_alone(beir_dir, models):
    configs = tuple(c for c in CONFIGS if not c.options.hyde and c.retriever == "pipeline")
    report = run_retrieval_eval(beir_dir, models, configs=configs)
    by_name = {r.name: r.metrics for r in report.results}
    assert report.queries == 14 and report.documents == 14
    # Every answer page is among the top 5 pages for every configuration.
    assert all(metrics["R@5"] == 1.0 for metrics in by_name.values())
    # Measured: dense alone puts the answer page first for 8 of 14, fused with BM25 for 11.
    assert by_name["+ BM25 fusion"]["R@1"] > by_name["dense only"]["R@1"]
    assert by_name["+ BM25 fusion"]["MRR@10"] > by_name["dense only"]["MRR@10"]
    assert all(r.total_ms and "dense" in r.stage_ms for r in report.results)


def test_hyde_configuration_calls_the_generator_and_is_timed(beir_dir, models):
    hyde_only = tuple(c for c in CONFIGS if c.name == "+ HyDE")
    report = run_retrieval_eval(beir_dir, models, limit=1, configs=hyde_only)
    (result,) = report.results
    assert report.queries == 1 and result.stage_ms["hyde"][0] > 100  # a real generation, not a cache hit
    assert result.metrics["R@10"] == 1.0


@pytest.mark.slow  # the CLI in a process of its own: real models, or the app's start
def test_cli_prints_the_table(beir_dir, tmp_path, monkeypatch):
    from app.cli import cli
    from app.settings import get_settings

    monkeypatch.setenv("MMKB_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["eval", "retrieval", "--data", str(beir_dir), "--limit", "3", "--skip-hyde"])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "14 documents" in result.output and "3 queries" in result.output
    for header in (
        "R@1",
        "R@100",
        "MRR@10",
        "nDCG@10",
        "p95 ms",
        "| default |",
        "| BM25 only |",
        "| dense only |",
        "| + BM25 fusion |",
        "| + rerank |",
        "bm25",
    ):
        assert header in result.output
    assert "| + HyDE |" not in result.output


def test_the_default_row_runs_what_the_settings_define(tmp_path):
    shipped = select_configs(Settings(data_dir=tmp_path))[0]
    assert shipped.name == DEFAULT
    # Today's shipped configuration: BM25 fusion and rerank on, HyDE and MMR off.
    assert shipped.options.keyword and shipped.options.rerank and not shipped.options.hyde and shipped.options.mmr_lambda is None
    changed = Settings(data_dir=tmp_path, hybrid_search=False, hyde=True, mmr_lambda=0.6, rerank_top_n=7)
    row = select_configs(changed, "default")[0]
    assert not row.options.keyword and row.options.hyde and row.options.mmr_lambda == 0.6
    assert row.settings.rerank_top_n == 7
    # The same options a real question gets: the answerer's own function, not a copy.
    assert row.options == Answerer(changed, None, None, None).default_options()


def test_configs_picks_rows_in_order_and_rejects_unknown_names(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert [c.name for c in select_configs(settings, "bm25 only, Default")] == [BM25_ONLY, DEFAULT]
    assert [c.name for c in select_configs(settings)][:3] == [DEFAULT, BM25_ONLY, "dense only"]
    assert "+ HyDE" not in [c.name for c in select_configs(settings, skip_hyde=True)]
    with pytest.raises(ValueError, match="choose from default"):
        select_configs(settings, "default,cross-encoder")


def test_default_row_uses_the_settings_depths_and_bm25_only_needs_no_embedding(beir_dir, models, tmp_path):
    # One candidate per question: the default row's answer is first or nowhere.
    settings = Settings(data_dir=tmp_path, database_url=None, rerank_top_n=1)
    report = run_retrieval_eval(beir_dir, models, configs=select_configs(settings, "default,BM25 only"), settings=settings)
    by_name = {r.name: r for r in report.results}
    assert by_name[DEFAULT].metrics["R@100"] == by_name[DEFAULT].metrics["R@1"] > 0.5
    assert "rerank" in by_name[DEFAULT].stage_ms
    assert set(by_name[BM25_ONLY].stage_ms) == {"bm25", "load"} and by_name[BM25_ONLY].metrics["R@5"] >= 0.9


@pytest.mark.slow  # the CLI in a process of its own: real models, or the app's start
def test_cli_configs_option_runs_only_the_rows_named(beir_dir, tmp_path, monkeypatch):
    from app.cli import cli
    from app.settings import get_settings

    monkeypatch.setenv("MMKB_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(
            cli, ["eval", "retrieval", "--data", str(beir_dir), "--limit", "2", "--configs", "BM25 only,default"]
        )
        assert result.exit_code == 0, result.output
        rows = [
            line.split("|")[1].strip()
            for line in result.output.splitlines()
            if line.startswith("| ") and not line.startswith(("| config", "| ---"))
        ]
        assert rows[:2] == [BM25_ONLY, DEFAULT] and "dense only" not in rows
        wrong = runner.invoke(cli, ["eval", "retrieval", "--data", str(beir_dir), "--configs", "nonsense"])
        assert wrong.exit_code == 1 and "nonsense" in wrong.output
    finally:
        get_settings.cache_clear()
