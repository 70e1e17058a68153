"""What every generator backend is: chat messages in, streamed text out."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Protocol

# OpenAI-style chat messages; content is a string or a list of text / image_url parts (app.generation.multimodal).
Messages = list[dict[str, Any]]


class Generator(Protocol):
    name: str
    supports_images: bool

    def stream(self, messages: Messages, max_new_tokens: int) -> Iterator[str]: ...


def generate(generator: Generator, messages: Messages, max_new_tokens: int) -> str:
    return "".join(generator.stream(messages, max_new_tokens))


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
