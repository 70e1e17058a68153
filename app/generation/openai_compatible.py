"""Any OpenAI-compatible chat server as the generator (MMKB_GENERATOR_BACKEND=openai)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from app.generation.base import Messages
from app.generation.multimodal import text_only


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
