"""Generator backends for real: the packaged llama.cpp model, and the OpenAI-compatible
client against a real HTTP server on loopback that serves that same model."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn

from app.llm import OpenAICompatibleGenerator, generate, load_generator
from app.openai_server import build_openai_app
from app.registry import ModelNotAvailable
from app.service import KnowledgeBase
from tests.conftest import free_port, make_settings



@pytest.fixture(scope="module")
def openai_url(models):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_openai_app(models.generator, "mmkb-test"), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=10)


def test_openai_backend_streams_from_a_real_server(openai_url):
    client = OpenAICompatibleGenerator(openai_url, "mmkb-test")
    pieces = list(client.stream([{"role": "user", "content": "Reply with the single word: yes"}], max_new_tokens=8))
    assert len(pieces) >= 1 and "".join(pieces).strip()
    models = httpx.get(f"{openai_url}/models").json()
    assert models["data"][0]["id"] == "mmkb-test"


def test_the_whole_pipeline_answers_through_the_openai_backend(openai_url, sample_kb):
    settings = make_settings(sample_kb.settings.data_dir, generator_backend="openai", openai_base_url=openai_url, openai_model="mmkb-test")
    kb = KnowledgeBase(settings)
    answer = kb.ask(kb.system_user(), "What is the part number of the replacement cooling fan for the SX-400?", ["samples"])
    kb.close()
    assert "HX-FAN-77" in answer.text
    assert ("solar-inverter-manual.pdf", 5) in {(s.filename, s.page) for s in answer.cited_sources}


def test_unreachable_or_unconfigured_backends_fail_with_a_clear_message(tmp_path):
    with pytest.raises(ModelNotAvailable, match="MMKB_OPENAI_BASE_URL"):
        load_generator(make_settings(tmp_path, generator_backend="openai"))
    with pytest.raises(ModelNotAvailable, match="unknown MMKB_GENERATOR_BACKEND"):
        load_generator(make_settings(tmp_path, generator_backend="telepathy"))
    dead = OpenAICompatibleGenerator(f"http://127.0.0.1:{free_port()}/v1", "x", timeout_s=2)
    with pytest.raises(RuntimeError, match="cannot reach the generator server"):
        generate(dead, [{"role": "user", "content": "hi"}], 4)


def test_api_keys_never_appear_in_settings_output(tmp_path):
    settings = make_settings(tmp_path, openai_api_key="sk-very-secret")
    assert "sk-very-secret" not in repr(settings) and "sk-very-secret" not in str(settings.model_dump())
