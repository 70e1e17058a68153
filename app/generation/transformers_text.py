"""A Hugging Face text model folder as the generator (MMKB_GENERATOR_BACKEND=transformers)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from app.generation.base import Messages, stream_generation
from app.generation.multimodal import text_only


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
        # PreTrainedModel.to is wrapped with functools.wraps(Module.to), which mypy reads as unbound
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()  # type: ignore[arg-type]
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
