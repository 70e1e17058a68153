"""`kb eval images` and the CLIP path (MMKB_IMAGE_EMBEDDER_PATH) end to end.

No CLIP weights can be installed here, so the CLIP tests use fake_tiny_clip: a transformers
CLIPModel with random weights, built by the test. It proves the plumbing (a configured path
loads, image chunks get CLIP vectors in their own space, text-to-image candidates enter the
fusion, the evaluation reports the CLIP rows); retrieval QUALITY IS NOT MEASURED by it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.answering import RetrievalOptions
from app.image_evaluation import ImageSetError, format_image_report, load_image_set, run_image_eval
from app.indexes import IMAGE_SPACE, TEXT_SPACE
from app.model_set import ModelSet
from app.models import Chunk
from app.service import KnowledgeBase
from samples.make_image_eval import write_image_set
from samples.untrained_clip import build_untrained_clip
from tests.conftest import SAMPLES, make_settings

CAPTIONS = ["an electrical wiring diagram", "a bar chart", "a red warning sign", "a photo of a sign on a wall"]


def build_fake_tiny_clip(out: Path) -> Path:
    """A randomly initialised CLIP small enough to build in a second, in a real one's folder layout."""
    return build_untrained_clip(out, "tiny", CAPTIONS)


@pytest.fixture(scope="module")
def fake_tiny_clip(tmp_path_factory) -> Path:
    return build_fake_tiny_clip(tmp_path_factory.mktemp("models") / "fake_tiny_clip")


@pytest.fixture()
def clip_models(tmp_path, models, fake_tiny_clip) -> ModelSet:
    """The real default models plus the fake CLIP, configured the way an admin would."""
    clip_set = ModelSet(make_settings(tmp_path / "m", image_embedder_path=fake_tiny_clip))
    clip_set.text_embedder = models.text_embedder
    clip_set.ocr = models.ocr
    clip_set.reranker = models.reranker
    return clip_set


@pytest.fixture(scope="module")
def image_set(tmp_path_factory) -> Path:
    return write_image_set(tmp_path_factory.mktemp("image-set"))


def test_the_image_set_format_and_its_errors(tmp_path, image_set):
    loaded = load_image_set(image_set)
    assert len(loaded.images) == 3 and len(loaded.queries) == 3
    assert {q.file for q in loaded.queries} == {
        "pump-control-wiring-diagram.png",
        "monthly-pv-yield-bar-chart.png",
        "danger-high-voltage-sign.jpg",
    }

    broken = tmp_path / "broken"
    (broken / "images").mkdir(parents=True)
    with pytest.raises(ImageSetError, match="captions.jsonl is missing"):
        load_image_set(broken)
    (broken / "images" / "a.png").write_bytes((SAMPLES / "monthly-pv-yield-bar-chart.png").read_bytes())
    (broken / "captions.jsonl").write_text(json.dumps({"file": "a.png", "caption": "a chart"}) + "\n{not json\n")
    with pytest.raises(ImageSetError, match=r"captions.jsonl:2: not JSON"):
        load_image_set(broken)
    (broken / "captions.jsonl").write_text(json.dumps({"file": "missing.png", "captions": ["x"]}) + "\n")
    with pytest.raises(ImageSetError, match=r"captions.jsonl:1: .*missing.png does not exist"):
        load_image_set(broken)
    (broken / "captions.jsonl").write_text(json.dumps({"file": "a.png", "captions": []}) + "\n")
    with pytest.raises(ImageSetError, match='needs "captions"'):
        load_image_set(broken)


@pytest.mark.slow  # the CLI in a process of its own: real models, or the app's start
def test_cli_reports_the_text_path_without_a_clip_model(image_set, tmp_path, monkeypatch):
    from app.cli import cli
    from app.settings import get_settings

    monkeypatch.setenv("MMKB_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["eval", "images", "--data", str(image_set)])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "3 images, 3 captions" in result.output and "text path only" in result.output
    row = next(line for line in result.output.splitlines() if line.startswith("| text"))
    # OCR text and file-name words find every sample image first for its caption.
    assert row.split("|")[2].strip() == "1.000", result.output
    assert "CLIP text→image" not in result.output
    bad = CliRunner().invoke(cli, ["eval", "images", "--data", str(tmp_path)])
    assert bad.exit_code == 1 and "images is missing" in bad.output


def test_a_configured_clip_folder_indexes_images_in_their_own_space_and_joins_the_fusion(tmp_path, clip_models):
    """fake_tiny_clip: plumbing only, quality is not measured (random weights)."""
    settings = make_settings(tmp_path / "data", min_image_score=-1.0)  # random weights: any cosine counts
    kb = KnowledgeBase(settings, models=clip_models)
    try:
        user = kb.system_user()
        images = [
            SAMPLES / n
            for n in ("pump-control-wiring-diagram.png", "monthly-pv-yield-bar-chart.png", "danger-high-voltage-sign.jpg")
        ]
        report = kb.ingest(user, "figures", paths=images)
        assert not report.failed
        (collection,) = kb.readable_collections(user, ["figures"])
        with kb.database.session() as session:
            rows = session.execute(select(Chunk.vector_space, Chunk.embedding, Chunk.image_path)).all()
        image_rows = [r for r in rows if r.vector_space == IMAGE_SPACE]
        text_rows = [r for r in rows if r.vector_space == TEXT_SPACE]
        assert len(image_rows) == 3 and len(text_rows) == 3
        # Two spaces, two sizes: CLIP's 24-d projection apart from MiniLM's 384-d text vectors.
        assert {len(np.frombuffer(r.embedding, dtype=np.float32)) for r in image_rows} == {24}
        assert {len(np.frombuffer(r.embedding, dtype=np.float32)) for r in text_rows} == {384}
        assert {r.image_path for r in image_rows} == {r.image_path for r in text_rows}
        assert len(kb.indexes.store(collection.id, IMAGE_SPACE)) == 3

        ranking = kb._answerer().rank("a red warning sign", [collection], RetrievalOptions(keyword=True, rerank=True))
        assert "clip" in ranking.timings and ranking.lists["clip"], ranking.lists
        # CLIP's figures come back as their text-space rows and are among the fused candidates.
        assert set(ranking.lists["clip"]) <= {c.chunk_id for c in ranking.chunks}
        assert all(c.vector_space == TEXT_SPACE for c in ranking.chunks)
        # The figures shown beside an answer come from that same CLIP search (one CLIP query per question).
        _, figures = kb._answerer().retrieve("a red warning sign", [collection])
        assert figures and all(f.kind == "image" and f.image_path for f in figures)
        assert len({f.image_path for f in figures}) == len(figures)
        without = kb._answerer().rank("a red warning sign", [collection], RetrievalOptions(image=False))
        assert "clip" not in without.lists and "clip" not in without.timings
    finally:
        kb.close()


def test_eval_images_reports_clip_and_fused_rows_with_a_clip_model(image_set, tmp_path, clip_models):
    """fake_tiny_clip: the rows exist and are computed over every caption; their values say
    nothing about CLIP's quality (random weights), so none is asserted."""
    report = run_image_eval(image_set, make_settings(tmp_path / "data"), clip_models)
    table = format_image_report(report)
    assert [r.name for r in report.results] == ["text (OCR + file name)", "CLIP text→image", "fused (text + CLIP, RRF)"]
    assert "fake_tiny_clip" in table and "| CLIP text→image |" in table
    assert all(len(r.latency_ms) == 3 and set(r.metrics) == {"R@1", "R@5", "R@10", "MRR@10"} for r in report.results)
    # Three images: every path must rank each caption's image somewhere in its top 5.
    assert all(r.metrics["R@5"] == 1.0 for r in report.results), table
