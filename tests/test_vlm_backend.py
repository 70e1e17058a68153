"""The transformers-vlm backend (a Hugging Face vision-language model from a local folder).

No vision-language weights can be had on this machine, so these tests build fake_tiny_vlm:
a randomly initialised LLaVA-architecture model with a real processor, saved to a temporary
folder (tests/fake_tiny_vlm.py). They prove loading from a path, image + text input reaching
the vision tower, and streamed output through the answering pipeline. Answer quality is NOT
tested: the model's words are noise.
"""

from __future__ import annotations

import pytest
from PIL import Image

from app.generation.loading import load_generator
from app.generation.multimodal import image_part, text_part
from app.generation.vlm import VisionLanguageGenerator, to_processor_chat
from app.model_set import ModelSet
from app.registry import ModelNotAvailable
from app.service import KnowledgeBase
from tests.conftest import make_settings
from tests.fake_tiny_vlm import build_fake_tiny_vlm


@pytest.fixture(scope="module")
def fake_tiny_vlm(tmp_path_factory):
    return build_fake_tiny_vlm(tmp_path_factory.mktemp("models") / "fake_tiny_vlm")


@pytest.fixture(scope="module")
def vlm(fake_tiny_vlm, tmp_path_factory):
    generator = load_generator(
        make_settings(tmp_path_factory.mktemp("data"), generator_backend="transformers-vlm", generator_path=fake_tiny_vlm)
    )
    seen: list[tuple[int, ...]] = []
    # A hook on the real vision tower records every image batch the model actually encodes.
    generator.model.model.vision_tower.register_forward_hook(lambda module, args, output: seen.append(tuple(args[0].shape)))
    generator.seen_pixels = seen
    return generator


def _png(path, colour="red", size=(120, 80)):
    Image.new("RGB", size, colour).save(path)
    return path


def test_loads_from_the_configured_folder_and_reads_images(vlm, fake_tiny_vlm):
    assert isinstance(vlm, VisionLanguageGenerator) and vlm.supports_images
    assert vlm.name == "transformers-vlm:fake_tiny_vlm" and vlm.device in ("cpu", "cuda")


def test_an_image_and_text_go_in_and_text_streams_out(vlm, tmp_path):
    figure = _png(tmp_path / "figure.png")
    messages = [
        {"role": "system", "content": "answer the question"},
        {"role": "user", "content": [text_part("what does the figure show"), image_part(figure), text_part("answer")]},
    ]
    before = len(vlm.seen_pixels)
    pieces = list(vlm.stream(messages, max_new_tokens=8))
    # The image was encoded by the vision tower at the processor's size (28 px), once.
    assert vlm.seen_pixels[before:] == [(1, 3, 28, 28)]
    # Streamed: several pieces as the model writes, not one block at the end.
    assert len(pieces) >= 2 and "".join(pieces).strip()
    # Text alone runs the language model without the vision tower.
    list(vlm.stream([{"role": "user", "content": "what is the voltage"}], max_new_tokens=4))
    assert len(vlm.seen_pixels) == before + 1


def test_images_keep_their_order_among_the_text(tmp_path):
    red, blue = _png(tmp_path / "red.png", "red"), _png(tmp_path / "blue.png", "blue", (40, 30))
    chat, images = to_processor_chat(
        [
            {"role": "system", "content": "rules"},
            {"role": "user", "content": [text_part("one"), image_part(red), text_part("two"), image_part(blue)]},
        ]
    )
    assert [p["type"] for p in chat[1]["content"]] == ["text", "image", "text", "image"]
    assert chat[0]["content"] == [{"type": "text", "text": "rules"}]
    assert [img.size for img in images] == [(120, 80), (40, 30)] and images[1].getpixel((0, 0)) == (0, 0, 255)


def test_the_pipeline_sends_retrieved_figures_to_the_vision_model(vlm, models, tmp_path):
    from tests.conftest import SAMPLES

    settings = make_settings(tmp_path / "data")
    model_set = ModelSet(settings)
    model_set.text_embedder = models.text_embedder
    model_set.ocr = models.ocr
    model_set.generator = vlm
    kb = KnowledgeBase(settings, models=model_set)
    try:
        kb.ingest(kb.system_user(), "signs", paths=[SAMPLES / "danger-high-voltage-sign.jpg"])
        before = len(vlm.seen_pixels)
        events = list(kb.ask_stream(kb.system_user(), "What does the red danger high voltage sign warn about?", ["signs"]))
    finally:
        kb.close()
    final = events[-1].answer
    assert final.images and final.images[0].filename == "danger-high-voltage-sign.jpg"
    assert len(vlm.seen_pixels) == before + 1, "the retrieved figure did not reach the vision tower"
    assert len(events) >= 2 and not events[0].done  # partial answers streamed before the checked one


def test_missing_or_unusable_model_folders_fail_naming_the_setting(tmp_path):
    with pytest.raises(ModelNotAvailable, match="MMKB_GENERATOR_PATH"):
        load_generator(make_settings(tmp_path, generator_backend="transformers-vlm"))
    with pytest.raises(ModelNotAvailable, match="MMKB_GENERATOR_PATH=.*not a directory"):
        load_generator(make_settings(tmp_path, generator_backend="transformers-vlm", generator_path=tmp_path / "absent"))
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(ModelNotAvailable, match="MMKB_GENERATOR_PATH=.*not a vision-language model folder"):
        load_generator(make_settings(tmp_path, generator_backend="transformers-vlm", generator_path=empty))
