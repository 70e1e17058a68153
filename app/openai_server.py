"""An OpenAI-compatible chat-completions endpoint over any mmkb generator.

It lets other tools on the network use the packaged local model, and it is what the tests
run the `openai` backend against: a real HTTP server on loopback, not a stand-in.

Image parts must be inline ``data:image/...;base64`` URIs (a URL is refused: fetching it
would let a caller make this host reach the network). Each is decoded and checked, then
passed on to a generator that reads images, or dropped for one that reads text only. The
app keeps a short log of the images it received (``app.state.received_images``: count and
the sha256 of the latest ones), so a deployment and the tests can see what arrived.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.generation.base import Generator
from app.generation.multimodal import BadImagePart, decode_image_part, image_parts, text_only


class ChatMessage(BaseModel):
    role: str
    content: str | list[dict]


class ChatRequest(BaseModel):
    model: str = "default"
    messages: list[ChatMessage]
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    stream: bool = False
    temperature: float | None = None


@dataclass
class ReceivedImages:
    """How many images the server was sent, and the sha256 of the latest ones."""

    count: int = 0
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=64))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, sha256: str) -> None:
        with self._lock:
            self.count += 1
            self.recent.append(sha256)


def build_openai_app(generator: Generator, model_name: str, default_max_tokens: int = 256) -> FastAPI:
    api = FastAPI(title="mmkb OpenAI-compatible generator")
    api.state.received_images = ReceivedImages()
    reads_images = bool(getattr(generator, "supports_images", False))

    @api.get("/v1/models")
    def list_models() -> dict:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "mmkb"}]}

    @api.post("/v1/chat/completions")
    def chat_completions(request: ChatRequest):
        if not request.messages:
            raise HTTPException(status_code=400, detail="messages must not be empty")
        messages = [message.model_dump() for message in request.messages]
        try:
            images = [decode_image_part(part) for part in image_parts(messages)]
        except BadImagePart as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        for image in images:
            api.state.received_images.add(image.sha256)
        if not reads_images:
            messages = text_only(messages)
        max_tokens = request.max_tokens or default_max_tokens
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if not request.stream:
            text = "".join(generator.stream(messages, max_tokens))
            return {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            }

        def events() -> Iterator[str]:
            for piece in generator.stream(messages, max_tokens):
                chunk = {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model_name,
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
                yield f"data: {json.dumps(chunk)}\n\n"
            done = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model_name,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
            yield f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return api
