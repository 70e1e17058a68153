"""Generator backends behind one small interface: chat messages in, text pieces out.

- ``llama-cpp`` (default): a GGUF file through llama-cpp-python: the packaged default
  (see app.registry) or MMKB_GENERATOR_PATH=/path/model.gguf.
- ``transformers``: a Hugging Face causal LM folder at MMKB_GENERATOR_PATH, CPU or GPU.
- ``openai``: any OpenAI-compatible server (vLLM, Ollama, llama.cpp server, LM Studio) at
  MMKB_OPENAI_BASE_URL, model MMKB_OPENAI_MODEL; figures go as ``image_url`` parts unless
  MMKB_OPENAI_IMAGES=false (a text-only server model).
- ``transformers-vlm``: a Hugging Face vision-language model folder (Qwen2-VL / LLaVA class)
  at MMKB_GENERATOR_PATH (app.vlm), reading the figures as images.

Each generator says whether it reads images (``supports_images``); the prompt attaches
figures as images only for those that do, and as caption + OCR text for the others.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from app import registry
from app.multimodal import text_only
from app.registry import ModelNotAvailable
from app.settings import Settings

# OpenAI-style chat messages; content is a string or a list of text / image_url parts (app.multimodal).
Messages = list[dict[str, Any]]


class Generator(Protocol):
    name: str
    supports_images: bool

    def stream(self, messages: Messages, max_new_tokens: int) -> Iterator[str]: ...


def generate(generator: Generator, messages: Messages, max_new_tokens: int) -> str:
    return "".join(generator.stream(messages, max_new_tokens))


class TransformersGenerator:
    """Greedy decoding with a chat template; streamed through TextIteratorStreamer."""

    supports_images = False

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
        from transformers import TextIteratorStreamer

        prompt = self.tokenizer.apply_chat_template(text_only(messages), tokenize=False, add_generation_prompt=True)
        inputs = self.tokenizer(prompt, return_tensors="pt").to(self.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        generation = dict(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            repetition_penalty=1.05,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        )
        with self._lock:
            yield from stream_generation(self.model, generation, streamer)


def stream_generation(model, generation: dict, streamer) -> Iterator[str]:
    """Runs model.generate in a thread and yields the streamer's text pieces as they come;
    an error inside generate is raised here, in the caller's thread."""
    import torch

    errors: list[BaseException] = []

    def run() -> None:
        try:
            with torch.inference_mode():
                model.generate(**generation, streamer=streamer)
        except BaseException as exc:  # surfaced to the caller below
            errors.append(exc)
            streamer.end()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    yield from streamer
    worker.join()
    if errors:
        raise errors[0]


class LlamaCppGenerator:
    # The packaged GGUF models read text; llama.cpp's own image path needs a separate mmproj file.
    supports_images = False

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
            for part in self.model.create_chat_completion(messages=text_only(messages), max_tokens=max_new_tokens, temperature=0.0, stream=True):
                delta = part["choices"][0].get("delta", {}).get("content")
                if delta:
                    yield delta


class OpenAICompatibleGenerator:
    """Streams chat completions over Server-Sent Events from an OpenAI-compatible URL."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 120.0, images: bool = True
    ) -> None:
        import httpx

        self.name = f"openai:{model}@{base_url}"
        self.model = model
        # Whether the served model takes image_url parts; a text-only server would answer 400.
        self.supports_images = images
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)

    def stream(self, messages: Messages, max_new_tokens: int) -> Iterator[str]:
        import httpx

        if not self.supports_images:
            messages = text_only(messages)
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
        return OpenAICompatibleGenerator(settings.openai_base_url, settings.openai_model, key, images=settings.openai_images)
    if backend == "llama-cpp":
        return LlamaCppGenerator(registry.resolve("generator", settings), n_threads=settings.generator_threads)
    if backend == "transformers":
        return TransformersGenerator(registry.resolve("generator", settings))
    if backend == "transformers-vlm":
        from app.vlm import load_vision_generator

        return load_vision_generator(settings)
    raise ModelNotAvailable(
        f"unknown MMKB_GENERATOR_BACKEND={backend!r}; use llama-cpp, transformers, transformers-vlm or openai"
    )
