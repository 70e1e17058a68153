"""Generator backends for real: the packaged llama.cpp model, and the OpenAI-compatible
client against a real HTTP server on loopback that serves that same model."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn

from app import registry
from app.generation.base import generate
from app.generation.llama_cpp import LlamaCppGenerator
from app.generation.loading import load_generator
from app.generation.openai_compatible import OpenAICompatibleGenerator
from app.generation.prompting import SYSTEM_PROMPT, build_messages, sources_that_fit
from app.openai_server import build_openai_app
from app.registry import ModelNotAvailable
from app.schemas import Source
from app.service import KnowledgeBase
from tests.conftest import free_port, make_settings


@pytest.fixture(scope="module")
def openai_url(models):
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(build_openai_app(models.generator, "mmkb-test"), host="127.0.0.1", port=port, log_level="warning")
    )
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
    settings = make_settings(
        sample_kb.settings.data_dir, generator_backend="openai", openai_base_url=openai_url, openai_model="mmkb-test"
    )
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


# --- llama.cpp: prompt token budget, warm-up, prompt-lookup decoding ---------------------------

QUESTION = "What is the part number of the replacement cooling fan for the SX-400?"
SOURCES = [
    Source(
        number=1,
        chunk_id=1,
        collection="c",
        filename="solar-inverter-manual.pdf",
        page=5,
        kind="text",
        score=0.9,
        text="Replacement parts. The cooling fan of the Helios SX-400 has part number HX-FAN-77; order it from your "
        "installer. The fan is held by four M4 screws and plugs into connector J7 on the control board.",
    ),
    Source(
        number=2,
        chunk_id=2,
        collection="c",
        filename="solar-inverter-manual.pdf",
        page=2,
        kind="text",
        score=0.5,
        text="Technical data. Maximum DC input voltage 600 V. Rated AC output 4.0 kW. Weight 17 kg.",
    ),
    Source(
        number=3,
        chunk_id=3,
        collection="c",
        filename="employee-travel-policy.pdf",
        page=3,
        kind="text",
        score=0.2,
        text="Hotel caps per night: Munich 180 EUR, Hamburg 150 EUR, Berlin 160 EUR, other cities 120 EUR.",
    ),
]


def _shared_prefix(a, b) -> int:
    shared = 0
    for x, y in zip(a, b):
        if x != y:
            break
        shared += 1
    return shared


def test_the_prompt_token_budget_counts_with_the_models_own_tokenizer(models):
    generator = models.generator
    assert generator.count_tokens("") == 0
    assert 0 < generator.count_tokens("HX-FAN-77") < generator.count_tokens("HX-FAN-77 " * 10)
    messages = build_messages(QUESTION, SOURCES)
    # The count is exactly what llama.cpp evaluates for this chat (template included).
    with generator._lock:
        usage = generator.model.create_chat_completion(messages=messages, max_tokens=1, temperature=0.0)["usage"]
    assert generator.prompt_tokens(messages) == usage["prompt_tokens"]
    # Trailing sources go first when the answer would not fit in n_ctx.
    two = generator.prompt_tokens(build_messages(QUESTION, SOURCES[:2]))
    assert sources_that_fit(generator, QUESTION, SOURCES, generator.n_ctx - two) == SOURCES[:2]
    assert sources_that_fit(generator, QUESTION, SOURCES, generator.n_ctx - two + 1) == SOURCES[:1]
    assert sources_that_fit(generator, QUESTION, SOURCES, 256) == SOURCES
    assert sources_that_fit(generator, QUESTION, SOURCES, generator.n_ctx) == []
    # A backend that cannot count keeps every source.
    assert sources_that_fit(OpenAICompatibleGenerator("http://127.0.0.1:9/v1", "x"), QUESTION, SOURCES, 10**6) == SOURCES


def test_warm_up_caches_the_system_prompt_and_changes_no_answer(models):
    generator = models.generator
    messages = build_messages(QUESTION, SOURCES)
    generator.model.reset()  # cold: nothing cached, the whole prompt is evaluated
    cold = generate(generator, messages, 48)
    generator.model.reset()
    cached = generator.warm()
    prompt = generator.prompt_token_ids(messages)
    # The cache now holds the system message and the user turn's header of the next prompt.
    assert _shared_prefix(list(generator.model.input_ids[:cached]), prompt) > generator.count_tokens(SYSTEM_PROMPT)
    warm = generate(generator, messages, 48)
    assert warm == cold and "HX-FAN-77" in warm


def test_prompt_lookup_decoding_gives_the_same_greedy_answer(models):
    plain = models.generator
    # n_batch=32: the prompt is evaluated in several batches, as real prompts (~800 tokens) are
    # with the default 512 (llama-cpp-python's logits buffer must hold all of them).
    lookup = LlamaCppGenerator(registry.resolve("generator", models.settings), prompt_lookup=10, n_batch=32)
    messages = build_messages(QUESTION, SOURCES)
    assert generate(lookup, messages, 48) == generate(plain, messages, 48)
