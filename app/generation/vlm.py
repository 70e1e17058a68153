"""A Hugging Face vision-language model (Qwen2-VL, LLaVA and the like) as the generator:
MMKB_GENERATOR_BACKEND=transformers-vlm, MMKB_GENERATOR_PATH=<local model folder>.

The folder is what `save_pretrained` writes for the model and its processor (config,
weights, tokenizer, image processor, chat template); it is loaded with
AutoModelForImageTextToText + AutoProcessor, on the GPU when there is one. Figures arrive
as image_url parts (app.generation.multimodal) and are handed to the processor as images, in order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.generation.base import Messages, stream_generation
from app.generation.multimodal import decode_image_part
from app.registry import ModelNotAvailable
from app.settings import Settings

_SETUP = "MMKB_GENERATOR_BACKEND=transformers-vlm needs MMKB_GENERATOR_PATH"


def to_processor_chat(messages: Messages) -> tuple[list[dict[str, Any]], list]:
    """OpenAI-style messages as the processor's chat (every content a list of parts, each
    image an {"type": "image"} placeholder) plus the decoded images in placeholder order."""
    chat, images = [], []
    for message in messages:
        content = message["content"]
        parts: list[dict[str, Any]] = []
        for part in [{"type": "text", "text": content}] if isinstance(content, str) else content:
            if part.get("type") == "image_url":
                images.append(decode_image_part(part).to_pil())
                parts.append({"type": "image"})
            elif part.get("type") == "text":
                parts.append({"type": "text", "text": part.get("text", "")})
        chat.append({"role": message["role"], "content": parts})
    return chat, images


def _merge_system(chat: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Some chat templates have no system role: its text goes before the first user turn."""
    system = [p for m in chat if m["role"] == "system" for p in m["content"]]
    rest = [dict(m) for m in chat if m["role"] != "system"]
    if system and rest:
        rest[0]["content"] = system + [{"type": "text", "text": "\n\n"}] + rest[0]["content"]
    return rest


class VisionLanguageGenerator:
    supports_images = True

    def __init__(self, model_dir: Path, device: str | None = None) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from ingest.embedders import best_device

        self.device = device or best_device()
        self.name = f"transformers-vlm:{model_dir.name}"
        try:
            self.processor = AutoProcessor.from_pretrained(model_dir)
            dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
            # transformers wraps PreTrainedModel.to in functools.wraps; mypy then does not bind `self`.
            self.model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()  # type: ignore[arg-type]
        except (OSError, ValueError, KeyError) as exc:
            raise ModelNotAvailable(
                f"MMKB_GENERATOR_PATH={model_dir} is not a vision-language model folder that transformers can load "
                f"(AutoModelForImageTextToText + AutoProcessor): {exc}"
            ) from exc
        if getattr(self.processor, "tokenizer", None) is None or getattr(self.processor, "image_processor", None) is None:
            raise ModelNotAvailable(f"MMKB_GENERATOR_PATH={model_dir} has no tokenizer or image processor for its processor")
        # One generation at a time per model: parallel calls would only contend for the device.
        self._lock = threading.Lock()

    def _prompt(self, chat: list[dict[str, Any]]) -> str:
        from jinja2.exceptions import TemplateError

        try:
            return self.processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        except TemplateError:
            return self.processor.apply_chat_template(_merge_system(chat), tokenize=False, add_generation_prompt=True)

    def stream(self, messages: Messages, max_new_tokens: int) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        chat, images = to_processor_chat(messages)
        inputs = self.processor(text=[self._prompt(chat)], images=images or None, return_tensors="pt").to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        tokenizer = self.processor.tokenizer
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        generation = dict(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            repetition_penalty=1.05,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        )
        with self._lock:
            yield from stream_generation(self.model, generation, streamer)


def load_vision_generator(settings: Settings) -> VisionLanguageGenerator:
    path = settings.generator_path
    if path is None:
        raise ModelNotAvailable(f"{_SETUP} (a local Qwen2-VL / LLaVA-class folder saved with save_pretrained); none is set")
    if not path.is_dir():
        raise ModelNotAvailable(f"MMKB_GENERATOR_PATH={path} is not a directory on this machine ({_SETUP} to be a model folder)")
    return VisionLanguageGenerator(path)
