"""Retrieved figures reach the model as images when its backend reads images, and as their
caption + OCR text otherwise. The OpenAI-compatible backend is checked against a real HTTP
server on loopback (app.openai_server serving the packaged model), which records the
sha256 of every image it received: the test compares it with the stored figure's bytes."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from app.generation.multimodal import decode_image_part
from app.generation.prompting import build_messages
from app.model_set import ModelSet
from app.schemas import Source
from app.service import KnowledgeBase
from tests.conftest import SAMPLES, free_port, make_settings

QUESTION = "What does the red danger high voltage sign warn about?"


@pytest.fixture(scope="module")
def server(models):
    from app.openai_server import build_openai_app

    app = build_openai_app(models.generator, "mmkb-test")
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not uv.started and time.time() < deadline:
        time.sleep(0.1)
    yield app, f"http://127.0.0.1:{port}/v1"
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def signs_dir(models, tmp_path_factory):
    """A collection holding only the sample sign photo, ingested once."""
    data = tmp_path_factory.mktemp("signs")
    kb = KnowledgeBase(make_settings(data), models=models)
    kb.ingest(kb.system_user(), "signs", paths=[SAMPLES / "danger-high-voltage-sign.jpg"])
    kb.close()
    return data


def _openai_kb(data: Path, models, url: str, images: bool) -> KnowledgeBase:
    settings = make_settings(
        data, generator_backend="openai", openai_base_url=url, openai_model="mmkb-test", openai_images=images
    )
    model_set = ModelSet(settings)
    model_set.text_embedder = models.text_embedder  # shared, already loaded; the generator is the server
    return KnowledgeBase(settings, models=model_set)


def _figure(path: Path, number: int = 2) -> Source:
    return Source(
        number=number,
        chunk_id=7,
        collection="c",
        filename="plant.pdf",
        page=3,
        kind="image",
        text="Figure 2: pump wiring. Text in the image: PUMP K1",
        score=0.9,
        image_path=str(path),
    )


def test_figure_sources_become_image_parts_only_for_image_backends(tmp_path):
    png = tmp_path / "figure.png"
    from PIL import Image

    Image.new("RGB", (50, 40), "green").save(png)
    text = Source(
        number=1, chunk_id=3, collection="c", filename="plant.pdf", page=2, kind="text", text="The pump runs at 40 Hz.", score=1.0
    )
    as_text = build_messages("Which pump?", [text, _figure(png)])
    assert isinstance(as_text[1]["content"], str) and "Text in the image: PUMP K1" in as_text[1]["content"]
    with_images = build_messages("Which pump?", [text, _figure(png)], images=True)
    parts = with_images[1]["content"]
    images = [p for p in parts if p["type"] == "image_url"]
    assert len(images) == 1 and decode_image_part(images[0]).data == png.read_bytes()
    texts = "".join(p["text"] for p in parts if p["type"] == "text")
    assert "Image of source [2] (plant.pdf, p. 3)" in texts and texts.rstrip().endswith("Answer with citations:")
    # The same system prompt and the same numbered sources either way.
    assert with_images[0] == as_text[0] and '<source id="2"' in texts


def test_the_openai_backend_sends_the_retrieved_figure_as_an_image(server, signs_dir, models):
    app, url = server
    received = app.state.received_images
    before = received.count
    kb = _openai_kb(signs_dir, models, url, images=True)
    try:
        answer = kb.ask(kb.system_user(), QUESTION, ["signs"])
    finally:
        kb.close()
    (figure,) = [s for s in answer.sources if s.kind == "image"]
    assert answer.images and answer.images[0].image_path == figure.image_path  # the chat shows the figure it used
    stored = hashlib.sha256(Path(figure.image_path).read_bytes()).hexdigest()
    assert received.count == before + 1 and received.recent[-1] == stored
    assert answer.text.strip()


def test_a_text_only_server_gets_the_figure_as_its_text(server, signs_dir, models):
    app, url = server
    before = app.state.received_images.count
    kb = _openai_kb(signs_dir, models, url, images=False)
    try:
        answer = kb.ask(kb.system_user(), QUESTION, ["signs"])
    finally:
        kb.close()
    assert app.state.received_images.count == before
    assert any(s.kind == "image" and "DANGER" in s.text.upper() for s in answer.sources)


def test_the_server_refuses_image_urls_it_would_have_to_fetch_or_cannot_decode(server):
    _, url = server
    for image_url, reason in (
        ("http://127.0.0.1:9/x.png", "data:image"),
        ("data:image/png;base64," + base64.b64encode(b"not a png").decode(), "does not decode"),
    ):
        body = {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": image_url}}],
                }
            ]
        }
        response = httpx.post(f"{url}/chat/completions", json=body, timeout=30)
        assert response.status_code == 400 and reason in response.text
