"""Generator backends behind one small interface: chat messages in, text pieces out.

- ``llama-cpp`` (default): a GGUF file through llama-cpp-python: the packaged default
  (see app.registry) or MMKB_GENERATOR_PATH=/path/model.gguf.
- ``transformers``: a Hugging Face causal LM folder at MMKB_GENERATOR_PATH, CPU or GPU.
- ``openai``: any OpenAI-compatible server (vLLM, Ollama, llama.cpp server, LM Studio) at
  MMKB_OPENAI_BASE_URL, model MMKB_OPENAI_MODEL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from app import registry
from app.registry import ModelNotAvailable
from app.settings import Settings

Messages = list[dict[str, str]]


class Generator(Protocol):
    name: str

    def stream(self, messages: Messages, max_new_tokens: int) -> Iterator[str]: ...


def generate(generator: Generator, messages: Messages, max_new_tokens: int) -> str:
    return "".join(generator.stream(messages, max_new_tokens))


class TransformersGenerator:
    """Greedy decoding with a chat template; streamed through TextIteratorStreamer."""

    def __init__(self, model_dir: Path, device: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ingest.embedders import best_device

        self.device = device or best_device()
        self.name = f"transformers:{model_dir.name}"
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()
        # One generation at a time per model: parallel calls would only thrash 2 CPU cores.
        self._lock = threading.Lock()

    def stream(self, messages: Messages, max_new_tokens: int) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = self.tokenizer(prompt, return_tensors="pt").to(self.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(
                        **inputs,
                        max_new_tokens=max_new_tokens,
                        do_sample=False,
                        repetition_penalty=1.05,
                        streamer=streamer,
                        pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                    )
            except BaseException as exc:  # surfaced to the caller below
                errors.append(exc)
                streamer.end()

        with self._lock:
            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            yield from streamer
            worker.join()
        if errors:
            raise errors[0]


class LlamaCppGenerator:
    def __init__(self, gguf_path: Path, n_ctx: int = 4096, n_threads: int | None = None) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelNotAvailable(
                "the llama-cpp backend needs llama-cpp-python: `pip install llama-cpp-python` (compiles; a few minutes)"
            ) from exc
        if not gguf_path.is_file():
            raise ModelNotAvailable(f"MMKB_GENERATOR_PATH={gguf_path} is not a GGUF file")
        self.name = f"llama-cpp:{gguf_path.name}"
        # n_gpu_layers=-1 offloads everything when llama-cpp-python was built with CUDA; a no-op on CPU builds.
        self.model = Llama(model_path=str(gguf_path), n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=-1, verbose=False)
        self._lock = threading.Lock()

    def stream(self, messages: Messages, max_new_tokens: int) -> Iterator[str]:
        with self._lock:
            for part in self.model.create_chat_completion(messages=messages, max_tokens=max_new_tokens, temperature=0.0, stream=True):
                delta = part["choices"][0].get("delta", {}).get("content")
                if delta:
                    yield delta


class OpenAICompatibleGenerator:
    """Streams chat completions over Server-Sent Events from an OpenAI-compatible URL."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 120.0) -> None:
        import httpx

        self.name = f"openai:{model}@{base_url}"
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)

    def stream(self, messages: Messages, max_new_tokens: int) -> Iterator[str]:
        import httpx

        body = {"model": self.model, "messages": messages, "max_tokens": max_new_tokens, "temperature": 0.0, "stream": True}
        try:
            with self.client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise RuntimeError(f"the generator server answered {response.status_code}: {response.text[:300]}")
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    delta = json.loads(payload)["choices"][0].get("delta", {}).get("content")
                    if delta:
                        yield delta
        except httpx.HTTPError as exc:
            raise RuntimeError(f"cannot reach the generator server at {self.client.base_url}: {exc}") from exc


def load_generator(settings: Settings) -> Generator:
    backend = settings.generator_backend
    if backend == "openai":
        if not settings.openai_base_url:
            raise ModelNotAvailable("MMKB_GENERATOR_BACKEND=openai needs MMKB_OPENAI_BASE_URL (e.g. http://127.0.0.1:8000/v1)")
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return OpenAICompatibleGenerator(settings.openai_base_url, settings.openai_model, key)
    if backend == "llama-cpp":
        return LlamaCppGenerator(registry.resolve("generator", settings), n_threads=settings.generator_threads)
    if backend == "transformers":
        return TransformersGenerator(registry.resolve("generator", settings))
    raise ModelNotAvailable(f"unknown MMKB_GENERATOR_BACKEND={backend!r}; use transformers, llama-cpp or openai")
