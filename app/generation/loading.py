"""The configured generator backend, loaded (the only module that knows every backend)."""

from __future__ import annotations

from app import registry
from app.generation.base import Generator
from app.generation.llama_cpp import LlamaCppGenerator
from app.generation.openai_compatible import OpenAICompatibleGenerator
from app.generation.transformers_text import TransformersGenerator
from app.registry import ModelNotAvailable
from app.settings import Settings


def load_generator(settings: Settings) -> Generator:
    backend = settings.generator_backend
    if backend == "openai":
        if not settings.openai_base_url:
            raise ModelNotAvailable("MMKB_GENERATOR_BACKEND=openai needs MMKB_OPENAI_BASE_URL (e.g. http://127.0.0.1:8000/v1)")
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return OpenAICompatibleGenerator(settings.openai_base_url, settings.openai_model, key, images=settings.openai_images)
    if backend == "llama-cpp":
        generator = LlamaCppGenerator(
            registry.resolve("generator", settings),
            n_threads=settings.generator_threads,
            prompt_lookup=settings.generator_prompt_lookup,
        )
        generator.warm()
        return generator
    if backend == "transformers":
        return TransformersGenerator(registry.resolve("generator", settings))
    if backend == "transformers-vlm":
        from app.generation.vlm import load_vision_generator

        return load_vision_generator(settings)
    raise ModelNotAvailable(
        f"unknown MMKB_GENERATOR_BACKEND={backend!r}; use llama-cpp, transformers, transformers-vlm or openai"
    )
